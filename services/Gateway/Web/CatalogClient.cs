using System.Net.Http.Json;
using System.Security.Claims;
using DataMarket.Gateway.Infrastructure;
using DataMarket.ServiceDefaults.Security;

namespace DataMarket.Gateway.Web;

public sealed record WebListing(Guid Id, string SellerId, string Name, string? Description, string Status, string? Format, int Rows, int Features, DateTime CreatedAt, DateTime? ListedAt);

public sealed record WebTask(Guid Id, string Name, string Format, int Rows, int Features, DateTime PostedAt);

public sealed record WebEstimate(double Value, double? StandardError, double? Lower95, double? Upper95);

public sealed record WebSellerValue(string SellerId, int Points, WebEstimate Value);

public sealed record WebValuation(
    Guid Id, Guid TaskId, string Method, int K, IReadOnlyList<Guid> ListingIds, string Status, string? Error,
    int? TestPoints, int CompletedTestPoints, double? TotalUtility, DateTime RequestedAt, DateTime? FinishedAt, IReadOnlyList<WebSellerValue> Sellers)
{
    public bool Finished => Status is "Completed" or "Failed" or "Cancelled";
}

public sealed record WebPoint(int Ordinal, Guid ListingId, int Row, WebEstimate Value);

public sealed record WebPointPage(int Total, int Offset, int Limit, IReadOnlyList<WebPoint> Items);

/// <summary>What a seller's listings received in one valuation (never the buyer or the task).</summary>
public sealed record WebReceivedValue(Guid ValuationId, string Method, int K, IReadOnlyList<Guid> ListingIds, int Points, WebEstimate Value, DateTime? FinishedAt);

public sealed record WebErasure(int ListingsDeleted, int ListingsWithdrawn, int TasksDeleted, int ValuationsDeleted, int BlobsDeleted);

/// <summary>The web UI's calls to the catalog (listings, tasks, valuations), as the signed-in account.</summary>
public sealed class CatalogClient(HttpClient http, ServiceTokenIssuer tokens) : ServiceClient(http, tokens)
{
    public static void Configure(HttpClient http, GatewayOptions options) => http.BaseAddress = new Uri(options.CatalogAddress);

    public Task<List<WebListing>> ListingsAsync(ClaimsPrincipal user, bool mine, CancellationToken ct) =>
        SendAsync<List<WebListing>>(user, HttpMethod.Get, $"/api/listings?mine={(mine ? "true" : "false")}", null, ct);

    public Task<WebListing> CreateListingAsync(ClaimsPrincipal user, string name, string? description, CancellationToken ct) =>
        SendAsync<WebListing>(user, HttpMethod.Post, "/api/listings", JsonContent.Create(new { name, description }), ct);

    public Task<WebListing> UploadListingDataAsync(ClaimsPrincipal user, Guid listingId, Stream data, string fileName, string labelColumn, CancellationToken ct) =>
        SendAsync<WebListing>(user, HttpMethod.Put, $"/api/listings/{listingId}/data?{Query(fileName, labelColumn)}", new StreamContent(data), ct);

    public Task<List<WebTask>> TasksAsync(ClaimsPrincipal user, CancellationToken ct) =>
        SendAsync<List<WebTask>>(user, HttpMethod.Get, "/api/tasks", null, ct);

    public Task<WebTask> PostTaskAsync(ClaimsPrincipal user, string name, Stream data, string fileName, string labelColumn, CancellationToken ct) =>
        SendAsync<WebTask>(user, HttpMethod.Post, $"/api/tasks?name={Uri.EscapeDataString(name)}&{Query(fileName, labelColumn)}", new StreamContent(data), ct);

    public Task<List<WebValuation>> ValuationsAsync(ClaimsPrincipal user, CancellationToken ct) =>
        SendAsync<List<WebValuation>>(user, HttpMethod.Get, "/api/valuations", null, ct);

    public Task<WebValuation> RequestValuationAsync(ClaimsPrincipal user, Guid taskId, IReadOnlyList<Guid> listingIds, string method, int k, CancellationToken ct) =>
        SendAsync<WebValuation>(user, HttpMethod.Post, "/api/valuations", JsonContent.Create(new { taskId, listingIds, method, k }), ct);

    /// <summary>The caller's own valuation, or null when the catalog says there is none for this account (another buyer's included).</summary>
    public Task<WebValuation?> ValuationAsync(ClaimsPrincipal user, Guid id, CancellationToken ct) =>
        FindAsync<WebValuation>(user, $"/api/valuations/{id}", ct);

    public Task<WebPointPage> PointsAsync(ClaimsPrincipal user, Guid id, int offset, int limit, CancellationToken ct) =>
        SendAsync<WebPointPage>(user, HttpMethod.Get, $"/api/valuations/{id}/points?offset={offset}&limit={limit}", null, ct);

    /// <summary>The rows with the lowest values (row numbers and values only).</summary>
    public Task<List<WebPoint>> LowestPointsAsync(ClaimsPrincipal user, Guid id, int limit, CancellationToken ct) =>
        SendAsync<List<WebPoint>>(user, HttpMethod.Get, $"/api/valuations/{id}/points/lowest?limit={limit}", null, ct);

    public Task<List<WebReceivedValue>> ReceivedValuesAsync(ClaimsPrincipal user, CancellationToken ct) =>
        SendAsync<List<WebReceivedValue>>(user, HttpMethod.Get, "/api/listings/valuations", null, ct);

    /// <summary>Erases the account's catalog data (the account deletion's first step, after the password check).</summary>
    public Task<WebErasure> EraseAccountDataAsync(ClaimsPrincipal user, CancellationToken ct) =>
        SendAsync<WebErasure>(user, HttpMethod.Delete, "/api/account-data", null, ct);

    private static string Query(string fileName, string labelColumn) =>
        $"fileName={Uri.EscapeDataString(fileName)}&labelColumn={Uri.EscapeDataString(labelColumn)}";
}
