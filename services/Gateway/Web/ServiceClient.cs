using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Serialization;
using DataMarket.Gateway.Infrastructure;
using DataMarket.ServiceDefaults.Security;

namespace DataMarket.Gateway.Web;

/// <summary>What a service refused, as its problem-details body said it (the file, row and column for a bad upload).</summary>
public sealed class ServiceCallException(HttpStatusCode status, string message) : Exception(message)
{
    public HttpStatusCode Status { get; } = status;
}

/// <summary>
/// The web UI's way to a service: the same HTTP API that API keys reach through the proxy, called with a token the
/// gateway signs for the signed-in account, so the service's own policies and scoping decide what a page may see.
/// </summary>
public abstract class ServiceClient(HttpClient http, ServiceTokenIssuer tokens)
{
    protected static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    protected async Task<T> SendAsync<T>(ClaimsPrincipal user, HttpMethod method, string path, HttpContent? content, CancellationToken ct, string? idempotencyKey = null)
    {
        using var response = await SendRawAsync(user, method, path, content, ct, idempotencyKey);
        return (await response.Content.ReadFromJsonAsync<T>(Json, ct))!;
    }

    /// <summary>The same call, or null when the service answers that there is no such thing for this account.</summary>
    protected async Task<T?> FindAsync<T>(ClaimsPrincipal user, string path, CancellationToken ct)
        where T : class
    {
        try
        {
            return await SendAsync<T>(user, HttpMethod.Get, path, null, ct);
        }
        catch (ServiceCallException exception) when (exception.Status is HttpStatusCode.NotFound or HttpStatusCode.Forbidden)
        {
            return null;
        }
    }

    /// <summary>A successful response, for the caller to read and dispose; any other answer throws with the problem's text.</summary>
    protected async Task<HttpResponseMessage> SendRawAsync(ClaimsPrincipal user, HttpMethod method, string path, HttpContent? content, CancellationToken ct, string? idempotencyKey = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue(
            "Bearer", tokens.Issue(user.AccountId(), user.FindFirstValue("role") ?? string.Empty, user.FindFirstValue("name") ?? string.Empty));
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        await OnAnsweredAsync(user, method, path, response.StatusCode, ct);
        if (!response.IsSuccessStatusCode)
        {
            using (response)
            {
                throw new ServiceCallException(response.StatusCode, await ProblemTextAsync(response, ct));
            }
        }

        return response;
    }

    /// <summary>Called with every answer (the settlement client audits the calls that move money).</summary>
    protected virtual Task OnAnsweredAsync(ClaimsPrincipal user, HttpMethod method, string path, HttpStatusCode status, CancellationToken ct) => Task.CompletedTask;

    /// <summary>The problem's detail, its per-field errors and the file/row/column it names, in one readable line.</summary>
    private static async Task<string> ProblemTextAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Json, ct);
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

            return parts.Count > 0 ? string.Join(" — ", parts) : $"the service answered {(int)response.StatusCode}";
        }
        catch (JsonException)
        {
            return $"the service answered {(int)response.StatusCode}";
        }
    }
}
