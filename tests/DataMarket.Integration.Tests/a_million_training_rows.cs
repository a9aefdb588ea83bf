using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using DataMarket.ServiceDefaults.Telemetry;
using DataMarket.Valuation.Shapley;
using Xunit.Abstractions;

namespace DataMarket.Integration.Tests;

/// <summary>
/// A market-sized valuation through the services: 1,000,000 training rows in two listings, over RabbitMQ and
/// PostgreSQL. Nothing on the bus may grow with the data, so the largest message any consumer receives (the
/// services' own <c>datamarket.bus.message.size</c> histogram) stays under 1 MB, and the per-point values come back
/// from the result blob page by page.
/// </summary>
[Collection(MarketCollection.Name)]
public sealed class a_million_training_rows(MarketFixture market, ITestOutputHelper output)
{
    private const int LargeRows = 700_000;
    private const int SmallRows = 300_000;
    private const int TestRows = 8;
    private const long OneMegabyte = 1_000_000;

    [Fact]
    public async Task complete_end_to_end_with_every_bus_message_under_a_megabyte_and_points_paged_from_the_blob()
    {
        var largest = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        using var listener = ListenToMessageSizes(largest);

        var random = new Random(1_000_000);
        var largeCsv = Csv(random, LargeRows);
        var smallCsv = Csv(random, SmallRows);
        var taskCsv = Csv(random, TestRows);
        var listingIds = new[]
        {
            await new MarketClient(market.Catalog.CreateClient(), "seller-million-a").ListAsync("million-a", largeCsv),
            await new MarketClient(market.Catalog.CreateClient(), "seller-million-b").ListAsync("million-b", smallCsv),
        };
        var buyer = new MarketClient(market.Catalog.CreateClient(), "buyer-million");
        var taskId = await buyer.PostTaskAsync(taskCsv);
        var response = await buyer.RequestValuationAsync(taskId, listingIds, k: 5);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var valuationId = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        // Generous: a loaded CI machine parses 1,000,000 rows in the worker and sorts them for every test point.
        var valuation = await buyer.WaitForValuationAsync(valuationId, TimeSpan.FromMinutes(8));
        Assert.True(valuation.GetProperty("status").GetString() == "Completed", valuation.ToString());
        Assert.Equal(TestRows, valuation.GetProperty("completedTestPoints").GetInt32());

        var parts = new List<TrainingPart>
        {
            new("million-a", "seller-million-a", valuation_end_to_end.Parse(largeCsv)),
            new("million-b", "seller-million-b", valuation_end_to_end.Parse(smallCsv)),
        };
        var expected = DatasetValuation.KnnShapleyClassification(parts, valuation_end_to_end.Parse(taskCsv), 5);
        foreach (var seller in valuation.GetProperty("sellers").EnumerateArray())
        {
            var reference = expected.GroupValues[seller.GetProperty("sellerId").GetString()!];
            Assert.Equal(reference.Value, seller.GetProperty("value").GetProperty("value").GetDouble(), 12);
        }

        // Pages at the start, across the boundary between the listings and at the very end, against the library.
        foreach (var offset in new[] { 0, LargeRows - 3, LargeRows + SmallRows - 4 })
        {
            var page = await buyer.Http.GetFromJsonAsync<JsonElement>($"/api/valuations/{valuationId}/points?offset={offset}&limit=6");
            Assert.Equal(LargeRows + SmallRows, page.GetProperty("total").GetInt32());
            var items = page.GetProperty("items").EnumerateArray().ToList();
            Assert.Equal(Math.Min(6, LargeRows + SmallRows - offset), items.Count);
            for (var i = 0; i < items.Count; i++)
            {
                var index = offset + i;
                var (part, row) = index < LargeRows ? (0, index) : (1, index - LargeRows);
                Assert.Equal(listingIds[part], items[i].GetProperty("listingId").GetGuid());
                Assert.Equal(row, items[i].GetProperty("row").GetInt32());
                Assert.Equal(expected.PartValues[part][row].Value, items[i].GetProperty("value").GetProperty("value").GetDouble(), 12);
            }
        }

        foreach (var (type, bytes) in largest.OrderByDescending(pair => pair.Value))
        {
            output.WriteLine($"largest {type}: {bytes:N0} bytes");
        }

        // The valuation's own messages were seen (a listener that heard nothing would pass the bound vacuously).
        Assert.Contains("RequestValuation", largest.Keys);
        Assert.Contains("ValuationCompleted", largest.Keys);
        Assert.All(largest, pair => Assert.True(pair.Value < OneMegabyte, $"{pair.Key} was {pair.Value:N0} bytes on the bus"));
    }

    private static MeterListener ListenToMessageSizes(ConcurrentDictionary<string, long> largest)
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == MessageSizeMeter.MeterName && instrument.Name == MessageSizeMeter.InstrumentName)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, bytes, tags, _) =>
        {
            var type = "?";
            foreach (var tag in tags)
            {
                if (tag.Key == "message_type")
                {
                    type = tag.Value as string ?? "?";
                }
            }

            largest.AddOrUpdate(type, bytes, (_, seen) => Math.Max(seen, bytes));
        });
        listener.Start();
        return listener;
    }

    /// <summary>Two features with three decimals: 1,000,000 rows stay near 15 MB of CSV.</summary>
    private static string Csv(Random random, int count)
    {
        var builder = new StringBuilder(count * 16);
        builder.Append("x0,x1,label\n");
        for (var i = 0; i < count; i++)
        {
            var label = random.Next(2);
            var x0 = label * 1.5 + random.NextDouble() * 2;
            var x1 = label * 1.5 + random.NextDouble() * 2;
            builder.Append(x0.ToString("F3", CultureInfo.InvariantCulture)).Append(',')
                .Append(x1.ToString("F3", CultureInfo.InvariantCulture)).Append(',')
                .Append(label.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        return builder.ToString();
    }
}
