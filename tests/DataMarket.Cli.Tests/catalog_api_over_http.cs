using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace DataMarket.Cli.Tests;

/// <summary>The defects found by trying the API as a new user and as an attacker, each checked on the embedded server.</summary>
public sealed class catalog_api_over_http(EmbeddedServer server) : IClassFixture<EmbeddedServer>
{
    private const string Csv = "x0,x1,label\n1,2,0\n3,4,1\n5,6,0\n";

    [Fact]
    public async Task every_binding_failure_and_unknown_route_answers_with_a_problem_that_says_what_was_wrong()
    {
        using var client = await server.Client("buyer-binding");
        using var seller = await server.Client("seller-binding");

        var malformed = await seller.PostAsync("/api/listings", new StringContent("{\"name\": ", Encoding.UTF8, "application/json"));
        await AssertProblemAsync(malformed, HttpStatusCode.BadRequest, "CreateListingRequest");

        var wrongType = await client.PostAsync("/api/valuations", new StringContent("{\"taskId\": 123, \"listingIds\": []}", Encoding.UTF8, "application/json"));
        await AssertProblemAsync(wrongType, HttpStatusCode.BadRequest, "taskId");

        var badQuery = await client.GetAsync($"/api/valuations/{Guid.NewGuid()}/points?offset=abc");
        await AssertProblemAsync(badQuery, HttpStatusCode.BadRequest, "offset");

        var badGuid = await client.GetAsync("/api/listings/not-a-guid");
        await AssertProblemAsync(badGuid, HttpStatusCode.NotFound, null);
    }

    [Fact]
    public async Task an_oversized_upload_is_refused_with_413_and_nothing_is_stored()
    {
        using var client = await server.Client("seller-oversized");
        var listing = await EmbeddedServer.CreateListingAsync(client, "big");
        var before = server.BlobFiles();
        var body = "x0,label\n" + string.Concat(Enumerable.Repeat("1.000000,0\n", (int)(EmbeddedServer.UploadLimit / 11) + 100));

        var response = await client.PutAsync($"/api/listings/{listing}/data?format=csv&fileName=big.csv", new StringContent(body, Encoding.UTF8, "text/csv"));

        await AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge, null);
        var after = await client.GetFromJsonAsync<JsonElement>($"/api/listings/{listing}");
        Assert.Equal("Draft", after.GetProperty("status").GetString());
        Assert.Equal(before, server.BlobFiles());
    }

    [Theory]
    [InlineData("../../etc/passwd")]
    [InlineData("..\\..\\windows\\win.ini")]
    [InlineData("name\u0000with-nul.csv")]
    public async Task path_traversal_and_control_characters_in_file_names_are_refused(string fileName)
    {
        using var client = await server.Client("seller-traversal");
        var listing = await EmbeddedServer.CreateListingAsync(client, "traversal");

        var response = await client.PutAsync($"/api/listings/{listing}/data?format=csv&fileName={Uri.EscapeDataString(fileName)}", new StringContent(Csv, Encoding.UTF8, "text/csv"));

        await AssertProblemAsync(response, HttpStatusCode.BadRequest, "plain file name");
    }

    [Fact]
    public async Task a_very_long_file_name_is_refused_without_being_echoed()
    {
        using var client = await server.Client("seller-long-name");
        var listing = await EmbeddedServer.CreateListingAsync(client, "long name");
        var fileName = new string('f', 5000) + ".csv";

        var response = await client.PutAsync($"/api/listings/{listing}/data?format=csv&fileName={fileName}", new StringContent(Csv, Encoding.UTF8, "text/csv"));

        var body = await AssertProblemAsync(response, HttpStatusCode.BadRequest, "FileName");
        Assert.DoesNotContain(new string('f', 300), body);
    }

    [Theory]
    [InlineData("bell\u0007name")]
    [InlineData("right-to-left \u202Evil")]
    public async Task names_with_control_characters_are_refused(string name)
    {
        using var client = await server.Client("seller-names");
        var response = await client.PostAsJsonAsync("/api/listings", new { name, description = "d" });
        await AssertProblemAsync(response, HttpStatusCode.BadRequest, "control characters");
    }

    [Fact]
    public async Task listings_do_not_show_content_hashes()
    {
        using var client = await server.Client("seller-hash");
        var listing = await EmbeddedServer.CreateListingAsync(client, "hash");
        Assert.Equal(HttpStatusCode.OK, (await client.PutAsync($"/api/listings/{listing}/data?format=csv&fileName=d.csv", new StringContent(Csv, Encoding.UTF8, "text/csv"))).StatusCode);

        using var other = await server.Client("buyer-hash");
        var text = await other.GetStringAsync("/api/listings");
        Assert.Contains(listing.ToString(), text);
        Assert.DoesNotContain("blobId", text, StringComparison.OrdinalIgnoreCase);
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(Csv)));
        Assert.DoesNotContain(sha, text);
    }

    [Fact]
    public async Task a_buyer_lists_its_own_tasks_and_valuations_and_locations_resolve_with_utc_timestamps()
    {
        using var seller = await server.Client("seller-lists");
        var listing = await EmbeddedServer.CreateListingAsync(seller, "for buyers");
        Assert.Equal(HttpStatusCode.OK, (await seller.PutAsync($"/api/listings/{listing}/data?format=csv&fileName=d.csv", new StringContent(Csv, Encoding.UTF8, "text/csv"))).StatusCode);
        using var buyer = await server.Client("buyer-lists");
        using var otherBuyer = await server.Client("buyer-other");

        var posted = await buyer.PostAsync("/api/tasks?name=mine&format=csv&fileName=t.csv", new StringContent(Csv, Encoding.UTF8, "text/csv"));
        Assert.Equal(HttpStatusCode.Created, posted.StatusCode);
        var task = await buyer.GetFromJsonAsync<JsonElement>(posted.Headers.Location!);
        var taskId = task.GetProperty("id").GetGuid();
        Assert.EndsWith("Z", task.GetProperty("postedAt").GetString());

        var requested = await buyer.PostAsJsonAsync("/api/valuations", new { taskId, listingIds = new[] { listing }, k = 1 });
        Assert.Equal(HttpStatusCode.Accepted, requested.StatusCode);
        var valuation = await buyer.GetFromJsonAsync<JsonElement>(requested.Headers.Location!);
        Assert.EndsWith("Z", valuation.GetProperty("requestedAt").GetString());

        var tasks = await buyer.GetFromJsonAsync<JsonElement>("/api/tasks");
        Assert.Equal([taskId], tasks.EnumerateArray().Select(t => t.GetProperty("id").GetGuid()));
        var valuations = await buyer.GetFromJsonAsync<JsonElement>("/api/valuations");
        Assert.Equal([valuation.GetProperty("id").GetGuid()], valuations.EnumerateArray().Select(v => v.GetProperty("id").GetGuid()));
        var listed = await seller.GetFromJsonAsync<JsonElement>($"/api/listings/{listing}");
        Assert.EndsWith("Z", listed.GetProperty("createdAt").GetString());
        Assert.EndsWith("Z", listed.GetProperty("listedAt").GetString());

        Assert.Empty((await otherBuyer.GetFromJsonAsync<JsonElement>("/api/tasks")).EnumerateArray());
        Assert.Empty((await otherBuyer.GetFromJsonAsync<JsonElement>("/api/valuations")).EnumerateArray());
        Assert.Equal(HttpStatusCode.NotFound, (await otherBuyer.GetAsync(posted.Headers.Location)).StatusCode);
    }

    [Fact]
    public async Task an_idempotency_key_makes_every_creating_post_happen_once()
    {
        using var seller = await server.Client("seller-idempotent");
        var first = await PostWithKeyAsync(seller, "/api/listings", JsonContent.Create(new { name = "once", description = "d" }), "listing-key-1");
        var second = await PostWithKeyAsync(seller, "/api/listings", JsonContent.Create(new { name = "once", description = "d" }), "listing-key-1");
        Assert.Equal(first, second);
        var mine = await seller.GetFromJsonAsync<JsonElement>("/api/listings?mine=true");
        Assert.Single(mine.EnumerateArray());
        Assert.Equal(HttpStatusCode.OK, (await seller.PutAsync($"/api/listings/{first}/data?format=csv&fileName=d.csv", new StringContent(Csv, Encoding.UTF8, "text/csv"))).StatusCode);

        using var buyer = await server.Client("buyer-idempotent");
        var task1 = await PostWithKeyAsync(buyer, "/api/tasks?name=t&format=csv&fileName=t.csv", new StringContent(Csv, Encoding.UTF8, "text/csv"), "task-key");
        var task2 = await PostWithKeyAsync(buyer, "/api/tasks?name=t&format=csv&fileName=t.csv", new StringContent(Csv, Encoding.UTF8, "text/csv"), "task-key");
        Assert.Equal(task1, task2);
        Assert.Single((await buyer.GetFromJsonAsync<JsonElement>("/api/tasks")).EnumerateArray());

        var request = new { taskId = task1, listingIds = new[] { first }, k = 1 };
        var valuation1 = await PostWithKeyAsync(buyer, "/api/valuations", JsonContent.Create(request), "valuation-key");
        var valuation2 = await PostWithKeyAsync(buyer, "/api/valuations", JsonContent.Create(request), "valuation-key");
        Assert.Equal(valuation1, valuation2);
        Assert.Single((await buyer.GetFromJsonAsync<JsonElement>("/api/valuations")).EnumerateArray());

        // The same key for another kind of request is a mistake, not a replay.
        using var reuse = new HttpRequestMessage(HttpMethod.Post, "/api/valuations") { Content = JsonContent.Create(request) };
        reuse.Headers.Add("Idempotency-Key", "task-key");
        await AssertProblemAsync(await buyer.SendAsync(reuse), HttpStatusCode.Conflict, "Idempotency-Key");
    }

    private static async Task<Guid> PostWithKeyAsync(HttpClient client, string path, HttpContent content, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        request.Headers.Add("Idempotency-Key", key);
        var response = await client.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }


    private static async Task<string> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string? mentions)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {status}, got {response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        if (mentions is not null)
        {
            Assert.Contains(mentions, body, StringComparison.OrdinalIgnoreCase);
        }

        return body;
    }
}
