using DataMarket.Cli.Commands;
using DataMarket.Contracts;
using DataMarket.ServiceDefaults.Storage;
using DataMarket.Valuation.Shapley;
using DataMarket.ValuationWorker.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace DataMarket.Integration.Tests;

/// <summary>
/// A LoGra valuation sharded across two valuation worker processes over a real RabbitMQ: one worker coordinates (trains
/// the proxy, logs the gradient store to the shared blob store), the shards are scored by whichever worker takes them
/// from the store they read back, and the merged values have the bits of the same valuation run as one shard in this
/// process. A tiny proxy and few rows keep it to seconds.
/// </summary>
public sealed class logra_scale_out : IAsyncLifetime
{
    private const int TrainRows = 100;
    private const int TestRows = 44;
    // Two pairs' worth per training point: shards of 8 test points (6 of them), or of 64 training rows for self-influence (2).
    private const long PairsPerShard = TrainRows * 2;
    private static readonly TimeSpan s_timeout = TimeSpan.FromMinutes(3);

    private static readonly string RabbitMqUri =
        Environment.GetEnvironmentVariable("DATAMARKET_TEST_RABBITMQ_ISOLATED") ?? "amqp://guest:guest@127.0.0.1:5672/datamarket-isolated";

    private readonly string _blobRoot = Path.Combine(Path.GetTempPath(), $"datamarket-lso-{Guid.NewGuid():N}");
    private DataMarket.Cli.Bench.ValuationWorkerPool _pool = null!;

    public async Task InitializeAsync() =>
        _pool = await DataMarket.Cli.Bench.ValuationWorkerPool.StartAsync(2, new Uri(RabbitMqUri), _blobRoot, PairsPerShard);

    public async Task DisposeAsync()
    {
        await _pool.DisposeAsync();
        if (Directory.Exists(_blobRoot))
        {
            Directory.Delete(_blobRoot, recursive: true);
        }
    }

    [Fact]
    public async Task two_worker_processes_give_the_single_shard_bits_for_dot_and_self_influence()
    {
        var random = new Random(13);
        var blobs = new ContentAddressedBlobStore(new StorageOptions { BlobRoot = _blobRoot });
        var (trainCsv, train) = BenchScaleOut.Data(random, TrainRows);
        var (testCsv, test) = BenchScaleOut.Data(random, TestRows);
        var trainBlob = await BenchScaleOut.StoreAsync(blobs, trainCsv);
        var testBlob = await BenchScaleOut.StoreAsync(blobs, testCsv);
        var engine = new LograEngine(null, NullLogger<LograEngine>.Instance);

        foreach (var (mode, units, shards) in new[] { (LograEngine.Dot, TestRows, 6), (LograEngine.Self, TrainRows, 2) })
        {
            var local = engine.Log([new TrainingPart("l", "seller", train)], test, mode, null, _ => { }, CancellationToken.None);
            var expected = local.RunAll([new TestPointRange(0, units)]).PartValues[0]
                .SelectMany(v => new[] { BitConverter.DoubleToInt64Bits(v.Value), BitConverter.DoubleToInt64Bits(v.StandardError) }).ToArray();

            var request = BenchScaleOut.KnnRequest(trainBlob, testBlob, 1) with { Method = "logra", LograMode = mode };
            var completed = await _pool.ValueAsync(request, s_timeout);

            Assert.Equal((TrainRows, TestRows), (completed.TrainingPoints, completed.TestPoints));
            Assert.Equal(Enumerable.Range(0, shards), _pool.ReportedShards(request.ValuationId).Distinct().Order());
            await using var stream = blobs.OpenRead(completed.PointValues!.BlobId);
            var (total, items) = PointValueBlob.ReadPage(stream, 0, int.MaxValue);
            Assert.Equal(TrainRows, total);
            Assert.Equal(expected, items.SelectMany(p => new[] { BitConverter.DoubleToInt64Bits(p.Value), BitConverter.DoubleToInt64Bits(p.StandardError ?? double.NaN) }));
        }
    }
}
