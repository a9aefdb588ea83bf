using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace DataMarket.Cli.Tests;

/// <summary>
/// <c>serve</c> end to end through the gateway with API keys: a seller lists and prices data, a buyer values it by
/// tiered-knn-shapley, quotes, buys (with an Idempotency-Key) and downloads it; the seller registers a destination, an
/// operator asks the scheduler for the period's run, and the seller reads its statement. Other callers get 404.
/// </summary>
public sealed class settlement_over_the_gateway(EmbeddedServer server) : IClassFixture<EmbeddedServer>
{
    private const string Csv = "x0,x1,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n";
    private const string TaskCsv = "x0,x1,label\n1,2,0\n7,8,1\n";

    [Fact]
    public async Task a_buyer_buys_and_downloads_and_the_operators_run_pays_the_seller()
    {
        var seller = await server.SignUpAsync("seller-s");
        var otherSeller = await server.SignUpAsync("seller-t");
        var buyer = await server.SignUpAsync("buyer-b");
        var otherBuyer = await server.SignUpAsync("buyer-c");
        var @operator = await server.SignUpAsync("operator-o");

        var listing = await EmbeddedServer.CreateListingAsync(seller.Http, "priced data");
        Assert.Equal(HttpStatusCode.OK, (await seller.Http.PutAsync($"/api/listings/{listing}/data?format=csv&fileName=s.csv", EmbeddedServer.Text(Csv))).StatusCode);
        await Expect(HttpStatusCode.OK, seller.Http.PutAsJsonAsync($"/api/terms/{listing}", new { reserve = 300, listPrice = 5_000 }));
        await Expect(HttpStatusCode.NotFound, otherSeller.Http.PutAsJsonAsync($"/api/terms/{listing}", new { reserve = 1 }));

        var posted = await buyer.Http.PostAsync("/api/tasks?name=t&format=csv&fileName=t.csv", EmbeddedServer.Text(TaskCsv));
        var task = (await posted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        var requested = await buyer.Http.PostAsJsonAsync("/api/valuations", new { taskId = task, listingIds = new[] { listing }, method = "tiered-knn-shapley", k = 1 });
        var valuation = (await requested.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        await WaitForAsync(buyer.Http, $"/api/valuations/{valuation}", "status", "Completed");

        var quote = await Expect(HttpStatusCode.Created, buyer.Http.PostAsJsonAsync("/api/quotes", new { valuationId = valuation, theta = 1_000 }));
        var quoteId = quote.GetProperty("id").GetGuid();
        Assert.InRange(quote.GetProperty("price").GetInt64(), 300, 5_000);
        await Expect(HttpStatusCode.NotFound, otherBuyer.Http.GetAsync($"/api/quotes/{quoteId}"));

        var purchase = await Expect(HttpStatusCode.Created, Purchase(buyer.Http, quoteId, "buy-once"));
        Assert.Equal(purchase.GetRawText(), (await Expect(HttpStatusCode.Created, Purchase(buyer.Http, quoteId, "buy-once"))).GetRawText());
        var purchaseId = purchase.GetProperty("id").GetGuid();
        Assert.Equal(Csv, await buyer.Http.GetStringAsync($"/api/purchases/{purchaseId}/download"));
        await Expect(HttpStatusCode.NotFound, otherBuyer.Http.GetAsync($"/api/purchases/{purchaseId}/download"));
        await Expect(HttpStatusCode.NotFound, seller.Http.GetAsync($"/api/purchases/{purchaseId}/download"));

        await Expect(HttpStatusCode.OK, seller.Http.PostAsync($"/api/sellers/{seller.Id}/destination", null));
        await Expect(HttpStatusCode.NotFound, otherSeller.Http.PostAsync($"/api/sellers/{seller.Id}/destination", null));
        await Expect(HttpStatusCode.Forbidden, seller.Http.PostAsync("/api/settlements/2026-11/run", null));
        // serve keeps the 14-day refund window: the share is still held, so this run pays nobody and says so.
        await Expect(HttpStatusCode.Accepted, @operator.Http.PostAsync("/api/settlements/2026-11/run", null));
        var run = await WaitForAsync(@operator.Http, "/api/settlements/2026-11", "status", "completed");
        Assert.Empty(run.GetProperty("payouts").EnumerateArray());
        Assert.True(run.GetProperty("reconciliation").GetProperty("clean").GetBoolean());

        var statement = await Expect(HttpStatusCode.OK, seller.Http.GetAsync($"/api/sellers/{seller.Id}/statement?period={DateTime.UtcNow:yyyy-MM}"));
        Assert.True(statement.GetProperty("ledger")[0].GetProperty("held").GetInt64() > 0, statement.GetRawText());
        await Expect(HttpStatusCode.NotFound, otherSeller.Http.GetAsync($"/api/sellers/{seller.Id}/statement?period=2026-11"));
        await Expect(HttpStatusCode.BadRequest, seller.Http.GetAsync($"/api/sellers/{seller.Id}/statement?period=November"));
        // A dispute is an operator's: the buyer cannot open one on its own purchase; the operator's reverses the held sale.
        await Expect(HttpStatusCode.Forbidden, buyer.Http.PostAsync($"/api/purchases/{purchaseId}/dispute", null));
        await Expect(HttpStatusCode.OK, @operator.Http.PostAsync($"/api/purchases/{purchaseId}/dispute", null));
        // Every request that moved money, or tried to, is in the audit log with who and how it was answered.
        var audit = (await server.ReadAuditAsync()).Where(e => e.ActorId == buyer.Id || e.ActorId == seller.Id || e.ActorId == @operator.Id || e.ActorId == otherSeller.Id)
            .Select(e => (e.ActorId, e.Action, e.Target)).ToList();
        Assert.Contains((seller.Id, "set price terms", $"/api/terms/{listing} answered 200"), audit);
        Assert.Contains((otherSeller.Id, "set price terms", $"/api/terms/{listing} answered 404"), audit);
        Assert.Equal(2, audit.Count(e => e == (buyer.Id, "purchase", "/api/purchases answered 201")));
        Assert.Contains((seller.Id, "set a payout destination", $"/api/sellers/{seller.Id}/destination answered 200"), audit);
        Assert.Contains((@operator.Id, "run a settlement", "/api/settlements/2026-11/run answered 202"), audit);
        Assert.Contains((buyer.Id, "record a dispute", $"/api/purchases/{purchaseId}/dispute answered 403"), audit);
        Assert.Contains((@operator.Id, "record a dispute", $"/api/purchases/{purchaseId}/dispute answered 200"), audit);
        Assert.DoesNotContain(audit, e => e.Target.Contains("/download", StringComparison.Ordinal) || e.Target.Contains("/statement", StringComparison.Ordinal));
    }

    [Fact]
    public async Task the_gateway_forwards_the_stripe_webhook_without_a_token()
    {
        // No account and no key: the gateway lets it through and the settlement service answers. serve runs the sandbox
        // rails, so the service says it has no Stripe webhook endpoint (the gateway alone would answer 401 or its own 404).
        using var anonymous = server.Anonymous();
        var response = await anonymous.PostAsync("/api/payments/stripe/webhook", new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("webhook", problem.GetProperty("field").GetString());
        // Other settlement routes still need an account.
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/settlements")).StatusCode);
    }

    private static Task<HttpResponseMessage> Purchase(HttpClient client, Guid quoteId, string key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/purchases") { Content = new StringContent($"{{\"quoteId\":\"{quoteId}\"}}", Encoding.UTF8, "application/json") };
        request.Headers.Add("Idempotency-Key", key);
        return client.SendAsync(request);
    }

    private static async Task<JsonElement> Expect(HttpStatusCode status, Task<HttpResponseMessage> call)
    {
        var response = await call;
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{response.StatusCode} (wanted {status}): {text}");
        return text.Length > 0 && text[0] == '{' ? JsonDocument.Parse(text).RootElement.Clone() : default;
    }

    private static async Task<JsonElement> WaitForAsync(HttpClient client, string path, string property, string value)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (true)
        {
            var response = await client.GetAsync(path);
            if (response.IsSuccessStatusCode)
            {
                var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
                if (body.GetProperty(property).GetString() == value)
                {
                    return body;
                }
            }

            Assert.True(DateTime.UtcNow < deadline, $"{path} did not reach {property} = {value} within two minutes");
            await Task.Delay(100);
        }
    }
}
