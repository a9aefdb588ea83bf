using System.Diagnostics.Metrics;
using DataMarket.ServiceDefaults.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using RabbitMQ.Client;

namespace DataMarket.Integration.Tests;

/// <summary><c>datamarket.queue.depth</c> against the real broker: what KEDA scales on, as an operator's dashboard sees it.</summary>
public sealed class queue_depth_metric
{
    [Fact]
    public async Task reports_the_ready_messages_of_each_queue_and_nothing_for_a_queue_or_broker_it_cannot_read()
    {
        var broker = new Uri(MarketFixture.RabbitMqUri);
        var queue = $"depth-test-{Guid.NewGuid():N}";
        var missing = $"depth-missing-{Guid.NewGuid():N}";
        await using var connection = await new ConnectionFactory { Uri = broker }.CreateConnectionAsync();
        // Confirmed publishes: each message is in the queue before the gauge asks.
        await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
        await channel.QueueDeclareAsync(queue, durable: false, exclusive: false, autoDelete: false);
        try
        {
            for (var i = 0; i < 3; i++)
            {
                await channel.BasicPublishAsync(string.Empty, queue, new byte[] { 1 });
            }

            await using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
            var meters = services.GetRequiredService<IMeterFactory>();
            using var gauge = new QueueDepthGauge(broker, [queue, missing], TimeSpan.FromMinutes(1), meters, NullLogger<QueueDepthGauge>.Instance);
            await gauge.SampleAsync(CancellationToken.None);
            var depths = Observe(meters);
            Assert.Equal(3, depths[queue]);
            Assert.False(depths.ContainsKey(missing));

            await channel.BasicGetAsync(queue, autoAck: true);
            await gauge.SampleAsync(CancellationToken.None);
            Assert.Equal(2, Observe(meters)[queue]);

            // A broker that cannot be reached reports no depth at all rather than the last one it saw.
            await using var elsewhere = new ServiceCollection().AddMetrics().BuildServiceProvider();
            var unreachableMeters = elsewhere.GetRequiredService<IMeterFactory>();
            using var unreachable = new QueueDepthGauge(new Uri("amqp://guest:guest@127.0.0.1:1/"), [queue], TimeSpan.FromMinutes(1), unreachableMeters, NullLogger<QueueDepthGauge>.Instance);
            await unreachable.SampleAsync(CancellationToken.None);
            Assert.Empty(Observe(unreachableMeters));
        }
        finally
        {
            await channel.QueueDeleteAsync(queue);
        }
    }

    /// <summary>Collects the gauge of one meter factory, as an exporter would at collection time.</summary>
    private static Dictionary<string, long> Observe(IMeterFactory meters)
    {
        var depths = new Dictionary<string, long>(StringComparer.Ordinal);
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "datamarket.queue.depth" && ReferenceEquals(instrument.Meter.Scope, meters))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "queue")
                {
                    depths[(string)tag.Value!] = value;
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return depths;
    }
}
