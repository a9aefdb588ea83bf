using DataMarket.Gateway.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace DataMarket.Gateway.Pages.Buyer;

/// <summary>
/// One of the buyer's quotes: the price, the market's fee and each seller's share (a bar per seller), and the purchase.
/// The purchase carries an Idempotency-Key derived from the quote, so a resent form (double click, reload, a retry
/// after a lost answer) answers the first purchase instead of buying twice. Another buyer's quote is 404.
/// </summary>
public sealed class QuoteModel(CatalogClient catalog, SettlementClient settlement, TimeProvider time) : PageModel
{
    public WebQuote Quote { get; private set; } = null!;

    /// <summary>Each seller's share with the names of its datasets in the bundle.</summary>
    public IReadOnlyList<(string Seller, WebShare Share)> Shares { get; private set; } = [];

    public bool Expired => Quote.ExpiresAt <= time.GetUtcNow();

    public string? Error { get; private set; }

    public static string PurchaseKey(Guid quoteId) => $"web-purchase-{quoteId:N}";

    public async Task<IActionResult> OnGetAsync(Guid id, CancellationToken cancellationToken)
    {
        if (!settlement.Available || await settlement.QuoteAsync(User, id, cancellationToken) is not { } quote)
        {
            return NotFound();
        }

        Quote = quote;
        var listed = (await catalog.ListingsAsync(User, mine: false, cancellationToken)).Where(l => quote.Listings.Any(q => q.ListingId == l.Id.ToString())).ToList();
        var names = listed.GroupBy(l => l.SellerId).ToDictionary(g => g.Key, g => string.Join(", ", g.Select(l => l.Name)));
        Shares = quote.Shares.Select(s => (names.GetValueOrDefault(s.SellerId, "a withdrawn listing"), s)).ToList();
        return Page();
    }

    public async Task<IActionResult> OnPostBuyAsync(Guid id, CancellationToken cancellationToken)
    {
        try
        {
            var purchase = await settlement.PurchaseAsync(User, id, PurchaseKey(id), cancellationToken);
            return LocalRedirect($"/buyer/purchases?bought={purchase.Id}");
        }
        catch (ServiceCallException exception)
        {
            var page = await OnGetAsync(id, cancellationToken);
            Error = $"The purchase did not go through: {exception.Message}";
            Response.StatusCode = (int)exception.Status;
            return page;
        }
    }
}
