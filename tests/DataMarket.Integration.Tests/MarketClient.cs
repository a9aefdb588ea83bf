using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using DataMarket.ServiceDefaults.Security;

namespace DataMarket.Integration.Tests;

/// <summary>
/// Talks to the catalog over HTTP as one actor, carrying the kind of token the gateway signs for it (the role is
/// buyer for names that start with "buyer", seller otherwise).
/// </summary>
public sealed class MarketClient(HttpClient http, string actor)
{
    public HttpClient Http { get; } = WithToken(http, actor);

    public async Task<JsonElement> CreateListingAsync(string name)
    {
        var response = await Http.PostAsJsonAsync("/api/listings", new { name, description = "integration test data" });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    public Task<HttpResponseMessage> UploadAsync(Guid listingId, string csv, string fileName) =>
        Http.PutAsync($"/api/listings/{listingId}/data?format=csv&fileName={fileName}", new StringContent(csv, Encoding.UTF8, "text/csv"));

    public async Task<Guid> ListAsync(string name, string csv)
    {
        var listing = await CreateListingAsync(name);
        var id = listing.GetProperty("id").GetGuid();
        var response = await UploadAsync(id, csv, $"{name}.csv");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return id;
    }

    public async Task<Guid> PostTaskAsync(string csv)
    {
        var response = await Http.PostAsync("/api/tasks?name=task&format=csv&fileName=task.csv", new StringContent(csv, Encoding.UTF8, "text/csv"));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    public Task<HttpResponseMessage> RequestValuationAsync(Guid taskId, IEnumerable<Guid> listingIds, int k) =>
        Http.PostAsJsonAsync("/api/valuations", new { taskId, listingIds, method = "knn-shapley", k });

    public async Task<JsonElement> WaitForValuationAsync(Guid valuationId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var valuation = await Http.GetFromJsonAsync<JsonElement>($"/api/valuations/{valuationId}");
            var status = valuation.GetProperty("status").GetString();
            if (status is "Completed" or "Failed")
            {
                return valuation;
            }

            Assert.True(DateTime.UtcNow < deadline, $"valuation {valuationId} still {status} after {timeout}");
            await Task.Delay(100);
        }
    }

    public static string Csv(IEnumerable<(double[] Features, int Label)> rows)
    {
        var list = rows.ToList();
        var builder = new StringBuilder();
        builder.AppendLine(string.Join(',', Enumerable.Range(0, list[0].Features.Length).Select(i => $"x{i}")) + ",label");
        foreach (var (features, label) in list)
        {
            builder.AppendLine(string.Join(',', features.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + "," + label.ToString(CultureInfo.InvariantCulture));
        }

        return builder.ToString();
    }

    private static HttpClient WithToken(HttpClient http, string actor)
    {
        var role = actor.StartsWith("buyer", StringComparison.Ordinal) ? Roles.Buyer : Roles.Seller;
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", MarketFixture.Tokens.Issue(actor, role, actor));
        return http;
    }
}
