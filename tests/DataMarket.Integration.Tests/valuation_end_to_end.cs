using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Shapley;

namespace DataMarket.Integration.Tests;

[Collection(MarketCollection.Name)]
public sealed class valuation_end_to_end(MarketFixture market)
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task a_valuation_requested_over_http_flows_through_rabbitmq_to_the_worker_and_back()
    {
        var random = new Random(42);
        var sellers = new[] { "seller-a", "seller-b", "seller-c" };
        var csvs = sellers.ToDictionary(s => s, s => MarketClient.Csv(Rows(random, 40, flip: s == "seller-c" ? 0.5 : 0)));
        var taskCsv = MarketClient.Csv(Rows(random, 15, flip: 0));

        var listingIds = new List<Guid>();
        foreach (var seller in sellers)
        {
            listingIds.Add(await new MarketClient(market.Catalog.CreateClient(), seller).ListAsync(seller, csvs[seller]));
        }

        var buyer = new MarketClient(market.Catalog.CreateClient(), "buyer-e2e");
        var taskId = await buyer.PostTaskAsync(taskCsv);
        var response = await buyer.RequestValuationAsync(taskId, listingIds, k: 3);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var valuationId = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();

        var valuation = await buyer.WaitForValuationAsync(valuationId, s_timeout);
        Assert.True(valuation.GetProperty("status").GetString() == "Completed", valuation.ToString());

        // The same computation straight from the library is the reference for what came back over the wire.
        var parts = sellers.Select(s => new TrainingPart(s, s, Parse(csvs[s]))).ToList();
        var expected = DatasetValuation.KnnShapleyClassification(parts, Parse(taskCsv), 3);

        var sellerValues = valuation.GetProperty("sellers").EnumerateArray().ToDictionary(
            s => s.GetProperty("sellerId").GetString()!,
            s => s.GetProperty("value"));
        Assert.Equal(sellers.Order(), sellerValues.Keys.Order());
        foreach (var seller in sellers)
        {
            Assert.Equal(expected.GroupValues[seller].Value, sellerValues[seller].GetProperty("value").GetDouble(), 12);
            Assert.Equal(expected.GroupValues[seller].StandardError, sellerValues[seller].GetProperty("standardError").GetDouble(), 12);
        }

        Assert.Equal(expected.TotalUtility.Value, valuation.GetProperty("totalUtility").GetDouble(), 12);
        Assert.True(sellerValues["seller-c"].GetProperty("value").GetDouble() < sellerValues["seller-a"].GetProperty("value").GetDouble());

        // Per-point values, paged in the order the listings were named.
        var points = new List<JsonElement>();
        for (var offset = 0; ; offset += 50)
        {
            var page = await buyer.Http.GetFromJsonAsync<JsonElement>($"/api/valuations/{valuationId}/points?offset={offset}&limit=50");
            Assert.Equal(120, page.GetProperty("total").GetInt32());
            var items = page.GetProperty("items").EnumerateArray().ToList();
            if (items.Count == 0)
            {
                break;
            }

            points.AddRange(items);
        }

        Assert.Equal(120, points.Count);
        for (var i = 0; i < points.Count; i++)
        {
            var part = i / 40;
            var row = i % 40;
            Assert.Equal(listingIds[part], points[i].GetProperty("listingId").GetGuid());
            Assert.Equal(row, points[i].GetProperty("row").GetInt32());
            Assert.Equal(expected.PartValues[part][row].Value, points[i].GetProperty("value").GetProperty("value").GetDouble(), 12);
        }
    }

    [Fact]
    public async Task every_method_is_served_over_the_bus_and_matches_the_library()
    {
        var random = new Random(43);
        var sellers = new[] { "original", "copier" };
        var originalCsv = MarketClient.Csv(Rows(random, 30, flip: 0));
        var csvs = new Dictionary<string, string> { ["original"] = originalCsv, ["copier"] = originalCsv };
        var listingIds = new List<Guid>();
        foreach (var seller in sellers)
        {
            listingIds.Add(await new MarketClient(market.Catalog.CreateClient(), $"{seller}-methods").ListAsync(seller, csvs[seller]));
        }

        var buyer = new MarketClient(market.Catalog.CreateClient(), "buyer-methods");
        var taskCsv = MarketClient.Csv(Rows(random, 10, flip: 0));
        var taskId = await buyer.PostTaskAsync(taskCsv);
        var parts = sellers.Select(s => new TrainingPart(s, $"{s}-methods", Parse(csvs[s]))).ToList();
        var test = Parse(taskCsv);
        var expected = new Dictionary<string, DatasetValuationResult>
        {
            ["asymmetric-knn-shapley"] = DatasetValuation.AsymmetricKnnShapley(parts, test, 3, ["original-methods", "copier-methods"]),
            ["knn-shapley/regression"] = DatasetValuation.KnnShapleyRegression(parts, test, 3),
        };

        foreach (var (key, reference) in expected)
        {
            var method = key.Split('/')[0];
            var taskType = key.Contains("regression") ? "regression" : "classification";
            var response = await buyer.Http.PostAsJsonAsync("/api/valuations", new { taskId, listingIds, method, k = 3, taskType });
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            var valuationId = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
            var valuation = await buyer.WaitForValuationAsync(valuationId, s_timeout);
            Assert.Equal("Completed", valuation.GetProperty("status").GetString());
            foreach (var seller in valuation.GetProperty("sellers").EnumerateArray())
            {
                var name = seller.GetProperty("sellerId").GetString()!;
                Assert.Equal(reference.GroupValues[name].Value, seller.GetProperty("value").GetProperty("value").GetDouble(), 12);
            }
        }

        // LoGra over RabbitMQ with the catalog and ledger on PostgreSQL: the coordinator trains and logs the gradient
        // store, the shards score it. The copier's rows are the original's, so the two sellers' values agree (to rounding:
        // the rows sit at other places in the gradient batches).
        var logra = await buyer.Http.PostAsJsonAsync("/api/valuations", new { taskId, listingIds, method = "logra", lograMode = "dot" });
        Assert.Equal(HttpStatusCode.Accepted, logra.StatusCode);
        var lograValuation = await buyer.WaitForValuationAsync((await logra.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid(), s_timeout);
        Assert.Equal("Completed", lograValuation.GetProperty("status").GetString());
        var lograValues = lograValuation.GetProperty("sellers").EnumerateArray()
            .ToDictionary(v => v.GetProperty("sellerId").GetString()!, v => v.GetProperty("value").GetProperty("value").GetDouble());
        Assert.Equal(["copier-methods", "original-methods"], lograValues.Keys.Order());
        Assert.True(double.IsFinite(lograValues["original-methods"]) && lograValues["original-methods"] != 0);
        Assert.InRange(Math.Abs(lograValues["original-methods"] - lograValues["copier-methods"]), 0, 1e-9 * Math.Abs(lograValues["original-methods"]));

        var unknown = await buyer.Http.PostAsJsonAsync("/api/valuations", new { taskId, listingIds, method = "astrology", k = 3 });
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        // Read as JSON: the answer escapes quotes and angle brackets (\u0027) so it is safe to paste into a page.
        var problem = await unknown.Content.ReadFromJsonAsync<JsonElement>();
        var messages = problem.GetProperty("errors").EnumerateObject().SelectMany(e => e.Value.EnumerateArray()).Select(m => m.GetString());
        Assert.Contains(messages, m => m!.Contains("unknown method 'astrology'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task a_buyer_cannot_see_another_buyers_valuation()
    {
        var random = new Random(5);
        var seller = new MarketClient(market.Catalog.CreateClient(), "seller-private");
        var listing = await seller.ListAsync("private", MarketClient.Csv(Rows(random, 10, 0)));
        var owner = new MarketClient(market.Catalog.CreateClient(), "buyer-owner");
        var taskId = await owner.PostTaskAsync(MarketClient.Csv(Rows(random, 5, 0)));
        var response = await owner.RequestValuationAsync(taskId, [listing], k: 3);
        var valuationId = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();

        var stranger = new MarketClient(market.Catalog.CreateClient(), "buyer-stranger");
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.Http.GetAsync($"/api/valuations/{valuationId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.Http.GetAsync($"/api/valuations/{valuationId}/points")).StatusCode);
        // Nor can anyone use someone else's task.
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.RequestValuationAsync(taskId, [listing], 3)).StatusCode);

        var anonymous = market.Catalog.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync($"/api/valuations/{valuationId}")).StatusCode);
        Assert.Equal("Completed", (await owner.WaitForValuationAsync(valuationId, s_timeout)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task a_valuation_against_a_task_of_another_width_is_refused_naming_the_listing()
    {
        var random = new Random(6);
        var seller = new MarketClient(market.Catalog.CreateClient(), "seller-wide");
        var listing = await seller.ListAsync("wide", MarketClient.Csv(Rows(random, 10, 0, features: 3)));
        var buyer = new MarketClient(market.Catalog.CreateClient(), "buyer-narrow");
        var taskId = await buyer.PostTaskAsync(MarketClient.Csv(Rows(random, 5, 0)));

        var response = await buyer.RequestValuationAsync(taskId, [listing], k: 3);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadAsStringAsync();
        Assert.Contains(listing.ToString(), problem);
        Assert.Contains("has 3 features but the test task has 2", problem);
    }

    [Fact]
    public async Task a_valuation_whose_data_went_missing_fails_with_a_reason_instead_of_hanging()
    {
        var random = new Random(7);
        var seller = new MarketClient(market.Catalog.CreateClient(), "seller-vanishing");
        // Content unique to this test, so deleting its blob touches no other test's data.
        var rows = Rows(random, 12, 0);
        rows[0].Features[0] = 1234.5678;
        var csv = MarketClient.Csv(rows);
        var listing = await seller.ListAsync("vanishing", csv);
        // Content hashes are internal (the API does not show them); the blob's address is the SHA-256 of what was uploaded.
        var blobId = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(csv)));
        File.Delete(Path.Combine(market.BlobRoot, blobId[..2], blobId[2..4], blobId));

        var buyer = new MarketClient(market.Catalog.CreateClient(), "buyer-vanishing");
        var taskId = await buyer.PostTaskAsync(MarketClient.Csv(Rows(random, 5, 0)));
        var response = await buyer.RequestValuationAsync(taskId, [listing], k: 3);
        var valuationId = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();

        var valuation = await buyer.WaitForValuationAsync(valuationId, s_timeout);
        Assert.Equal("Failed", valuation.GetProperty("status").GetString());
        Assert.Contains("not found", valuation.GetProperty("error").GetString());
    }

    internal static List<(double[] Features, int Label)> Rows(Random random, int count, double flip, int features = 2)
    {
        var rows = new List<(double[], int)>();
        for (var i = 0; i < count; i++)
        {
            var label = random.Next(2);
            var x = Enumerable.Range(0, features).Select(_ => label * 3.0 + random.NextDouble() * 2).ToArray();
            if (random.NextDouble() < flip)
            {
                label = 1 - label;
            }

            rows.Add((x, label));
        }

        return rows;
    }

    internal static TabularDataset Parse(string csv) =>
        DatasetReader.Load(new MemoryStream(Encoding.UTF8.GetBytes(csv)), new DatasetReadOptions { SourceName = "reference.csv" });
}
