using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace DataMarket.Cli.Tests;

/// <summary>What an operator sees of a valuation: one trace across gateway, catalog, bus and worker, and Prometheus metrics.</summary>
public sealed class telemetry_over_http(EmbeddedServer server) : IClassFixture<EmbeddedServer>
{
    private const string Csv = "x0,x1,label\n1,2,0\n3,4,1\n5,6,0\n2,2,1\n";

    private static readonly ActivitySource s_buyer = new("DataMarket.Tests.Buyer");

    [Fact]
    public async Task a_valuation_is_one_trace_from_the_buyers_request_through_the_worker_back_to_the_catalog_and_shows_in_metrics()
    {
        var traceId = default(ActivityTraceId);
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is "MassTransit" or "DataMarket.Catalog" or "Microsoft.AspNetCore" || source == s_buyer,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (activity.TraceId == traceId)
                {
                    spans.Enqueue(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);

        var seller = await server.SignUpAsync("seller-traced");
        var buyer = await server.SignUpAsync("buyer-traced");
        var listing = await EmbeddedServer.CreateListingAsync(seller.Http, "traced");
        Assert.Equal(HttpStatusCode.OK, (await seller.Http.PutAsync($"/api/listings/{listing}/data?format=csv&fileName=a.csv", EmbeddedServer.Text(Csv))).StatusCode);
        var posted = await buyer.Http.PostAsync("/api/tasks?name=traced&format=csv&fileName=t.csv", EmbeddedServer.Text(Csv));
        var task = (await posted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();

        // The buyer's request starts a trace of its own (its client span carries it in traceparent), so spans of other
        // tests running in this process cannot match.
        HttpResponseMessage requested;
        using (var root = s_buyer.StartActivity("buyer requests a valuation", ActivityKind.Client))
        {
            traceId = root!.TraceId;
            requested = await buyer.Http.PostAsJsonAsync("/api/valuations", new { taskId = task, listingIds = new[] { listing }, k = 1 });
        }

        Assert.Equal(HttpStatusCode.Accepted, requested.StatusCode);
        var valuation = (await requested.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();

        var deadline = DateTime.UtcNow.AddMinutes(2);
        string? status;
        do
        {
            await Task.Delay(100);
            status = (await buyer.Http.GetFromJsonAsync<JsonElement>($"/api/valuations/{valuation}")).GetProperty("status").GetString();
        }
        while (status is not ("Completed" or "Failed") && DateTime.UtcNow < deadline);
        Assert.Equal("Completed", status);

        // A consumer's span is named after its queue ("request-valuation process"). The catalog's consumer of the
        // completion is the last hop; its span stops just after the status is stored.
        bool Seen(string queue) => spans.Any(s => s.Source.Name == "MassTransit" && s.Kind == ActivityKind.Consumer && s.DisplayName == queue + " process");
        while (!Seen("valuation-completed") && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        var seen = string.Join("; ", spans.Select(s => $"{s.Source.Name}/{s.Kind}/{s.DisplayName}"));
        Assert.Equal(2, spans.Count(s => s.Source.Name == "Microsoft.AspNetCore" && s.Kind == ActivityKind.Server && s.DisplayName.StartsWith("POST /api/valuations", StringComparison.Ordinal)));
        Assert.Contains(spans, s => s.Source.Name == "DataMarket.Catalog" && s.Kind == ActivityKind.Producer);
        Assert.True(Seen("request-valuation"), "the worker's consumer of the request is not in the trace: " + seen);
        Assert.True(Seen("valuation-shards"), "the shard consumer is not in the trace: " + seen);
        Assert.True(Seen("valuation-completed"), "the catalog's consumer of the completion is not in the trace: " + seen);

        using var internalClient = new HttpClient { BaseAddress = server.ServicesAddress };
        // The gauge reads the database at most every 5 s (and other tests' markets in this process report the same
        // series), so a scrape may need a few seconds to show this valuation.
        var completedSeries = new System.Text.RegularExpressions.Regex("""datamarket_valuations\{[^}]*status="Completed"[^}]*\} [1-9]""");
        var metrics = await internalClient.GetStringAsync("/metrics");
        for (var scrape = 0; !completedSeries.IsMatch(metrics) && scrape < 30; scrape++)
        {
            await Task.Delay(500);
            metrics = await internalClient.GetStringAsync("/metrics");
        }

        Assert.Matches(completedSeries, metrics);
        Assert.Contains("datamarket_valuation_shard_duration_seconds_count", metrics);

        // The public edge does not publish the services' metrics.
        var edge = await server.Anonymous().GetAsync("/metrics");
        Assert.NotEqual(HttpStatusCode.OK, edge.StatusCode);
        Assert.DoesNotContain("datamarket_", await edge.Content.ReadAsStringAsync());
    }
}
