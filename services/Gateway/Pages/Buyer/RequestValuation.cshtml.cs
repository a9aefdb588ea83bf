using DataMarket.Gateway.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Gateway.Pages.Buyer;

/// <summary>
/// The valuation form's target: a page of its own so that it carries the same per-buyer rate limit as
/// <c>POST /api/valuations</c> (the limit is per page, and the buyer's other pages must not count against it).
/// </summary>
[EnableRateLimiting(GatewayExtensions.ValuationRequestsPolicy)]
public sealed class RequestValuationModel(CatalogClient catalog) : PageModel
{
    public string? Error { get; private set; }

    public IActionResult OnGet() => LocalRedirect("/buyer");

    public async Task<IActionResult> OnPostAsync(Guid taskId, List<Guid> listingIds, string method, int k, CancellationToken cancellationToken)
    {
        try
        {
            var valuation = await catalog.RequestValuationAsync(User, taskId, listingIds, method, k, cancellationToken);
            return LocalRedirect($"/buyer/valuations/{valuation.Id}");
        }
        catch (ServiceCallException exception)
        {
            Error = exception.Message;
            Response.StatusCode = (int)exception.Status;
            return Page();
        }
    }
}
