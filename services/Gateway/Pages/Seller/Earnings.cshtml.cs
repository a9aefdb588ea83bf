using DataMarket.Gateway.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace DataMarket.Gateway.Pages.Seller;

/// <summary>
/// What valuations found the seller's data worth (method and value, never the buyer or the task), what it earned,
/// holds and was paid per month (the ledger's statement), and the payout destination a settlement run pays.
/// </summary>
public sealed class EarningsModel(CatalogClient catalog, SettlementClient settlement, TimeProvider time) : PageModel
{
    /// <summary>Months of statements shown: this month and the five before it.</summary>
    public const int Months = 6;

    /// <summary>Bars in the chart: the most recent valuations.</summary>
    public const int ChartedValuations = 20;

    /// <summary>Each valuation's value, with the names of the seller's datasets it valued and a chart label.</summary>
    public IReadOnlyList<(string Datasets, string Label, WebReceivedValue Value)> Received { get; private set; } = [];

    public IReadOnlyList<WebStatement> Statements { get; private set; } = [];

    public bool SettlementAvailable => settlement.Available;

    public string? Notice { get; private set; }

    public string? Error { get; private set; }

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(cancellationToken);

    /// <summary>Registers where payouts go (the sandbox or Stripe account the settlement service makes); a second click answers the first.</summary>
    public async Task<IActionResult> OnPostDestinationAsync(CancellationToken cancellationToken)
    {
        try
        {
            var destination = await settlement.RegisterDestinationAsync(User, cancellationToken);
            Notice = $"Payouts go to your {destination.Provider} account {destination.AccountId}.";
        }
        catch (ServiceCallException exception)
        {
            Error = $"The payout destination was not set: {exception.Message}";
            Response.StatusCode = (int)exception.Status;
        }

        await LoadAsync(cancellationToken);
        return Page();
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        var names = (await catalog.ListingsAsync(User, mine: true, cancellationToken)).ToDictionary(l => l.Id, l => l.Name);
        Received = (await catalog.ReceivedValuesAsync(User, cancellationToken))
            .Select(v =>
            {
                var datasets = string.Join(", ", v.ListingIds.Select(id => names.GetValueOrDefault(id, "withdrawn listing")));
                return (datasets, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{datasets} · {v.Method} · {v.FinishedAt:yyyy-MM-dd HH:mm}"), v);
            })
            .ToList();
        if (settlement.Available)
        {
            var statements = new List<WebStatement>();
            foreach (var period in SettlementClient.RecentPeriods(time.GetUtcNow(), Months))
            {
                statements.Add(await settlement.StatementAsync(User, period, cancellationToken));
            }

            Statements = statements;
        }
    }
}
