using DataMarket.Gateway.Application;
using DataMarket.Gateway.Model;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace DataMarket.Gateway.Pages.Operator;

public sealed class IndexModel(AccountService accounts) : PageModel
{
    public const int AuditEntries = 200;

    public IReadOnlyList<AccountView> Accounts { get; private set; } = [];

    public IReadOnlyList<AuditEntry> Audit { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        Accounts = await accounts.ListAccountsAsync(cancellationToken);
        Audit = await accounts.ReadAuditAsync(AuditEntries, cancellationToken);
    }
}
