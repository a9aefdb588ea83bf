using DataMarket.Gateway.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace DataMarket.Gateway.Pages.Buyer;

/// <summary>
/// One of the buyer's valuations: progress while it runs (the page reloads itself every two seconds, no script), then
/// each seller's value with its 95% interval and a histogram of the per-point values. Another buyer's valuation is 404.
/// </summary>
public sealed class ValuationModel(CatalogClient catalog, SettlementClient settlement) : PageModel
{
    /// <summary>Rows listed as the likeliest mislabelled: the lowest-valued points.</summary>
    public const int LowestRows = 10;

    /// <summary>Quotes split by the replication-robust valuation only (the settlement service refuses the others).</summary>
    public const string QuotableMethod = "tiered-knn-shapley";

    /// <summary>Enough points for the histogram's shape; the full list is in the API (<c>/api/valuations/ID/points</c>).</summary>
    public const int HistogramPoints = 1000;

    public WebValuation Valuation { get; private set; } = null!;

    public IReadOnlyList<(string Label, WebEstimate Value)> SellerRows { get; private set; } = [];

    public IReadOnlyList<double> PointValues { get; private set; } = [];

    public int TotalPoints { get; private set; }

    /// <summary>The lowest-valued rows: dataset name, row number and value (never the row's contents).</summary>
    public IReadOnlyList<(string Dataset, WebPoint Point)> Lowest { get; private set; } = [];

    public bool CanQuote => settlement.Available && Valuation.Status == "Completed" && Valuation.Method == QuotableMethod;

    public bool SettlementAvailable => settlement.Available;

    public string? Error { get; private set; }

    /// <summary>A quote for the valuation's bundle; the quote page shows the price and split and offers the purchase.</summary>
    public async Task<IActionResult> OnPostQuoteAsync(Guid id, CancellationToken cancellationToken)
    {
        try
        {
            var quote = await settlement.CreateQuoteAsync(User, id, cancellationToken);
            return LocalRedirect($"/buyer/quotes/{quote.Id}");
        }
        catch (ServiceCallException exception)
        {
            var page = await OnGetAsync(id, cancellationToken);
            Error = $"No quote: {exception.Message}";
            Response.StatusCode = (int)exception.Status;
            return page;
        }
    }

    public async Task<IActionResult> OnGetAsync(Guid id, CancellationToken cancellationToken)
    {
        var valuation = await catalog.ValuationAsync(User, id, cancellationToken);
        if (valuation is null)
        {
            return NotFound();
        }

        Valuation = valuation;
        if (!valuation.Finished)
        {
            ViewData["RefreshSeconds"] = 2;
        }

        // Sellers are shown by the names of their listings in this valuation (account ids mean nothing to a buyer).
        var listings = (await catalog.ListingsAsync(User, mine: false, cancellationToken)).Where(l => valuation.ListingIds.Contains(l.Id)).ToList();
        var names = listings.GroupBy(l => l.SellerId).ToDictionary(g => g.Key, g => string.Join(", ", g.Select(l => l.Name)));
        SellerRows = valuation.Sellers
            .Select(s => (names.GetValueOrDefault(s.SellerId, s.SellerId) + $" ({s.Points} points)", s.Value))
            .ToList();

        if (valuation.Status == "Completed")
        {
            try
            {
                var page = await catalog.PointsAsync(User, id, 0, HistogramPoints, cancellationToken);
                PointValues = page.Items.Select(p => p.Value.Value).ToList();
                TotalPoints = page.Total;
                var listingNames = listings.ToDictionary(l => l.Id, l => l.Name);
                Lowest = (await catalog.LowestPointsAsync(User, id, LowestRows, cancellationToken))
                    .Select(p => (listingNames.GetValueOrDefault(p.ListingId, "a withdrawn listing"), p)).ToList();
            }
            catch (ServiceCallException)
            {
                // Methods that value sellers, not points, have no per-point values: the page shows the seller chart only.
                PointValues = [];
            }
        }

        return Page();
    }
}
