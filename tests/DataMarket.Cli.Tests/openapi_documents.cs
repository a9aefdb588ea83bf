using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace DataMarket.Cli.Tests;

/// <summary>The public API described by OpenAPI documents that anyone may read through the gateway, and its reference page.</summary>
public sealed class openapi_documents(EmbeddedServer server) : IClassFixture<EmbeddedServer>
{
    [Fact]
    public async Task the_gateway_document_describes_accounts_and_keys_with_the_api_key_scheme_and_no_pages()
    {
        var document = await ReadAsync("/openapi/gateway.json");
        var paths = document.GetProperty("paths");
        Assert.True(paths.TryGetProperty("/api/signup", out _));
        Assert.True(paths.TryGetProperty("/api/me/keys", out _));
        Assert.True(paths.TryGetProperty("/api/audit", out var audit));
        Assert.Equal("The latest audit-log entries, newest first (operators)", audit.GetProperty("get").GetProperty("summary").GetString());
        // The web UI's pages are not part of the API.
        Assert.DoesNotContain(paths.EnumerateObject(), path => !path.Name.StartsWith("/api/", StringComparison.Ordinal));
        var scheme = document.GetProperty("components").GetProperty("securitySchemes").GetProperty("apiKey");
        Assert.Equal("http", scheme.GetProperty("type").GetString());
        Assert.Equal("bearer", scheme.GetProperty("scheme").GetString());
    }

    [Fact]
    public async Task the_catalog_document_comes_through_the_gateway_with_its_calls_and_answers_and_no_internal_address()
    {
        var document = await ReadAsync("/openapi/catalog.json");
        var paths = document.GetProperty("paths");
        var valuation = paths.GetProperty("/api/valuations/{id}").GetProperty("get");
        Assert.Contains("95% intervals", valuation.GetProperty("summary").GetString(), StringComparison.Ordinal);
        var answer = valuation.GetProperty("responses").GetProperty("200").GetProperty("content").GetProperty("application/json").GetProperty("schema");
        Assert.Equal("#/components/schemas/ValuationView", answer.GetProperty("$ref").GetString());
        Assert.True(valuation.GetProperty("responses").TryGetProperty("400", out _));
        Assert.True(paths.TryGetProperty("/api/listings/{id}/data", out _));
        Assert.True(paths.GetProperty("/api/valuations").TryGetProperty("post", out _));
        Assert.True(paths.GetProperty("/api/models").TryGetProperty("post", out _));
        // Only the catalog's calls, although the embedded host also serves the settlement service's.
        Assert.False(paths.TryGetProperty("/api/quotes", out _));
        Assert.False(paths.TryGetProperty("/api/payments/stripe/webhook", out _));
        // Calls made from the reference page go to the gateway that served it, never to the catalog's own address.
        Assert.False(document.TryGetProperty("servers", out var servers) && servers.GetArrayLength() > 0);
    }

    [Fact]
    public async Task the_reference_page_is_served_without_signing_in()
    {
        using var anonymous = server.Anonymous();
        var response = await anonymous.GetAsync("/api-reference");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("openapi/catalog.json", html, StringComparison.Ordinal);
        Assert.Contains("openapi/gateway.json", html, StringComparison.Ordinal);
    }

    private async Task<JsonElement> ReadAsync(string path)
    {
        using var anonymous = server.Anonymous();
        var response = await anonymous.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var document = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.StartsWith("3.", document.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        return document;
    }
}
