using DataMarket.Gateway.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace DataMarket.Gateway.Pages.Seller;

/// <summary>The seller's own listings (drafts included) and an upload that creates a listing and sends its data to the catalog.</summary>
public sealed class IndexModel(CatalogClient catalog) : PageModel
{
    public IReadOnlyList<WebListing> Listings { get; private set; } = [];

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

    public async Task OnGetAsync(CancellationToken cancellationToken) =>
        Listings = await catalog.ListingsAsync(User, mine: true, cancellationToken);

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
            catch (CatalogCallException exception)
            {
                Error = draft is null
                    ? $"The listing was not created: {exception.Message}"
                    : $"The file was refused and '{draft.Name}' stays a draft: {exception.Message}";
                Response.StatusCode = StatusCodes.Status400BadRequest;
            }
        }

        Listings = await catalog.ListingsAsync(User, mine: true, cancellationToken);
        return Page();
    }
}
