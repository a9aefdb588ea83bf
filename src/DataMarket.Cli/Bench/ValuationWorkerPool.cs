using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using DataMarket.Contracts;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Cli.Bench;

/// <summary>
/// Valuation worker processes (the built service next to this program, one OS process each) competing for one
/// valuation's shards over a real RabbitMQ, and a bus endpoint of our own that sends requests to them and hears what
/// they publish. Queues carry a prefix of their own and are removed on dispose. Used by <c>bench scale-out</c> and by
/// the scale-out integration test.
/// </summary>
public sealed class ValuationWorkerPool : IAsyncDisposable
{
    private static readonly string[] s_queues = ["request-valuation", "valuation-shards", "valuation-shard-reports", "valuation-cancelled"];

    private readonly Uri _broker;
    private readonly string _prefix;
    private readonly ConcurrentDictionary<Guid, TaskCompletionSource<ValuationCompleted>> _completed = new();
    private readonly ConcurrentDictionary<Guid, ConcurrentBag<int>> _reports = new();
    private readonly List<Process> _workers = [];
    private ServiceProvider? _provider;
    private IBusControl? _bus;

    private ValuationWorkerPool(Uri broker, string prefix)
    {
        _broker = broker;
        _prefix = prefix;
    }

    public IReadOnlyList<Process> Workers => _workers;

    /// <summary>
    /// Starts <paramref name="workers"/> worker processes sharing <paramref name="blobRoot"/> and waits until each
    /// answers <c>/health</c>. Every setting a worker needs is passed explicitly; <paramref name="pairsPerShard"/> sets
    /// the shard size.
    /// </summary>
    public static async Task<ValuationWorkerPool> StartAsync(
        int workers, Uri broker, string blobRoot, long pairsPerShard, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        var pool = new ValuationWorkerPool(broker, $"pool-{Guid.NewGuid().ToString("N")[..12]}");
        try
        {
            await pool.StartBusAsync(cancellationToken);
            var settings = new Dictionary<string, string>
            {
                ["Bus__Transport"] = "RabbitMq",
                ["Bus__RabbitMqUri"] = broker.ToString(),
                ["Bus__EndpointPrefix"] = pool._prefix,
                ["Bus__TemporaryEndpoints"] = "false",
                ["Storage__BlobRoot"] = blobRoot,
                ["Valuation__PairsPerShard"] = pairsPerShard.ToString(CultureInfo.InvariantCulture),
            };
            for (var i = 0; i < workers; i++)
            {
                pool._workers.Add(await StartWorkerAsync(settings, cancellationToken));
            }

            return pool;
        }
        catch
        {
            await pool.DisposeAsync();
            throw;
        }
    }

    /// <summary>The shard indexes reported done for a valuation so far (a recomputed shard appears again).</summary>
    public IReadOnlyCollection<int> ReportedShards(Guid valuationId) => _reports.TryGetValue(valuationId, out var reports) ? reports : [];

    /// <summary>Sends the request to the workers; the task ends with the result, or faults with the reason it failed.</summary>
    public async Task<ValuationCompleted> ValueAsync(RequestValuation request, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var done = Completion(request.ValuationId);
        var endpoint = await _bus!.GetSendEndpoint(new Uri($"queue:{_prefix}-request-valuation"));
        await endpoint.Send(request, cancellationToken);
        return await done.Task.WaitAsync(timeout, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var worker in _workers)
        {
            if (!worker.HasExited)
            {
                worker.Kill(entireProcessTree: true);
                await worker.WaitForExitAsync();
            }

            worker.Dispose();
        }

        if (_bus is not null)
        {
            await _bus.StopAsync();
        }

        if (_provider is not null)
        {
            await _provider.DisposeAsync();
        }

        // The workers' queues are durable (competing consumers in several processes cannot share an exclusive
        // temporary queue); this pool's prefix names them, so remove them with their exchanges.
        try
        {
            await using var connection = await new RabbitMQ.Client.ConnectionFactory { Uri = _broker }.CreateConnectionAsync();
            await using var channel = await connection.CreateChannelAsync();
            foreach (var queue in s_queues)
            {
                await channel.QueueDeleteAsync($"{_prefix}-{queue}", ifUnused: false, ifEmpty: false);
                await channel.ExchangeDeleteAsync($"{_prefix}-{queue}");
            }
        }
        catch (Exception exception) when (exception is RabbitMQ.Client.Exceptions.BrokerUnreachableException or RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            // Nothing was declared, or the broker is gone: nothing to remove.
        }
    }

    private TaskCompletionSource<ValuationCompleted> Completion(Guid id) =>
        _completed.GetOrAdd(id, _ => new(TaskCreationOptions.RunContinuationsAsynchronously));

    private async Task StartBusAsync(CancellationToken cancellationToken)
    {
        var services = new ServiceCollection();
        services.AddMassTransit(bus => bus.UsingRabbitMq((_, cfg) =>
        {
            cfg.Host(_broker);
            cfg.ReceiveEndpoint($"{_prefix}-observer", e =>
            {
                e.AutoDelete = true;
                e.Durable = false;
                e.Handler<ValuationCompleted>(c =>
                {
                    Completion(c.Message.ValuationId).TrySetResult(c.Message);
                    return Task.CompletedTask;
                });
                e.Handler<ValuationFailed>(c =>
                {
                    Completion(c.Message.ValuationId).TrySetException(new InvalidOperationException(c.Message.Reason));
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
        await _bus.StartAsync(cancellationToken);
    }

    private static async Task<Process> StartWorkerAsync(IReadOnlyDictionary<string, string> settings, CancellationToken cancellationToken)
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } path ? path : "dotnet";
        var start = new ProcessStartInfo(host, [Path.Combine(AppContext.BaseDirectory, "DataMarket.ValuationWorker.dll"), "--urls", $"http://127.0.0.1:{port}"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (key, value) in settings)
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start a valuation worker process");
        var output = new ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) => output.Enqueue(e.Data ?? "");
        process.ErrorDataReceived += (_, e) => output.Enqueue(e.Data ?? "");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"a valuation worker process exited during start-up: {string.Join('\n', output.TakeLast(30))}");
            }

            try
            {
                var health = await http.GetAsync("/health", cancellationToken);
                if (health.IsSuccessStatusCode)
                {
                    return process;
                }

                output.Enqueue($"/health: {(int)health.StatusCode} {await health.Content.ReadAsStringAsync(cancellationToken)}");
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(200, cancellationToken);
        }

        process.Kill(entireProcessTree: true);
        throw new TimeoutException($"a valuation worker process did not become healthy in 90 s: {string.Join('\n', output.TakeLast(30))}");
    }
}
