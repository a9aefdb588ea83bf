using DataMarket.Gateway.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace DataMarket.Gateway.Pages.Seller;

/// <summary>A listed dataset's reserve and list price (the settlement service's price terms); another seller's listing is 404.</summary>
public sealed class PricesModel(CatalogClient catalog, SettlementClient settlement) : PageModel
{
    public WebListing Listing { get; private set; } = null!;

    public WebTerms? Current { get; private set; }

    [BindProperty]
    public string? Reserve { get; set; }

    [BindProperty]
    public string? ListPrice { get; set; }

    [BindProperty]
    public string? Licence { get; set; }

    public string? Error { get; private set; }

    public async Task<IActionResult> OnGetAsync(Guid id, CancellationToken cancellationToken)
    {
        if (!await LoadAsync(id, cancellationToken))
        {
            return NotFound();
        }

        Reserve = Current is null ? null : Money.Amount(Current.Reserve);
        ListPrice = Current?.ListPrice is { } list ? Money.Amount(list) : null;
        Licence = Current?.Licence ?? "standard";
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(Guid id, CancellationToken cancellationToken)
    {
        if (!await LoadAsync(id, cancellationToken))
        {
            return NotFound();
        }

        var reserve = Money.Parse(Reserve);
        var listPrice = string.IsNullOrWhiteSpace(ListPrice) ? null : Money.Parse(ListPrice);
        if (reserve is null)
        {
            Error = $"The reserve '{Reserve}' is not an amount (digits, and at most two decimals after a point).";
        }
        else if (!string.IsNullOrWhiteSpace(ListPrice) && listPrice is null)
        {
            Error = $"The list price '{ListPrice}' is not an amount (digits, and at most two decimals after a point).";
        }
        else
        {
            try
            {
                await settlement.PublishTermsAsync(User, id, reserve.Value, listPrice, string.IsNullOrWhiteSpace(Licence) ? null : Licence, cancellationToken);
                return LocalRedirect("/seller");
            }
            catch (ServiceCallException exception)
            {
                Error = $"The prices were not saved: {exception.Message}";
            }
        }

        Response.StatusCode = StatusCodes.Status400BadRequest;
        return Page();
    }

    /// <summary>Only the seller's own listed datasets have prices.</summary>
    private async Task<bool> LoadAsync(Guid id, CancellationToken cancellationToken)
    {
        var listing = (await catalog.ListingsAsync(User, mine: true, cancellationToken)).FirstOrDefault(l => l.Id == id && l.Status == "Listed");
        if (listing is null || !settlement.Available)
        {
            return false;
        }

        Listing = listing;
        Current = await settlement.TermsAsync(User, id, cancellationToken);
        return true;
    }
}
