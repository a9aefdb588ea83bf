using DataMarket.Gateway.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace DataMarket.Gateway.Pages.Buyer;

/// <summary>The buyer's tasks and valuations, an upload for a new task, and the form that requests a valuation.</summary>
public sealed class IndexModel(CatalogClient catalog) : PageModel
{
    /// <summary>The methods offered in the form; the catalog validates the choice and names what it supports when refused.</summary>
    public static readonly (string Method, string Description)[] Methods =
    [
        ("knn-shapley", "exact KNN-Shapley per data point, summed per seller"),
        ("asymmetric-knn-shapley", "sellers in listing order, a later copy earns only what it adds"),
        ("tiered-knn-shapley", "replication-robust, the split used for purchases"),
        ("seller-shapley", "sellers as the players"),
    ];

    public IReadOnlyList<WebTask> Tasks { get; private set; } = [];

    public IReadOnlyList<WebListing> Listed { get; private set; } = [];

    public IReadOnlyList<WebValuation> Valuations { get; private set; } = [];

    public string? Error { get; private set; }

    public string? Notice { get; private set; }

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(cancellationToken);

    public async Task<IActionResult> OnPostTaskAsync(string taskName, string labelColumn, IFormFile? taskFile, CancellationToken cancellationToken)
    {
        if (taskFile is null || taskFile.Length == 0)
        {
            Error = "Choose a file for the test task.";
        }
        else
        {
            try
            {
                await using var data = taskFile.OpenReadStream();
                var task = await catalog.PostTaskAsync(User, taskName ?? string.Empty, data, Path.GetFileName(taskFile.FileName), labelColumn ?? "label", cancellationToken);
                Notice = $"Test task '{task.Name}' posted: {task.Rows} rows, {task.Features} features.";
            }
            catch (ServiceCallException exception)
            {
                Error = $"The test task was refused: {exception.Message}";
                Response.StatusCode = StatusCodes.Status400BadRequest;
            }
        }

        await LoadAsync(cancellationToken);
        return Page();
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        Tasks = await catalog.TasksAsync(User, cancellationToken);
        Listed = (await catalog.ListingsAsync(User, mine: false, cancellationToken)).Where(l => l.Status == "Listed").ToList();
        Valuations = (await catalog.ValuationsAsync(User, cancellationToken)).OrderByDescending(v => v.RequestedAt).ToList();
    }
}
