using System.Text;
using DataMarket.Contracts;
using DataMarket.ServiceDefaults.Storage;
using MassTransit;
using MassTransit.Testing;
using DataMarket.Valuation;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Shapley;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Services.Tests;

public sealed class valuation_worker_consumer : IAsyncLifetime
{
    private readonly string _blobRoot = Path.Combine(Path.GetTempPath(), $"datamarket-worker-{Guid.NewGuid():N}");
    private ServiceProvider _provider = null!;
    private ITestHarness _harness = null!;

    public async Task InitializeAsync()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(new StorageOptions { BlobRoot = _blobRoot });
        services.AddSingleton<ContentAddressedBlobStore>();
        // Two (training point, test point) pairs per shard... per training point: one test point per shard here.
        services.AddValuationWorker(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Valuation:PairsPerShard"] = "8",
            // A window of two shards: the third is sent by the worker that finished the first.
            ["Valuation:MaxShardsInFlight"] = "2",
        }).Build());
        services.AddMassTransitTestHarness(bus => bus.AddValuationConsumers());
        _provider = services.BuildServiceProvider(validateScopes: true);
        _harness = _provider.GetRequiredService<ITestHarness>();
        // Published.Any waits for a message or for this long without bus activity; the default 1.2 s was shorter than a
        // consumer's start on a loaded 2-core machine, which read as "nothing published".
        _harness.TestInactivityTimeout = TimeSpan.FromSeconds(10);
        await _harness.Start();
    }

    public async Task DisposeAsync()
    {
        await _harness.Stop();
        await _provider.DisposeAsync();
        Directory.Delete(_blobRoot, recursive: true);
    }

    [Fact]
    public async Task Should_publish_started_then_completed_values_that_sum_to_the_total_utility()
    {
        var train = await StoreAsync("x,label\n0,a\n1,a\n2,b\n10,b\n");
        var test = await StoreAsync("x,label\n0.5,a\n9,b\n");

        await _harness.Bus.Publish(Request(test, [("s1", train), ("s2", train)], "knn-shapley", 2));

        Assert.True(await _harness.Published.Any<ValuationStarted>());
        var completed = _harness.Published.Select<ValuationCompleted>().Single().Context.Message;
        var points = StoredPoints(completed);
        Assert.Empty(completed.Points);
        Assert.Equal(8, points.Count);
        Assert.Equal((8, 2), (completed.TrainingPoints, completed.TestPoints));
        Assert.Equal(["s1", "s2"], completed.Sellers.Select(s => s.SellerId));
        Assert.Equal(completed.TotalUtility, points.Sum(p => p.Value), 12);
        Assert.Equal(completed.Sellers[0].Value, points.Take(4).Sum(p => p.Value), 12);
        Assert.Equal(Enumerable.Range(0, 4), points.Skip(4).Select(p => p.Row));
        Assert.False(await _harness.Published.Any<ValuationFailed>());
    }

    [Fact]
    public async Task Should_split_a_knn_valuation_into_shards_and_merge_them_to_the_single_process_bits()
    {
        var train = await StoreAsync("x,label\n0,a\n1,a\n2,b\n10,b\n");
        var test = await StoreAsync("x,label\n0.5,a\n9,b\n4,a\n");
        var request = Request(test, [("s1", train), ("s2", train)], "knn-shapley", 2);

        await _harness.Bus.Publish(request);

        Assert.True(await _harness.Published.Any<ValuationCompleted>());
        // 8 training points, 8 pairs per shard: one test point per shard.
        Assert.Equal(3, _harness.Consumed.Select<ValueShard>().Count());
        var sent = _harness.Sent.Select<ValueShard>().ToDictionary(m => m.Context.Message.ShardIndex, m => m.Context);
        Assert.All(sent.Values, m => Assert.Equal(2, m.Message.ShardsInFlight));
        // The coordinator (the request's consumer) sent only the first two; the worker of a shard sent the third.
        Assert.Equal([0, 1], sent.Where(m => m.Value.SourceAddress!.AbsolutePath.EndsWith("/RequestValuation", StringComparison.Ordinal)).Select(m => m.Key).Order());
        Assert.EndsWith("/valuation-shards", sent[2].SourceAddress!.AbsolutePath, StringComparison.Ordinal);
        Assert.Equal((2, 1), (sent[2].Message.FirstTestPoint, sent[2].Message.TestPoints));
        Assert.Equal([0, 1, 2], _harness.Published.Select<ValuationShardCompleted>().Select(m => m.Context.Message.ShardIndex).Order());
        Assert.Contains(_harness.Published.Select<ValuationProgressed>(), p => p.Context.Message.CompletedTestPoints == 3);
        var completed = _harness.Published.Select<ValuationCompleted>().Single().Context.Message;

        // The same shards in one process, side by side, merged in shard order.
        var csvTrain = "x,label\n0,a\n1,a\n2,b\n10,b\n";
        var local = ShardedValuation.Prepare("knn-shapley", "classification",
            [new TrainingPart("1", "s1", Parse(csvTrain)), new TrainingPart("2", "s2", Parse(csvTrain))], Parse("x,label\n0.5,a\n9,b\n4,a\n"), 2);
        var expected = local.RunAll(ShardPlan.For(8, 3, 8)).PartValues.SelectMany(v => v).ToList();
        var points = StoredPoints(completed);
        Assert.Equal(expected.Select(e => BitConverter.DoubleToInt64Bits(e.Value)), points.Select(p => BitConverter.DoubleToInt64Bits(p.Value)));
        Assert.Equal(expected.Select(e => BitConverter.DoubleToInt64Bits(e.StandardError)), points.Select(p => BitConverter.DoubleToInt64Bits(p.StandardError!.Value)));
        Assert.Equal((8, 3), (completed.TrainingPoints, completed.TestPoints));
    }

    [Fact]
    public async Task Should_drop_the_shards_of_a_cancelled_valuation()
    {
        var request = await CancelledRequestAsync("knn-shapley");

        // A shard already queued when the buyer cancelled.
        var bus = _provider.GetRequiredService<DataMarket.ServiceDefaults.Messaging.BusOptions>();
        var queue = DataMarket.ServiceDefaults.Messaging.ValuationQueues.Resolve(bus, DataMarket.ServiceDefaults.Messaging.ValuationQueues.Shards);
        var endpoint = await _harness.Bus.GetSendEndpoint(new Uri(bus.TemporaryEndpoints ? $"queue:{queue}?durable=false&autodelete=true" : $"queue:{queue}"));
        await endpoint.Send(new ValueShard { ValuationId = request.ValuationId, ShardIndex = 0, ShardCount = 1, FirstTestPoint = 0, TestPoints = 2, Request = request });

        Assert.True(await _harness.Consumed.Any<ValueShard>());
        Assert.False(await _harness.Published.Any<ValuationShardCompleted>());
        Assert.False(await _harness.Published.Any<ValuationCompleted>());
    }

    [Fact]
    public async Task Should_not_start_a_valuation_cancelled_while_it_was_queued()
    {
        var request = await CancelledRequestAsync("logra");

        await _harness.Bus.Publish(request);

        Assert.True(await _harness.Consumed.Any<RequestValuation>(m => m.Context.Message.ValuationId == request.ValuationId));
        Assert.False(await _harness.Published.Any<ValuationStarted>());
        Assert.False(await _harness.Sent.Any<ValueShard>());
        Assert.False(await _harness.Published.Any<ValuationFailed>());
    }

    [Fact]
    public async Task A_stop_watcher_trips_when_the_valuation_is_stopped_and_not_before()
    {
        var store = _provider.GetRequiredService<DataMarket.ValuationWorker.Infrastructure.ShardStore>();
        var id = Guid.NewGuid();
        using var watcher = store.WatchStopped(id, CancellationToken.None, TimeSpan.FromMilliseconds(20));
        var tripped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = watcher.Token.Register(() => tripped.SetResult());
        await Task.Delay(100);
        Assert.False(watcher.Token.IsCancellationRequested);

        store.MarkStopped(id, "cancelled by the buyer");

        await tripped.Task.WaitAsync(TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task Should_fail_a_sharded_valuation_on_bad_data_with_the_row_and_column()
    {
        var train = await StoreAsync("x,label\n0,1.5\n1,oops\n");
        var test = await StoreAsync("x,label\n0.5,1\n");
        await _harness.Bus.Publish(Request(test, [("s1", train)], "knn-shapley", 1) with { TaskType = "regression" });

        Assert.True(await _harness.Published.Any<ValuationFailed>());
        var failed = _harness.Published.Select<ValuationFailed>().Single().Context.Message;
        Assert.Contains("oops", failed.Reason);
        Assert.Contains("row 2", failed.Reason);
        Assert.False(await _harness.Published.Any<ValuationCompleted>());
    }

    [Fact]
    public async Task Should_serve_logra_with_seller_values_that_sum_their_points()
    {
        var train = await StoreAsync("x,label\n0,a\n1,a\n2,b\n10,b\n3,b\n-1,a\n");
        var test = await StoreAsync("x,label\n0.5,a\n9,b\n");

        await _harness.Bus.Publish(Request(test, [("s1", train), ("s2", train)], "logra", 5));

        Assert.True(await _harness.Published.Any<ValuationCompleted>());
        var completed = _harness.Published.Select<ValuationCompleted>().Single().Context.Message;
        Assert.Equal("logra", completed.Method);
        var points = StoredPoints(completed);
        Assert.Equal(12, points.Count);
        Assert.Equal(["s1", "s2"], completed.Sellers.Select(s => s.SellerId));
        Assert.Equal(completed.TotalUtility, points.Sum(p => p.Value), 9);
        Assert.Equal(completed.Sellers[0].Value, points.Take(6).Sum(p => p.Value), 9);
        Assert.False(await _harness.Published.Any<ValuationFailed>());
    }

    [Theory]
    [InlineData("dot", 3)]
    [InlineData("cosine", 3)]
    [InlineData("self", 2)]
    public async Task Should_shard_a_logra_valuation_over_its_gradient_store_and_merge_to_the_single_shard_bits(string mode, int shards)
    {
        // 70 training rows and 20 test points; 8 pairs per shard cut 3 shards of whole 8-test-point blocks (8, 8, 4),
        // or for self-influence 2 shards of whole 64-row blocks (64, 6).
        var random = new Random(11);
        string Csv(int rows) => "x,label\n" + string.Concat(Enumerable.Range(0, rows).Select(i => i % 3 == 0
            ? $"{(2 + random.NextDouble()).ToString("R", System.Globalization.CultureInfo.InvariantCulture)},b\n"
            : $"{random.NextDouble().ToString("R", System.Globalization.CultureInfo.InvariantCulture)},a\n"));
        var (first, second, task) = (Csv(40), Csv(30), Csv(20));
        var request = Request(await StoreAsync(task), [("s1", await StoreAsync(first)), ("s2", await StoreAsync(second))], "logra", 1) with { LograMode = mode };

        await _harness.Bus.Publish(request);

        Assert.True(await _harness.Published.Any<ValuationCompleted>(m => m.Context.Message.ValuationId == request.ValuationId));
        Assert.Equal(Enumerable.Range(0, shards), _harness.Published.Select<ValuationShardCompleted>().Select(m => m.Context.Message.ShardIndex).Order());
        // The gradient store went to the valuation's folder, under the one name a coordinator that runs again overwrites.
        var folder = _provider.GetRequiredService<DataMarket.ValuationWorker.Infrastructure.ShardStore>().Folder(request.ValuationId);
        Assert.True(File.Exists(Path.Combine(folder, DataMarket.ValuationWorker.Infrastructure.ShardStore.GradientStoreName)));
        // Progress is in the buyer's 20 test points whatever the shards split (self-influence splits the 70 training rows),
        // so it never runs past the total ValuationStarted announced.
        var progress = _harness.Published.Select<ValuationProgressed>().Select(p => p.Context.Message).ToList();
        Assert.NotEmpty(progress);
        Assert.All(progress, p => Assert.Equal(20, p.TotalTestPoints));
        Assert.All(progress, p => Assert.InRange(p.CompletedTestPoints, 0, 20));
        Assert.Contains(progress, p => p.CompletedTestPoints == 20);
        Assert.Equal(20, _harness.Published.Select<ValuationStarted>().Single().Context.Message.TestPoints);
        var completed = _harness.Published.Select<ValuationCompleted>().Single().Context.Message;
        Assert.Equal((70, 20), (completed.TrainingPoints, completed.TestPoints));

        // The same valuation in one process as a single shard.
        var engine = new DataMarket.ValuationWorker.Infrastructure.LograEngine(null, Microsoft.Extensions.Logging.Abstractions.NullLogger<DataMarket.ValuationWorker.Infrastructure.LograEngine>.Instance);
        var local = engine.Log([new TrainingPart("1", "s1", Parse(first)), new TrainingPart("2", "s2", Parse(second))], Parse(task), mode, null, _ => { }, CancellationToken.None);
        var expected = local.RunAll([new TestPointRange(0, local.ShardUnits)]);
        var points = StoredPoints(completed);
        Assert.Equal(expected.PartValues.SelectMany(v => v).Select(e => BitConverter.DoubleToInt64Bits(e.Value)), points.Select(p => BitConverter.DoubleToInt64Bits(p.Value)));
        Assert.Equal(expected.PartValues.SelectMany(v => v).Select(e => double.IsFinite(e.StandardError) ? e.StandardError : (double?)null), points.Select(p => p.StandardError));
        Assert.Equal(BitConverter.DoubleToInt64Bits(expected.GroupValues["s2"].Value), BitConverter.DoubleToInt64Bits(completed.Sellers[1].Value));
        Assert.Equal(BitConverter.DoubleToInt64Bits(expected.TotalUtility.Value), BitConverter.DoubleToInt64Bits(completed.TotalUtility));
    }

    [Fact]
    public async Task Should_fail_a_logra_valuation_with_an_unknown_mode_naming_it()
    {
        var train = await StoreAsync("x,label\n0,a\n1,b\n");
        await _harness.Bus.Publish(Request(train, [("s1", train)], "logra", 1) with { LograMode = "euclid" });

        Assert.True(await _harness.Published.Any<ValuationFailed>());
        Assert.Contains("unknown LoGra mode 'euclid'", _harness.Published.Select<ValuationFailed>().Single().Context.Message.Reason);
        Assert.False(await _harness.Sent.Any<ValueShard>());
    }

    [Fact]
    public async Task Should_value_a_copy_listed_later_in_a_later_tier_and_keep_point_values_in_request_order()
    {
        var original = await StoreAsync("x,label\n0,a\n1,a\n2,b\n10,b\n");
        var other = await StoreAsync("x,label\n0.2,a\n9,b\n");
        var test = await StoreAsync("x,label\n0.5,a\n9,b\n");
        // The copy comes first in the request but was listed last: listing order (the group order) decides the tiers.
        var request = Request(test, [("copy", original), ("s1", original), ("s2", other)], "tiered-knn-shapley", 2) with { GroupOrder = ["s1", "s2", "copy"] };

        await _harness.Bus.Publish(request);

        Assert.True(await _harness.Published.Any<ValuationCompleted>());
        var completed = _harness.Published.Select<ValuationCompleted>().Single().Context.Message;
        Assert.Equal("tiered-knn-shapley", completed.Method);
        Assert.Equal(["s1", "s2", "copy"], completed.Sellers.Select(s => s.SellerId));
        var points = StoredPoints(completed);
        Assert.Equal(completed.TotalUtility, points.Sum(p => p.Value), 12);
        // Points come back under their own listing: the copy's four rows are the first four.
        var copyListing = request.Listings[0].ListingId;
        Assert.Equal(completed.Sellers[2].Value, points.Where(p => p.ListingId == copyListing).Sum(p => p.Value), 12);
        Assert.True(completed.Sellers[2].Value < completed.Sellers[0].Value, "the copy earns less than the original");
    }

    [Fact]
    public async Task Should_value_sellers_as_the_players_in_shards_with_no_point_values()
    {
        var first = await StoreAsync("x,label\n0,a\n1,a\n2,b\n10,b\n");
        var second = await StoreAsync("x,label\n0.2,a\n9,b\n");
        var test = await StoreAsync("x,label\n0.5,a\n9,b\n3,a\n");

        await _harness.Bus.Publish(Request(test, [("s1", first), ("s2", second)], "seller-shapley", 2));

        Assert.True(await _harness.Published.Any<ValuationCompleted>());
        var completed = _harness.Published.Select<ValuationCompleted>().Single().Context.Message;
        Assert.Null(completed.PointValues);
        // Three test points, one per shard here: every shard was merged.
        Assert.Equal(3, completed.TestPoints);
        Assert.Equal(["s1", "s2"], completed.Sellers.Select(s => s.SellerId));
        Assert.Equal(completed.TotalUtility, completed.Sellers.Sum(s => s.Value), 12);
        var reference = DatasetValuation.SellerShapleyClassification(
            [new TrainingPart("l1", "s1", Parse("x,label\n0,a\n1,a\n2,b\n10,b\n")), new TrainingPart("l2", "s2", Parse("x,label\n0.2,a\n9,b\n"))],
            Parse("x,label\n0.5,a\n9,b\n3,a\n"),
            2);
        Assert.Equal(reference.Groups[0].Value, completed.Sellers[0].Value, 12);
        Assert.Equal(reference.Groups[1].Value, completed.Sellers[1].Value, 12);
    }

    [Theory]
    [InlineData("knn-magic", 5, "unknown valuation method 'knn-magic'")]
    [InlineData("knn-shapley", 0, "K must be at least 1")]
    public async Task Should_fail_a_request_it_cannot_serve_without_retrying(string method, int k, string reason)
    {
        var train = await StoreAsync("x,label\n0,a\n");
        await _harness.Bus.Publish(Request(train, [("s1", train)], method, k));

        Assert.True(await _harness.Published.Any<ValuationFailed>());
        var failed = _harness.Published.Select<ValuationFailed>().Single().Context.Message;
        Assert.Contains(reason, failed.Reason);
        Assert.False(await _harness.Published.Any<ValuationCompleted>());
        Assert.False(await _harness.Published.Any<Fault<RequestValuation>>());
    }

    [Fact]
    public async Task Should_fail_with_the_row_and_column_when_stored_data_does_not_match_the_task()
    {
        var train = await StoreAsync("x,y,label\n0,1,a\n");
        var test = await StoreAsync("x,label\n0,a\n");
        await _harness.Bus.Publish(Request(test, [("s1", train)], "knn-shapley", 1));

        Assert.True(await _harness.Published.Any<ValuationFailed>());
        var failed = _harness.Published.Select<ValuationFailed>().Single().Context.Message;
        Assert.Contains("has 2 feature columns but the buyer's task has 1", failed.Reason);
    }

    private IReadOnlyList<StoredPointValue> StoredPoints(ValuationCompleted completed)
    {
        Assert.NotNull(completed.PointValues);
        using var stream = _provider.GetRequiredService<ContentAddressedBlobStore>().OpenRead(completed.PointValues.BlobId);
        var (total, items) = PointValueBlob.ReadPage(stream, 0, int.MaxValue);
        Assert.Equal(completed.PointValues.Count, total);
        return items;
    }

    private async Task<string> StoreAsync(string csv)
    {
        var store = _provider.GetRequiredService<ContentAddressedBlobStore>();
        using var staged = await store.StageAsync(new MemoryStream(Encoding.UTF8.GetBytes(csv)));
        return staged.Commit();
    }

    /// <summary>A small valuation request whose cancellation the worker has already consumed.</summary>
    private async Task<RequestValuation> CancelledRequestAsync(string method)
    {
        var train = await StoreAsync("x,label\n0,a\n1,a\n2,b\n10,b\n");
        var test = await StoreAsync("x,label\n0.5,a\n9,b\n");
        var request = Request(test, [("s1", train)], method, 2);
        await _harness.Bus.Publish(new ValuationCancelled { ValuationId = request.ValuationId, CancelledAt = DateTimeOffset.UtcNow });
        Assert.True(await _harness.Consumed.Any<ValuationCancelled>());
        return request;
    }

    private static RequestValuation Request(string testBlob, IEnumerable<(string Seller, string Blob)> listings, string method, int k) => new()
    {
        ValuationId = Guid.NewGuid(),
        BuyerId = "buyer",
        TaskId = Guid.NewGuid(),
        Task = new DatasetReference { BlobId = testBlob, Format = "csv", LabelColumn = "label" },
        Listings = listings.Select(l => new ValuationListing
        {
            ListingId = Guid.NewGuid(),
            SellerId = l.Seller,
            Data = new DatasetReference { BlobId = l.Blob, Format = "csv", LabelColumn = "label" },
        }).ToList(),
        Method = method,
        K = k,
        RequestedAt = DateTimeOffset.UtcNow,
    };

    private static TabularDataset Parse(string csv) =>
        DatasetReader.Load(new MemoryStream(Encoding.UTF8.GetBytes(csv)), new DatasetReadOptions { SourceName = "t", Format = DatasetFormat.Csv });
}
