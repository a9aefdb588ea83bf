using DataMarket.Gateway.Application;
using DataMarket.Gateway.Model;
using DataMarket.ServiceDefaults.Security;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace DataMarket.Gateway.Pages.Operator;

public sealed class IndexModel(AccountService accounts) : PageModel
{
    public const int AuditEntries = 200;

    public IReadOnlyList<AccountView> Accounts { get; private set; } = [];

    public IReadOnlyList<AuditEntry> Audit { get; private set; } = [];

    public string? ResetLink { get; private set; }

    public string? ResetFor { get; private set; }

    public string? Error { get; private set; }

    public async Task<IActionResult> OnPostResetAsync(string accountName, CancellationToken cancellationToken)
    {
        try
        {
            var token = await accounts.IssuePasswordResetAsync(User.AccountId(), accountName ?? string.Empty, cancellationToken);
            ResetLink = $"{Request.Scheme}://{Request.Host}/reset?token={token}";
            ResetFor = accountName;
        }
        catch (AccountException exception)
        {
            Error = exception.Message;
            Response.StatusCode = exception.StatusCode;
        }

        await OnGetAsync(cancellationToken);
        return Page();
    }

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        Accounts = await accounts.ListAccountsAsync(cancellationToken);
        Audit = await accounts.ReadAuditAsync(AuditEntries, cancellationToken);
    }
}
