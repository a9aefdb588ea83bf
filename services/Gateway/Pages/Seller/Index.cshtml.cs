using DataMarket.Gateway.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace DataMarket.Gateway.Pages.Seller;

/// <summary>The seller's own listings (drafts included) and an upload that creates a listing and sends its data to the catalog.</summary>
public sealed class IndexModel(CatalogClient catalog, SettlementClient settlement) : PageModel
{
    public IReadOnlyList<WebListing> Listings { get; private set; } = [];

    /// <summary>Each listed dataset's published price terms (absent: not priced yet, so buyers cannot get a quote).</summary>
    public IReadOnlyDictionary<Guid, WebTerms> Terms { get; private set; } = new Dictionary<Guid, WebTerms>();

    public bool SettlementAvailable => settlement.Available;

    [BindProperty]
    public string Name { get; set; } = string.Empty;

    [BindProperty]
    public string? Description { get; set; }

    [BindProperty]
    public string LabelColumn { get; set; } = "label";

    [BindProperty]
    public IFormFile? Upload { get; set; }

    public string? Error { get; private set; }

    public string? Notice { get; private set; }

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(cancellationToken);

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        Listings = await catalog.ListingsAsync(User, mine: true, cancellationToken);
        var terms = new Dictionary<Guid, WebTerms>();
        if (settlement.Available)
        {
            foreach (var listing in Listings.Where(l => l.Status == "Listed"))
            {
                if (await settlement.TermsAsync(User, listing.Id, cancellationToken) is { } published)
                {
                    terms[listing.Id] = published;
                }
            }
        }

        Terms = terms;
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken cancellationToken)
    {
        if (Upload is null || Upload.Length == 0)
        {
            Error = "Choose a file to upload.";
        }
        else
        {
            WebListing? draft = null;
            try
            {
                draft = await catalog.CreateListingAsync(User, Name, Description, cancellationToken);
                await using var data = Upload.OpenReadStream();
                var listed = await catalog.UploadListingDataAsync(User, draft.Id, data, Path.GetFileName(Upload.FileName), LabelColumn, cancellationToken);
                Notice = $"'{listed.Name}' is listed: {listed.Rows} rows, {listed.Features} features.";
                // The form starts empty for the next dataset (the posted values would otherwise be shown again).
                ModelState.Clear();
                Name = string.Empty;
                Description = null;
            }
            catch (ServiceCallException exception)
            {
                Error = draft is null
                    ? $"The listing was not created: {exception.Message}"
                    : $"The file was refused and '{draft.Name}' stays a draft: {exception.Message}";
                Response.StatusCode = StatusCodes.Status400BadRequest;
            }
        }

        await LoadAsync(cancellationToken);
        return Page();
    }
}
