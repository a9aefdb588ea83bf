using DataMarket.Gateway.Application;
using DataMarket.ServiceDefaults.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Gateway.Pages;

/// <summary>
/// The operator's second step: after the password, a TOTP code (enrolling the app at the first sign-in). Reached only
/// with the short-lived cookie the password step sets; the session itself is issued only here.
/// </summary>
public sealed class SecondFactorModel(AccountService accounts, SecondFactorService secondFactor) : PageModel
{
    [BindProperty]
    public string Code { get; set; } = string.Empty;

    public string? Secret { get; private set; }

    public string? EnrolmentUri { get; private set; }

    public string? Error { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        var account = await PendingAccountAsync(cancellationToken);
        if (account is null)
        {
            return LocalRedirect("/signin");
        }

        await ShowEnrolmentAsync(account, cancellationToken);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken cancellationToken)
    {
        var account = await PendingAccountAsync(cancellationToken);
        if (account is null)
        {
            return LocalRedirect("/signin");
        }

        if (!await secondFactor.VerifyAsync(account.Id, Code, cancellationToken))
        {
            Error = "That code is not right (or was already used). Enter the code your app shows now.";
            Response.StatusCode = StatusCodes.Status401Unauthorized;
            await ShowEnrolmentAsync(account, cancellationToken);
            return Page();
        }

        await HttpContext.SignOutAsync(GatewayExtensions.SecondFactorScheme);
        await SignInModel.SignInAsync(HttpContext, account, secondFactor: true);
        await accounts.RecordAsync(account.Id, "session.sign-in", "web, second factor", cancellationToken);
        return LocalRedirect(Web.WebPaths.Home(account.Role));
    }

    private async Task<AccountView?> PendingAccountAsync(CancellationToken cancellationToken)
    {
        var step = await HttpContext.AuthenticateAsync(GatewayExtensions.SecondFactorScheme);
        return step.Succeeded ? await accounts.FindAsync(step.Principal!.AccountId(), cancellationToken) : null;
    }

    private async Task ShowEnrolmentAsync(AccountView account, CancellationToken cancellationToken)
    {
        if (!await secondFactor.IsEnabledAsync(account.Id, cancellationToken))
        {
            Secret = await secondFactor.PendingSecretAsync(account.Id, cancellationToken);
            EnrolmentUri = SecondFactorService.OtpAuthUri(account.Name, Secret);
        }
    }
}
