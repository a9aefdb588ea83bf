using DataMarket.Gateway.Application;
using DataMarket.Gateway.Web;
using DataMarket.ServiceDefaults.Security;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace DataMarket.Gateway.Pages;

/// <summary>Sellers and buyers sign themselves up; operators are made by operators or the CLI.</summary>
public sealed class SignUpModel(AccountService accounts) : PageModel
{
    [BindProperty]
    public string Role { get; set; } = Roles.Seller;

    [BindProperty]
    public string Name { get; set; } = string.Empty;

    [BindProperty]
    public string Password { get; set; } = string.Empty;

    public string? Error { get; private set; }

    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken cancellationToken)
    {
        try
        {
            if (Role is not (Roles.Seller or Roles.Buyer))
            {
                throw new AccountException("sign up as a seller or a buyer");
            }

            AccountService.RequirePasswordLength(Password);

            var account = await accounts.CreateAccountAsync("self", Role, Name, cancellationToken);
            await accounts.SetPasswordAsync(account.Id, account.Id, Password, cancellationToken);
            await SignInModel.SignInAsync(HttpContext, account);
            return LocalRedirect(WebPaths.Home(account.Role));
        }
        catch (AccountException exception)
        {
            Error = exception.Message;
            Response.StatusCode = exception.StatusCode;
            return Page();
        }
    }
}
