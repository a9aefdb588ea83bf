using System.Text.Json;
using DataMarket.Gateway.Application;
using DataMarket.Gateway.Web;
using DataMarket.ServiceDefaults.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Gateway.Pages;

/// <summary>The signed-in account's own data as one download, and (for sellers and buyers) deleting the account.</summary>
public sealed class AccountModel(AccountService accounts, CatalogClient catalog) : PageModel
{
    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public bool CanDelete => User.FindFirst("role")?.Value is Roles.Seller or Roles.Buyer;

    public string? Error { get; private set; }

    public void OnGet()
    {
    }

    /// <summary>A POST (with its antiforgery token), so another site cannot make a visitor's browser fetch the export.</summary>
    public async Task<IActionResult> OnPostExportAsync(CancellationToken cancellationToken)
    {
        var gateway = await accounts.ExportAsync(User.AccountId(), cancellationToken);
        var role = User.FindFirst("role")?.Value;
        object catalogData = role switch
        {
            Roles.Seller => new { listings = await catalog.ListingsAsync(User, mine: true, cancellationToken) },
            Roles.Buyer => new { tasks = await catalog.TasksAsync(User, cancellationToken), valuations = await catalog.ValuationsAsync(User, cancellationToken) },
            _ => new { },
        };
        await accounts.RecordAsync(User.AccountId(), "account.export", User.AccountId(), cancellationToken);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(new { exportedAt = DateTime.UtcNow, gateway, catalog = catalogData }, s_json);
        return File(bytes, "application/json", $"datamarket-{gateway.Account.Name}.json");
    }

    public async Task<IActionResult> OnPostDeleteAsync(string password, CancellationToken cancellationToken)
    {
        try
        {
            await accounts.DeleteAccountAsync(User.AccountId(), password ?? string.Empty, cancellationToken, async ct =>
            {
                var erased = await catalog.EraseAccountDataAsync(User, ct);
                return $"catalog: {erased.ListingsDeleted} drafts and {erased.TasksDeleted} tasks and {erased.ValuationsDeleted} valuations deleted, {erased.ListingsWithdrawn} listings withdrawn, {erased.BlobsDeleted} files deleted";
            });
            await HttpContext.SignOutAsync(GatewayExtensions.WebScheme);
            return LocalRedirect("/?deleted=1");
        }
        catch (AccountException exception)
        {
            Error = exception.Message;
            Response.StatusCode = exception.StatusCode;
            return Page();
        }
        catch (ServiceCallException exception)
        {
            Error = $"Your data in the catalog could not be erased, so the account was not deleted: {exception.Message}";
            Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return Page();
        }
    }
}
