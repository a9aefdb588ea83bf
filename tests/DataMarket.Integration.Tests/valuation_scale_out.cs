using DataMarket.Cli.Bench;
using DataMarket.Cli.Commands;
using DataMarket.Contracts;
using DataMarket.ServiceDefaults.Storage;
using DataMarket.Valuation.Shapley;

namespace DataMarket.Integration.Tests;

/// <summary>
/// One valuation of 200,000 training rows x 2,000 test points sharded across three valuation worker processes (the
/// built service, started as separate processes) over a real RabbitMQ: the values have the same bits as the same
/// shards run in this process, also when one worker is killed with SIGKILL while it holds a shard.
/// </summary>
public sealed class valuation_scale_out : IAsyncLifetime
{
    private const int TrainRows = 200_000;
    private const int TestRows = 2_000;
    // 50 test points per shard: 40 shards, a few seconds each.
    private const long PairsPerShard = TrainRows * 50L;
    private static readonly TimeSpan s_timeout = TimeSpan.FromMinutes(4);

    /// <summary>
    /// A virtual host of its own (the test command creates it): RabbitMQ hands a published event to every queue bound
    /// to its type within a virtual host, so these workers and the shared market fixture's would take each other's
    /// valuations, whatever their queue prefixes.
    /// </summary>
    private static readonly string RabbitMqUri =
        Environment.GetEnvironmentVariable("DATAMARKET_TEST_RABBITMQ_ISOLATED") ?? "amqp://guest:guest@127.0.0.1:5672/datamarket-isolated";

    private readonly string _blobRoot = Path.Combine(Path.GetTempPath(), $"datamarket-so-{Guid.NewGuid():N}");
    private ValuationWorkerPool _pool = null!;

    public async Task InitializeAsync() =>
        _pool = await ValuationWorkerPool.StartAsync(3, new Uri(RabbitMqUri), _blobRoot, PairsPerShard);

    public async Task DisposeAsync()
    {
        await _pool.DisposeAsync();
        if (Directory.Exists(_blobRoot))
        {
            Directory.Delete(_blobRoot, recursive: true);
        }
    }

    [Fact]
    public async Task three_worker_processes_give_the_single_process_bits_even_when_one_is_killed_holding_a_shard()
    {
        var random = new Random(15);
        var blobs = new ContentAddressedBlobStore(new StorageOptions { BlobRoot = _blobRoot });
        var (trainCsv, train) = BenchScaleOut.Data(random, TrainRows);
        var (testCsv, test) = BenchScaleOut.Data(random, TestRows);
        var trainBlob = await BenchScaleOut.StoreAsync(blobs, trainCsv);
        var testBlob = await BenchScaleOut.StoreAsync(blobs, testCsv);

        // The single-process run: the same shards side by side in this process, merged in shard order.
        var local = ShardedValuation.Prepare("knn-shapley", "classification", [new TrainingPart("l", "seller", train)], test, 5);
        var expected = Bits(local.RunAll(ShardPlan.For(TrainRows, TestRows, PairsPerShard)).PartValues[0]);

        var first = await ValueAsync(blobs, trainBlob, testBlob, killOneWorker: false);
        Assert.Equal(expected, first);

        var second = await ValueAsync(blobs, trainBlob, testBlob, killOneWorker: true);
        Assert.Equal(expected, second);
        Assert.Single(_pool.Workers, w => w.HasExited);
    }

    private async Task<long[]> ValueAsync(ContentAddressedBlobStore blobs, string trainBlob, string testBlob, bool killOneWorker)
    {
        var request = BenchScaleOut.KnnRequest(trainBlob, testBlob, 5);
        var done = _pool.ValueAsync(request, s_timeout);
        if (killOneWorker)
        {
            // Once shards are flowing every worker holds one (prefetch 1, a window of 4 shards): SIGKILL one of them.
            var deadline = DateTime.UtcNow + s_timeout;
            while (_pool.ReportedShards(request.ValuationId).Count == 0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }

            var victim = _pool.Workers[1];
            victim.Kill(entireProcessTree: false);
            await victim.WaitForExitAsync();
        }

        var completed = await done;
        Assert.Equal((TrainRows, TestRows), (completed.TrainingPoints, completed.TestPoints));
        // Every shard reported, none merged twice: the merged moments cover exactly the task's test points.
        Assert.Equal(Enumerable.Range(0, 40), _pool.ReportedShards(request.ValuationId).Distinct().Order());
        await using var stream = blobs.OpenRead(completed.PointValues!.BlobId);
        var (total, items) = PointValueBlob.ReadPage(stream, 0, int.MaxValue);
        Assert.Equal(TrainRows, total);
        return items.SelectMany(p => new[] { BitConverter.DoubleToInt64Bits(p.Value), BitConverter.DoubleToInt64Bits(p.StandardError ?? double.NaN) }).ToArray();
    }

    private static long[] Bits(DataMarket.Valuation.Statistics.ValueEstimate[] values) =>
        values.SelectMany(v => new[] { BitConverter.DoubleToInt64Bits(v.Value), BitConverter.DoubleToInt64Bits(v.StandardError) }).ToArray();
}
