using System.Security.Claims;
using DataMarket.Gateway.Application;
using DataMarket.Gateway.Web;
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

        await SignInAsync(HttpContext, account);
        await accounts.RecordAsync(account.Id, "session.sign-in", "web", cancellationToken);
        // Only a path on this site: a crafted link cannot send a fresh session to another site.
        return LocalRedirect(ReturnUrl is { Length: > 0 } && Url.IsLocalUrl(ReturnUrl) ? ReturnUrl : WebPaths.Home(account.Role));
    }

    public static Task SignInAsync(HttpContext http, AccountView account)
    {
        var identity = new ClaimsIdentity(
            [new Claim("sub", account.Id), new Claim("role", account.Role), new Claim("name", account.Name)],
            GatewayExtensions.WebScheme, "name", "role");
        return http.SignInAsync(GatewayExtensions.WebScheme, new ClaimsPrincipal(identity));
    }
}
