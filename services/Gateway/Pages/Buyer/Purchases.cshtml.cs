using DataMarket.Gateway.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace DataMarket.Gateway.Pages.Buyer;

/// <summary>The buyer's purchases with a download per dataset bought, and the download itself (only of what the buyer bought).</summary>
public sealed class PurchasesModel(CatalogClient catalog, SettlementClient settlement) : PageModel
{
    public IReadOnlyList<WebPurchase> Purchases { get; private set; } = [];

    public IReadOnlyDictionary<Guid, string> ListingNames { get; private set; } = new Dictionary<Guid, string>();

    public bool SettlementAvailable => settlement.Available;

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        if (!settlement.Available)
        {
            return;
        }

        Purchases = await settlement.PurchasesAsync(User, cancellationToken);
        ListingNames = (await catalog.ListingsAsync(User, mine: false, cancellationToken)).ToDictionary(l => l.Id, l => l.Name);
    }

    /// <summary>Streams the file through the gateway; the settlement service answers 404 to anyone but its buyer.</summary>
    public async Task<IActionResult> OnGetDownloadAsync(Guid purchase, Guid listing, CancellationToken cancellationToken)
    {
        if (!settlement.Available)
        {
            return NotFound();
        }

        HttpResponseMessage response;
        try
        {
            response = await settlement.DownloadAsync(User, purchase, listing, cancellationToken);
        }
        catch (ServiceCallException exception) when (exception.Status is System.Net.HttpStatusCode.NotFound or System.Net.HttpStatusCode.BadRequest)
        {
            return NotFound();
        }

        HttpContext.Response.RegisterForDispose(response);
        var name = response.Content.Headers.ContentDisposition?.FileNameStar ?? response.Content.Headers.ContentDisposition?.FileName?.Trim('"') ?? $"{listing}.csv";
        return File(await response.Content.ReadAsStreamAsync(cancellationToken), response.Content.Headers.ContentType?.MediaType ?? "application/octet-stream", name);
    }
}
