using System.Security.Claims;
using DataMarket.Gateway.Application;
using DataMarket.Gateway.Web;
using DataMarket.ServiceDefaults.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Gateway.Pages;

public sealed class SignInModel(AccountService accounts) : PageModel
{
    [BindProperty]
    public string Name { get; set; } = string.Empty;

    [BindProperty]
    public string Password { get; set; } = string.Empty;

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public string? Error { get; private set; }

    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken cancellationToken)
    {
        var account = await accounts.CheckPasswordAsync(Name.Trim(), Password, cancellationToken);
        if (account is null)
        {
            // One answer for an unknown name and a wrong password.
            Error = "The account name or the password is wrong.";
            Response.StatusCode = StatusCodes.Status401Unauthorized;
            return Page();
        }

        if (account.Role == Roles.Operator)
        {
            // Operators need their authenticator code too; until then they hold only the short-lived step cookie.
            await HttpContext.SignInAsync(GatewayExtensions.SecondFactorScheme, Principal(account, GatewayExtensions.SecondFactorScheme, secondFactor: false));
            return LocalRedirect("/signin/second-factor");
        }

        await SignInAsync(HttpContext, account);
        await accounts.RecordAsync(account.Id, "session.sign-in", "web", cancellationToken);
        // Only a path on this site: a crafted link cannot send a fresh session to another site.
        return LocalRedirect(ReturnUrl is { Length: > 0 } && Url.IsLocalUrl(ReturnUrl) ? ReturnUrl : WebPaths.Home(account.Role));
    }

    public static Task SignInAsync(HttpContext http, AccountView account, bool secondFactor = false) =>
        http.SignInAsync(GatewayExtensions.WebScheme, Principal(account, GatewayExtensions.WebScheme, secondFactor));

    private static ClaimsPrincipal Principal(AccountView account, string scheme, bool secondFactor)
    {
        List<Claim> claims = [new("sub", account.Id), new("role", account.Role), new("name", account.Name)];
        if (secondFactor)
        {
            claims.Add(new Claim(GatewayExtensions.SecondFactorClaim, "otp"));
        }

        return new ClaimsPrincipal(new ClaimsIdentity(claims, scheme, "name", "role"));
    }
}
