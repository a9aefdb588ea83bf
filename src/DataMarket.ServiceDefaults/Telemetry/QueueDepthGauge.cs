using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace DataMarket.ServiceDefaults.Telemetry;

/// <summary>
/// <c>datamarket.queue.depth{queue}</c>: messages ready in each named queue, as the broker last reported them (a passive
/// declare per queue, every <see cref="TelemetryOptions.QueueDepthInterval"/>). A queue the broker does not know is left
/// out; when the broker cannot be reached every queue is left out until it can, so no stale depth is reported.
/// </summary>
public sealed class QueueDepthGauge : BackgroundService
{
    public const string MeterName = "DataMarket.Messaging";

    private readonly Uri _broker;
    private readonly IReadOnlyList<string> _queues;
    private readonly TimeSpan _interval;
    private readonly ILogger<QueueDepthGauge> _logger;
    private readonly ConcurrentDictionary<string, long> _depths = new(StringComparer.Ordinal);
    private IConnection? _connection;

    public QueueDepthGauge(Uri broker, IReadOnlyList<string> queues, TimeSpan interval, IMeterFactory meters, ILogger<QueueDepthGauge> logger)
    {
        _broker = broker;
        _queues = queues;
        _interval = interval;
        _logger = logger;
        meters.Create(MeterName).CreateObservableGauge(
            "datamarket.queue.depth",
            () => _depths.Select(depth => new Measurement<long>(depth.Value, new KeyValuePair<string, object?>("queue", depth.Key))),
            "{message}",
            "Messages ready in the queue, as the broker last reported");
    }

    /// <summary>Asks the broker for every queue's depth once.</summary>
    public async Task SampleAsync(CancellationToken cancellationToken)
    {
        try
        {
            _connection ??= await new ConnectionFactory { Uri = _broker, ClientProvidedName = "datamarket-queue-depth" }.CreateConnectionAsync(cancellationToken);
            foreach (var queue in _queues)
            {
                // A passive declare of a missing queue closes its channel (404), so each queue gets a channel of its own.
                await using var channel = await _connection.CreateChannelAsync(cancellationToken: cancellationToken);
                try
                {
                    var declared = await channel.QueueDeclarePassiveAsync(queue, cancellationToken);
                    _depths[queue] = declared.MessageCount;
                }
                catch (OperationInterruptedException exception) when (exception.ShutdownReason?.ReplyCode == 404)
                {
                    _depths.TryRemove(queue, out _);
                }
            }
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            _logger.LogWarning("Could not read queue depths from the broker: {Message}", exception.Message);
            _depths.Clear();
            await DropConnectionAsync();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_interval);
        do
        {
            await SampleAsync(stoppingToken);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await DropConnectionAsync();
    }

    private async Task DropConnectionAsync()
    {
        if (_connection is { } connection)
        {
            _connection = null;
            await connection.DisposeAsync();
        }
    }
}
