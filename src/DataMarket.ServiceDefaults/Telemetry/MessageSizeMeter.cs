using System.Diagnostics.Metrics;
using MassTransit;

namespace DataMarket.ServiceDefaults.Telemetry;

/// <summary>
/// <c>datamarket.bus.message.size{message_type}</c>: the size on the wire of every message a consumer of this process
/// receives. Nothing on the bus may grow with the data (datasets, point values and shard results go by blob
/// reference), and this histogram is how an operator sees that hold in production; the integration tests read it too.
/// </summary>
public sealed class MessageSizeMeter : IConsumeObserver
{
    /// <summary>The bus's one meter, shared with <see cref="QueueDepthGauge"/>.</summary>
    public const string MeterName = QueueDepthGauge.MeterName;

    public const string InstrumentName = "datamarket.bus.message.size";

    private readonly Histogram<long> _sizes;

    public MessageSizeMeter(IMeterFactory meters) =>
        _sizes = meters.Create(MeterName).CreateHistogram<long>(InstrumentName, "By", "Size of each message body a consumer received");

    public Task PreConsume<T>(ConsumeContext<T> context)
        where T : class
    {
        // The transport's body length; a transport that cannot tell (none of ours) is left out rather than guessed.
        if (context.ReceiveContext.Body.Length is { } length)
        {
            _sizes.Record(length, new KeyValuePair<string, object?>("message_type", typeof(T).Name));
        }

        return Task.CompletedTask;
    }

    public Task PostConsume<T>(ConsumeContext<T> context)
        where T : class => Task.CompletedTask;

    public Task ConsumeFault<T>(ConsumeContext<T> context, Exception exception)
        where T : class => Task.CompletedTask;
}
