using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace DataMarket.Cli.Tests;

/// <summary>
/// Every API endpoint tried through the gateway by callers who must be refused: anonymous, only an X-Actor-Id header,
/// a forged key, a revoked key, the wrong seller, another buyer, the wrong role. Each gets 401, 403 or 404, and no
/// refusal shows another account's ids or names.
/// </summary>
public sealed class access_control_over_http(EmbeddedServer server) : IClassFixture<EmbeddedServer>
{
    private const string Csv = "x0,x1,label\n1,2,0\n3,4,1\n5,6,0\n";

    private sealed record Call(HttpMethod Method, string Path, Func<HttpContent?> Body);

    [Fact]
    public async Task every_endpoint_refuses_every_caller_who_may_not_use_it_without_leaking()
    {
        var sellerA = await server.SignUpAsync("seller-a");
        var sellerB = await server.SignUpAsync("seller-b");
        var buyerX = await server.SignUpAsync("buyer-x");
        var buyerY = await server.SignUpAsync("buyer-y");

        var listed = await EmbeddedServer.CreateListingAsync(sellerA.Http, "listed by a");
        Assert.Equal(HttpStatusCode.OK, (await sellerA.Http.PutAsync($"/api/listings/{listed}/data?format=csv&fileName=a.csv", EmbeddedServer.Text(Csv))).StatusCode);
        var draft = await EmbeddedServer.CreateListingAsync(sellerA.Http, "draft of a");
        var posted = await buyerX.Http.PostAsync("/api/tasks?name=secret-task&format=csv&fileName=t.csv", EmbeddedServer.Text(Csv));
        var task = (await posted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        var requested = await buyerX.Http.PostAsJsonAsync("/api/valuations", new { taskId = task, listingIds = new[] { listed }, k = 1 });
        Assert.Equal(HttpStatusCode.Accepted, requested.StatusCode);
        var valuation = (await requested.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();

        var revoked = await server.SignUpAsync("buyer-revoked");
        Assert.Equal(HttpStatusCode.NoContent, (await revoked.Http.DeleteAsync($"/api/me/keys/{revoked.KeyId}")).StatusCode);
        var forgedKey = $"dmk_{buyerX.KeyId}_{new string('A', 43)}";

        var secrets = new[] { sellerA.Id, buyerX.Id, buyerX.Key, listed.ToString(), draft.ToString(), task.ToString(), valuation.ToString(), "secret-task", "draft of a" };

        var everyEndpoint = new List<Call>
        {
            new(HttpMethod.Get, "/api/listings", () => null),
            new(HttpMethod.Get, $"/api/listings/{draft}", () => null),
            new(HttpMethod.Post, "/api/listings", () => JsonContent.Create(new { name = "n", description = "d" })),
            new(HttpMethod.Put, $"/api/listings/{draft}/data?format=csv&fileName=x.csv", () => EmbeddedServer.Text(Csv)),
            new(HttpMethod.Get, "/api/tasks", () => null),
            new(HttpMethod.Get, $"/api/tasks/{task}", () => null),
            new(HttpMethod.Post, "/api/tasks?name=t&format=csv&fileName=t.csv", () => EmbeddedServer.Text(Csv)),
            new(HttpMethod.Get, "/api/valuations", () => null),
            new(HttpMethod.Get, $"/api/valuations/{valuation}", () => null),
            new(HttpMethod.Get, $"/api/valuations/{valuation}/points", () => null),
            new(HttpMethod.Post, "/api/valuations", () => JsonContent.Create(new { taskId = task, listingIds = new[] { listed } })),
            new(HttpMethod.Get, "/api/me", () => null),
            new(HttpMethod.Post, "/api/me/keys", () => JsonContent.Create(new { name = "k" })),
            new(HttpMethod.Delete, $"/api/me/keys/{buyerX.KeyId}", () => null),
            new(HttpMethod.Post, "/api/accounts", () => JsonContent.Create(new { role = "operator", name = "sneaky" })),
            new(HttpMethod.Get, "/api/audit", () => null),
            new(HttpMethod.Get, "/api/listings/valuations", () => null),
            new(HttpMethod.Get, $"/api/valuations/{valuation}/points/lowest", () => null),
            new(HttpMethod.Get, "/api/purchases", () => null),
            new(HttpMethod.Get, "/api/settlements/ledger-verification", () => null),
            new(HttpMethod.Get, "/api/models", () => null),
            new(HttpMethod.Post, "/api/models?fileName=m.safetensors", () => new ByteArrayContent(new byte[16])),
        };

        using var anonymous = server.Anonymous();
        using var actorHeaderOnly = server.Anonymous();
        actorHeaderOnly.DefaultRequestHeaders.Add("X-Actor-Id", buyerX.Id);
        using var forged = server.WithKey(forgedKey);
        using var revokedKey = server.WithKey(revoked.Key);
        foreach (var (caller, client) in new[] { ("anonymous", anonymous), ("X-Actor-Id only", actorHeaderOnly), ("forged key", forged), ("revoked key", revokedKey) })
        {
            foreach (var call in everyEndpoint)
            {
                await AssertRefusedAsync(client, call, [HttpStatusCode.Unauthorized], $"{caller}: {call.Method} {call.Path}", secrets);
            }
        }

        // The wrong seller cannot see or fill another seller's draft.
        await AssertRefusedAsync(sellerB.Http, everyEndpoint[1], [HttpStatusCode.NotFound], "wrong seller reads a draft", secrets);
        await AssertRefusedAsync(sellerB.Http, everyEndpoint[3], [HttpStatusCode.NotFound], "wrong seller uploads", secrets);
        // Another buyer cannot see this buyer's task, valuation or per-point values, nor revoke its key.
        foreach (var index in new[] { 5, 8, 9, 13 })
        {
            await AssertRefusedAsync(buyerY.Http, everyEndpoint[index], [HttpStatusCode.NotFound], $"other buyer: {everyEndpoint[index].Path}", secrets);
        }

        await AssertRefusedAsync(buyerY.Http, new Call(HttpMethod.Post, "/api/valuations", () => JsonContent.Create(new { taskId = task, listingIds = new[] { listed } })),
            [HttpStatusCode.NotFound], "other buyer values this buyer's task", secrets);
        var theirLists = await buyerY.Http.GetStringAsync("/api/tasks") + await buyerY.Http.GetStringAsync("/api/valuations");
        Assert.DoesNotContain(task.ToString(), theirLists);
        Assert.DoesNotContain(valuation.ToString(), theirLists);

        // Roles: sellers do not buy, buyers do not sell, and only operators manage accounts or read the audit log.
        foreach (var index in new[] { 4, 5, 6, 7, 8, 9, 10 })
        {
            await AssertRefusedAsync(sellerB.Http, everyEndpoint[index], [HttpStatusCode.Forbidden], $"seller on {everyEndpoint[index].Path}", secrets);
        }

        foreach (var index in new[] { 2, 3, 14, 15, 16, 19 })
        {
            await AssertRefusedAsync(buyerY.Http, everyEndpoint[index], [HttpStatusCode.Forbidden, HttpStatusCode.NotFound], $"buyer on {everyEndpoint[index].Path}", secrets);
        }

        // The web UI's pages reach these with the signed-in account: another buyer's lowest rows are not found, and
        // sellers do not read buyers' rows, purchases or the ledger check.
        await AssertRefusedAsync(buyerY.Http, everyEndpoint[17], [HttpStatusCode.NotFound], "other buyer: lowest rows", secrets);
        foreach (var index in new[] { 17, 18, 19 })
        {
            await AssertRefusedAsync(sellerB.Http, everyEndpoint[index], [HttpStatusCode.Forbidden], $"seller on {everyEndpoint[index].Path}", secrets);
        }

        // Erasing an account's catalog data is the gateway's step of deleting the account, not a public route.
        await AssertRefusedAsync(buyerX.Http, new Call(HttpMethod.Delete, "/api/account-data", () => null), [HttpStatusCode.NotFound], "erasure through the gateway", secrets);
        Assert.Contains(task.ToString(), await buyerX.Http.GetStringAsync("/api/tasks"));
    }

    [Fact]
    public async Task html_and_script_in_names_come_back_encoded()
    {
        using var seller = await server.Client("seller-html");
        const string name = "<script>alert('x')</script><img src=x onerror=alert(1)>";
        await EmbeddedServer.CreateListingAsync(seller, name);
        var body = await seller.GetStringAsync("/api/listings?mine=true");
        Assert.DoesNotContain("<script>", body);
        Assert.DoesNotContain("<img", body);
        var names = JsonDocument.Parse(body).RootElement.EnumerateArray().Select(l => l.GetProperty("name").GetString()).ToList();
        Assert.Contains(name, names);
    }

    [Fact]
    public async Task twenty_concurrent_valuation_requests_from_one_buyer_are_rate_limited_and_the_server_stays_healthy()
    {
        using var buyer = await server.Client("buyer-burst");
        var requests = Enumerable.Range(0, 20).Select(_ =>
            buyer.PostAsJsonAsync("/api/valuations", new { taskId = Guid.NewGuid(), listingIds = new[] { Guid.NewGuid() } }));

        var responses = await Task.WhenAll(requests);

        var limited = responses.Count(r => r.StatusCode == HttpStatusCode.TooManyRequests);
        Assert.True(limited >= 20 - EmbeddedServer.ValuationRequestsPerMinute, $"{limited} of 20 were rate-limited");
        Assert.All(responses.Where(r => r.StatusCode != HttpStatusCode.TooManyRequests), r => Assert.Equal(HttpStatusCode.NotFound, r.StatusCode));
        var rejected = responses.First(r => r.StatusCode == HttpStatusCode.TooManyRequests);
        Assert.Equal("application/problem+json", rejected.Content.Headers.ContentType?.MediaType);
        Assert.True(rejected.Headers.RetryAfter is not null);

        using var anonymous = server.Anonymous();
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await buyer.GetAsync("/api/valuations")).StatusCode);
        using var otherBuyer = await server.Client("buyer-calm");
        var other = await otherBuyer.PostAsJsonAsync("/api/valuations", new { taskId = Guid.NewGuid(), listingIds = new[] { Guid.NewGuid() } });
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
    }

    private static async Task AssertRefusedAsync(HttpClient client, Call call, HttpStatusCode[] allowed, string what, string[] secrets)
    {
        using var request = new HttpRequestMessage(call.Method, call.Path) { Content = call.Body() };
        var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(allowed.Contains(response.StatusCode), $"{what}: expected {string.Join(" or ", allowed)}, got {(int)response.StatusCode}: {body}");
        foreach (var secret in secrets)
        {
            Assert.False(body.Contains(secret, StringComparison.Ordinal), $"{what}: the refusal shows '{secret}': {body}");
        }
    }
}
