using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Serialization;
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

/// <summary>What the catalog refused, as its problem-details body said it (the file, row and column for a bad upload).</summary>
public sealed class CatalogCallException(HttpStatusCode status, string message) : Exception(message)
{
    public HttpStatusCode Status { get; } = status;
}

/// <summary>
/// The web UI's way to the catalog: the same HTTP API that API keys reach through the proxy, called with a token the
/// gateway signs for the signed-in account, so the catalog's own policies and scoping decide what the page may see.
/// </summary>
public sealed class CatalogClient(HttpClient http, ServiceTokenIssuer tokens)
{
    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

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
    public async Task<WebValuation?> ValuationAsync(ClaimsPrincipal user, Guid id, CancellationToken ct)
    {
        try
        {
            return await SendAsync<WebValuation>(user, HttpMethod.Get, $"/api/valuations/{id}", null, ct);
        }
        catch (CatalogCallException exception) when (exception.Status is HttpStatusCode.NotFound or HttpStatusCode.Forbidden)
        {
            return null;
        }
    }

    public Task<WebPointPage> PointsAsync(ClaimsPrincipal user, Guid id, int offset, int limit, CancellationToken ct) =>
        SendAsync<WebPointPage>(user, HttpMethod.Get, $"/api/valuations/{id}/points?offset={offset}&limit={limit}", null, ct);

    private static string Query(string fileName, string labelColumn) =>
        $"fileName={Uri.EscapeDataString(fileName)}&labelColumn={Uri.EscapeDataString(labelColumn)}";

    private async Task<T> SendAsync<T>(ClaimsPrincipal user, HttpMethod method, string path, HttpContent? content, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue(
            "Bearer", tokens.Issue(user.AccountId(), user.FindFirstValue("role") ?? string.Empty, user.FindFirstValue("name") ?? string.Empty));
        using var response = await http.SendAsync(request, ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new CatalogCallException(response.StatusCode, await ProblemTextAsync(response, ct));
        }

        return (await response.Content.ReadFromJsonAsync<T>(s_json, ct))!;
    }

    /// <summary>The problem's detail, its per-field errors and the file/row/column it names, in one readable line.</summary>
    private static async Task<string> ProblemTextAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(s_json, ct);
            var parts = new List<string>();
            if (problem.TryGetProperty("detail", out var detail) && detail.ValueKind == JsonValueKind.String)
            {
                parts.Add(detail.GetString()!);
            }
            else if (problem.TryGetProperty("title", out var title) && title.ValueKind == JsonValueKind.String)
            {
                parts.Add(title.GetString()!);
            }

            if (problem.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Object)
            {
                foreach (var field in errors.EnumerateObject())
                {
                    parts.Add($"{field.Name}: {string.Join("; ", field.Value.EnumerateArray().Select(e => e.GetString()))}");
                }
            }

            foreach (var where in new[] { "row", "column" })
            {
                if (problem.TryGetProperty(where, out var value) && value.ValueKind is JsonValueKind.Number or JsonValueKind.String)
                {
                    parts.Add($"{where} {value}");
                }
            }

            return parts.Count > 0 ? string.Join(" — ", parts) : $"the catalog answered {(int)response.StatusCode}";
        }
        catch (JsonException)
        {
            return $"the catalog answered {(int)response.StatusCode}";
        }
    }
}
