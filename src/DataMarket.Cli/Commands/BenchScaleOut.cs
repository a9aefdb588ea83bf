using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using DataMarket.Cli.Bench;
using DataMarket.Contracts;
using DataMarket.ServiceDefaults;
using DataMarket.ServiceDefaults.Storage;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Shapley;

namespace DataMarket.Cli.Commands;

/// <summary>
/// <c>datamarket bench scale-out</c>: one KNN-Shapley valuation sharded over N valuation worker processes on local
/// RabbitMQ, against the same shards run in this one process (all cores) in the same run, with the bits compared.
/// </summary>
public static class BenchScaleOut
{
    public static Command Build()
    {
        var workers = new Option<int>("--workers") { Description = "Worker processes.", DefaultValueFactory = _ => 3 };
        var trainingPoints = new Option<int>("--training-points") { Description = "Training rows.", DefaultValueFactory = _ => 200_000 };
        var testPoints = new Option<int>("--test-points") { Description = "Test rows.", DefaultValueFactory = _ => 2_000 };
        var testPointsPerShard = new Option<int>("--test-points-per-shard") { Description = "Shard size.", DefaultValueFactory = _ => 50 };
        var rabbitMq = new Option<string>("--rabbitmq")
        {
            Description = "AMQP URI of the broker (default: Bus__RabbitMqUri, else loopback).",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("Bus__RabbitMqUri") is { Length: > 0 } uri ? uri : LocalDefaults.RabbitMqUri,
        };
        var command = new Command("scale-out", "One sharded valuation over N worker processes on RabbitMQ: wall time and test points/s, against the single-process run of the same shards.")
        {
            workers, trainingPoints, testPoints, testPointsPerShard, rabbitMq,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var (n, train, test, perShard) = (parse.GetValue(workers), parse.GetValue(trainingPoints), parse.GetValue(testPoints), parse.GetValue(testPointsPerShard));
            if (n < 1 || train < 1 || test < 1 || perShard < 1)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync("--workers, --training-points, --test-points and --test-points-per-shard must be at least 1");
                return ExitCodes.BadInput;
            }

            var blobRoot = Path.Combine(Path.GetTempPath(), $"datamarket-bench-scale-out-{Guid.NewGuid():N}");
            try
            {
                var result = await RunAsync(n, train, test, perShard, new Uri(parse.GetValue(rabbitMq)!), blobRoot, output, cancellationToken);
                return result ? ExitCodes.Success : ExitCodes.Failure;
            }
            finally
            {
                if (Directory.Exists(blobRoot))
                {
                    Directory.Delete(blobRoot, recursive: true);
                }
            }
        });
        return command;
    }

    private static async Task<bool> RunAsync(int workers, int trainRows, int testRows, int perShard, Uri broker, string blobRoot, TextWriter output, CancellationToken cancellationToken)
    {
        const int K = 5;
        var pairsPerShard = (long)trainRows * perShard;
        var random = new Random(15);
        var (trainCsv, train) = Data(random, trainRows);
        var (testCsv, test) = Data(random, testRows);
        var blobs = new ContentAddressedBlobStore(new StorageOptions { BlobRoot = blobRoot });
        var trainBlob = await StoreAsync(blobs, trainCsv);
        var testBlob = await StoreAsync(blobs, testCsv);
        var plan = ShardPlan.For(trainRows, testRows, pairsPerShard);
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"KNN-Shapley, {trainRows:N0} training x {testRows:N0} test points, K={K}, {plan.Count} shards of {plan[0].Count} test points, {workers} worker processes, {Environment.ProcessorCount} cores"));

        // The single-process run: the same shards in this process on every core, merged in shard order.
        var single = Stopwatch.StartNew();
        var local = ShardedValuation.Prepare("knn-shapley", "classification", [new TrainingPart("l", "seller", train)], test, K);
        var expected = local.RunAll(plan).PartValues[0];
        single.Stop();

        var starting = Stopwatch.StartNew();
        await using var pool = await ValuationWorkerPool.StartAsync(workers, broker, blobRoot, pairsPerShard, cancellationToken);
        starting.Stop();
        var request = KnnRequest(trainBlob, testBlob, K);
        var sharded = Stopwatch.StartNew();
        var completed = await pool.ValueAsync(request, TimeSpan.FromHours(1), cancellationToken);
        sharded.Stop();

        await using var stream = blobs.OpenRead(completed.PointValues!.BlobId);
        var (_, items) = PointValueBlob.ReadPage(stream, 0, int.MaxValue);
        var identical = items.Count == expected.Length && items.Select((p, i) =>
            BitConverter.DoubleToInt64Bits(p.Value) == BitConverter.DoubleToInt64Bits(expected[i].Value)
            && BitConverter.DoubleToInt64Bits(p.StandardError ?? double.NaN) == BitConverter.DoubleToInt64Bits(expected[i].StandardError)).All(same => same);

        string F(double value) => value.ToString("N2", CultureInfo.InvariantCulture);
        await output.WriteLineAsync($"worker start-up (not timed below)         {F(starting.Elapsed.TotalSeconds)} s");
        await output.WriteLineAsync($"sharded over {workers} processes, wall          {F(sharded.Elapsed.TotalSeconds)} s  ({F(testRows / sharded.Elapsed.TotalSeconds)} test points/s; includes loading the data in each worker)");
        await output.WriteLineAsync($"single process, same shards, wall         {F(single.Elapsed.TotalSeconds)} s  ({F(testRows / single.Elapsed.TotalSeconds)} test points/s)");
        await output.WriteLineAsync($"single process / sharded                  {F(single.Elapsed.TotalSeconds / sharded.Elapsed.TotalSeconds)}x");
        await output.WriteLineAsync($"values bit-identical to the single process: {(identical ? "yes" : "NO")}");
        return identical;
    }

    /// <summary>A KNN-Shapley request for one seller's stored table against a stored task, as the catalog would send it.</summary>
    public static RequestValuation KnnRequest(string trainBlob, string testBlob, int k) => new()
    {
        ValuationId = Guid.NewGuid(),
        BuyerId = "bench",
        TaskId = Guid.NewGuid(),
        Task = new DatasetReference { BlobId = testBlob, Format = "csv", LabelColumn = "label" },
        Listings = [new ValuationListing { ListingId = Guid.NewGuid(), SellerId = "seller", Data = new DatasetReference { BlobId = trainBlob, Format = "csv", LabelColumn = "label" } }],
        Method = "knn-shapley",
        K = k,
        RequestedAt = DateTimeOffset.UtcNow,
    };

    /// <summary>Three features and a noisy two-class label: a seeded table, the same in every run.</summary>
    public static (string Csv, TabularDataset Data) Data(Random random, int rows)
    {
        var csv = new StringBuilder("x0,x1,x2,label\n");
        for (var i = 0; i < rows; i++)
        {
            var x = new[] { random.NextDouble(), random.NextDouble(), random.NextDouble() };
            var label = x[0] + x[1] + (0.3 * random.NextDouble()) > 1.1 ? "a" : "b";
            csv.Append(CultureInfo.InvariantCulture, $"{x[0]:F4},{x[1]:F4},{x[2]:F4},{label}\n");
        }

        var text = csv.ToString();
        return (text, DatasetReader.Load(new MemoryStream(Encoding.UTF8.GetBytes(text)), new DatasetReadOptions { SourceName = "data", Format = DatasetFormat.Csv }));
    }

    public static async Task<string> StoreAsync(ContentAddressedBlobStore blobs, string csv)
    {
        using var staged = await blobs.StageAsync(new MemoryStream(Encoding.UTF8.GetBytes(csv)));
        return staged.Commit();
    }
}
