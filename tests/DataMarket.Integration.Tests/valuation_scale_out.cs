using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using DataMarket.Contracts;
using DataMarket.ServiceDefaults.Storage;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Shapley;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

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

    private readonly string _runId = Guid.NewGuid().ToString("N")[..12];
    private readonly List<Process> _workers = [];
    private readonly ConcurrentDictionary<Guid, TaskCompletionSource<ValuationCompleted>> _completed = new();
    private readonly ConcurrentDictionary<Guid, ConcurrentBag<int>> _reports = new();
    private string _blobRoot = null!;
    private ServiceProvider _provider = null!;
    private IBusControl _bus = null!;

    /// <summary>
    /// A virtual host of its own (the test command creates it): RabbitMQ hands a published event to every queue bound
    /// to its type within a virtual host, so these workers and the shared market fixture's would take each other's
    /// valuations, whatever their queue prefixes.
    /// </summary>
    private static readonly string RabbitMqUri =
        Environment.GetEnvironmentVariable("DATAMARKET_TEST_RABBITMQ_ISOLATED") ?? "amqp://guest:guest@127.0.0.1:5672/datamarket-isolated";

    private string Prefix => $"so-{_runId}";

    public async Task InitializeAsync()
    {
        _blobRoot = Path.Combine(Path.GetTempPath(), $"datamarket-so-{_runId}");
        var services = new ServiceCollection();
        services.AddMassTransit(bus => bus.UsingRabbitMq((_, cfg) =>
        {
            cfg.Host(new Uri(RabbitMqUri));
            cfg.ReceiveEndpoint($"{Prefix}-observer", e =>
            {
                e.AutoDelete = true;
                e.Durable = false;
                e.Handler<ValuationCompleted>(c =>
                {
                    _completed.GetOrAdd(c.Message.ValuationId, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult(c.Message);
                    return Task.CompletedTask;
                });
                e.Handler<ValuationFailed>(c =>
                {
                    _completed.GetOrAdd(c.Message.ValuationId, _ => new(TaskCreationOptions.RunContinuationsAsynchronously))
                        .TrySetException(new InvalidOperationException(c.Message.Reason));
                    return Task.CompletedTask;
                });
                e.Handler<ValuationShardCompleted>(c =>
                {
                    _reports.GetOrAdd(c.Message.ValuationId, _ => []).Add(c.Message.ShardIndex);
                    return Task.CompletedTask;
                });
            });
        }));
        _provider = services.BuildServiceProvider();
        _bus = _provider.GetRequiredService<IBusControl>();
        await _bus.StartAsync();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                _workers.Add(await StartWorkerAsync());
            }
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var worker in _workers.Where(w => !w.HasExited))
        {
            worker.Kill(entireProcessTree: true);
            await worker.WaitForExitAsync();
        }

        await _bus.StopAsync();
        await _provider.DisposeAsync();
        // The workers' queues are durable (competing consumers in several processes cannot share an exclusive
        // temporary queue); this run's prefix names them, so remove them with their exchanges.
        var factory = new RabbitMQ.Client.ConnectionFactory { Uri = new Uri(RabbitMqUri) };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        foreach (var queue in new[] { "request-valuation", "valuation-shards", "valuation-shard-reports", "valuation-cancelled" })
        {
            await channel.QueueDeleteAsync($"{Prefix}-{queue}", ifUnused: false, ifEmpty: false);
            await channel.ExchangeDeleteAsync($"{Prefix}-{queue}");
        }

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
        var (trainCsv, train) = Data(random, TrainRows);
        var (testCsv, test) = Data(random, TestRows);
        var trainBlob = await StoreAsync(blobs, trainCsv);
        var testBlob = await StoreAsync(blobs, testCsv);

        // The single-process run: the same shards side by side in this process, merged in shard order.
        var local = ShardedValuation.Prepare("knn-shapley", "classification", [new TrainingPart("l", "seller", train)], test, 5);
        var expected = Bits(local.RunAll(ShardPlan.For(TrainRows, TestRows, PairsPerShard)).PartValues[0]);

        var first = await ValueAsync(blobs, trainBlob, testBlob, killOneWorker: false);
        Assert.Equal(expected, first);

        var second = await ValueAsync(blobs, trainBlob, testBlob, killOneWorker: true);
        Assert.Equal(expected, second);
        Assert.Single(_workers, w => w.HasExited);
    }

    private async Task<long[]> ValueAsync(ContentAddressedBlobStore blobs, string trainBlob, string testBlob, bool killOneWorker)
    {
        var request = new RequestValuation
        {
            ValuationId = Guid.NewGuid(),
            BuyerId = "buyer",
            TaskId = Guid.NewGuid(),
            Task = new DatasetReference { BlobId = testBlob, Format = "csv", LabelColumn = "label" },
            Listings = [new ValuationListing { ListingId = Guid.NewGuid(), SellerId = "seller", Data = new DatasetReference { BlobId = trainBlob, Format = "csv", LabelColumn = "label" } }],
            Method = "knn-shapley",
            K = 5,
            RequestedAt = DateTimeOffset.UtcNow,
        };
        var done = _completed.GetOrAdd(request.ValuationId, _ => new(TaskCreationOptions.RunContinuationsAsynchronously));
        var workers = await _bus.GetSendEndpoint(new Uri($"queue:{Prefix}-request-valuation"));
        await workers.Send(request);
        if (killOneWorker)
        {
            // Once shards are flowing every worker holds one (prefetch 1, 40 shards): SIGKILL one of them.
            var deadline = DateTime.UtcNow + s_timeout;
            while (!_reports.ContainsKey(request.ValuationId) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }

            var victim = _workers[1];
            victim.Kill(entireProcessTree: false);
            await victim.WaitForExitAsync();
        }

        var completed = await done.Task.WaitAsync(s_timeout);
        Assert.Equal((TrainRows, TestRows), (completed.TrainingPoints, completed.TestPoints));
        // Every shard reported, none merged twice: the merged moments cover exactly the task's test points.
        Assert.Equal(Enumerable.Range(0, 40), _reports[request.ValuationId].Distinct().Order());
        await using var stream = blobs.OpenRead(completed.PointValues!.BlobId);
        var (total, items) = PointValueBlob.ReadPage(stream, 0, int.MaxValue);
        Assert.Equal(TrainRows, total);
        return items.SelectMany(p => new[] { BitConverter.DoubleToInt64Bits(p.Value), BitConverter.DoubleToInt64Bits(p.StandardError ?? double.NaN) }).ToArray();
    }

    private async Task<Process> StartWorkerAsync()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "DataMarket.ValuationWorker.dll"), "--urls", $"http://127.0.0.1:{port}"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["Bus__Transport"] = "RabbitMq";
        start.Environment["Bus__RabbitMqUri"] = RabbitMqUri;
        start.Environment["Bus__EndpointPrefix"] = Prefix;
        start.Environment["Bus__TemporaryEndpoints"] = "false";
        start.Environment["Storage__BlobRoot"] = _blobRoot;
        start.Environment["Valuation__PairsPerShard"] = PairsPerShard.ToString(CultureInfo.InvariantCulture);
        var process = Process.Start(start)!;
        var output = new ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) => output.Enqueue(e.Data ?? "");
        process.ErrorDataReceived += (_, e) => output.Enqueue(e.Data ?? "");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(process.HasExited, "a valuation worker process exited during start-up");
            try
            {
                var health = await http.GetAsync("/health");
                if (health.IsSuccessStatusCode)
                {
                    return process;
                }

                output.Enqueue($"/health: {(int)health.StatusCode} {await health.Content.ReadAsStringAsync()}");
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"a valuation worker process did not become healthy in 90 s: {string.Join('\n', output.TakeLast(30))}");
    }

    private static long[] Bits(DataMarket.Valuation.Statistics.ValueEstimate[] values) =>
        values.SelectMany(v => new[] { BitConverter.DoubleToInt64Bits(v.Value), BitConverter.DoubleToInt64Bits(v.StandardError) }).ToArray();

    private static async Task<string> StoreAsync(ContentAddressedBlobStore blobs, string csv)
    {
        using var staged = await blobs.StageAsync(new MemoryStream(Encoding.UTF8.GetBytes(csv)));
        return staged.Commit();
    }

    private static (string Csv, TabularDataset Data) Data(Random random, int rows)
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
}
