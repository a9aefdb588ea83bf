using DataMarket.Gateway.Application;
using DataMarket.ServiceDefaults.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Gateway.Pages;

/// <summary>Signing out is a POST with an antiforgery token, so another site cannot sign a visitor out.</summary>
public sealed class SignOutModel(AccountService accounts) : PageModel
{
    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken cancellationToken)
    {
        await accounts.RecordAsync(User.AccountId(), "session.sign-out", "web", cancellationToken);
        await HttpContext.SignOutAsync(GatewayExtensions.WebScheme);
        return LocalRedirect("/");
    }
}
