using DataMarket.Gateway.Application;
using DataMarket.Gateway.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace DataMarket.Gateway.Pages.Operator;

/// <summary>
/// Settlement runs with each seller's payout, the failed payouts (with the provider's reason), a form that runs a
/// period now, and the ledger's own check of its invariants (what <c>datamarket ledger verify</c> prints).
/// </summary>
public sealed class SettlementsModel(SettlementClient settlement, AccountService accounts, TimeProvider time) : PageModel
{
    public IReadOnlyList<WebSettlementRun> Runs { get; private set; } = [];

    public WebLedgerVerification? Verification { get; private set; }

    public IReadOnlyDictionary<string, string> SellerNames { get; private set; } = new Dictionary<string, string>();

    public bool SettlementAvailable => settlement.Available;

    /// <summary>The period just asked for: the page reloads itself until its run has completed.</summary>
    [BindProperty(SupportsGet = true)]
    public string? Requested { get; set; }

    [BindProperty]
    public string Period { get; set; } = string.Empty;

    public string? Error { get; private set; }

    public IEnumerable<(WebSettlementRun Run, WebPayout Payout)> Failed =>
        Runs.SelectMany(r => r.Payouts.Where(p => p.Status == "failed").Select(p => (r, p)));

    public string Seller(string id) => SellerNames.GetValueOrDefault(id, id);

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        // The month just ended is what the monthly run settles.
        var now = time.GetUtcNow().UtcDateTime;
        Period = new DateTime(now.Year, now.Month, 1, 0, 0, 0, DateTimeKind.Utc).AddMonths(-1).ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture);
        await LoadAsync(cancellationToken);
    }

    public async Task<IActionResult> OnPostRunAsync(CancellationToken cancellationToken)
    {
        try
        {
            await settlement.RunSettlementAsync(User, Period ?? string.Empty, cancellationToken);
            return LocalRedirect($"/operator/settlements?requested={Uri.EscapeDataString(Period!)}");
        }
        catch (ServiceCallException exception)
        {
            Error = $"The settlement was not started: {exception.Message}";
            Response.StatusCode = (int)exception.Status;
            await LoadAsync(cancellationToken);
            return Page();
        }
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        if (!settlement.Available)
        {
            return;
        }

        Runs = await settlement.SettlementsAsync(User, cancellationToken);
        Verification = await settlement.VerifyLedgerAsync(User, cancellationToken);
        SellerNames = (await accounts.ListAccountsAsync(cancellationToken)).ToDictionary(a => a.Id, a => a.Name);
        if (Requested is { } period && Runs.FirstOrDefault(r => r.Period == period) is not { Status: "completed" })
        {
            ViewData["RefreshSeconds"] = 2;
        }
    }
}
