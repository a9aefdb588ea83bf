using DataMarket.Gateway.Application;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace DataMarket.Gateway.Pages;

/// <summary>A one-time password-reset link from an operator: the token in the link sets a new password once.</summary>
public sealed class ResetModel(AccountService accounts) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string Token { get; set; } = string.Empty;

    [BindProperty]
    public string Password { get; set; } = string.Empty;

    public bool Valid { get; private set; }

    public string? Error { get; private set; }

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        Valid = await accounts.IsPasswordResetValidAsync(Token, cancellationToken);
        if (!Valid)
        {
            Response.StatusCode = StatusCodes.Status404NotFound;
        }
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken cancellationToken)
    {
        try
        {
            await accounts.ResetPasswordAsync(Token, Password, cancellationToken);
            return LocalRedirect("/signin?reset=done");
        }
        catch (AccountException exception)
        {
            Valid = exception.StatusCode != StatusCodes.Status404NotFound;
            Error = exception.Message;
            Response.StatusCode = exception.StatusCode;
            return Page();
        }
    }
}
