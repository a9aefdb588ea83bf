using DataMarket.Contracts;
using DataMarket.ServiceDefaults.Messaging;
using DataMarket.Valuation.Shapley;
using DataMarket.ValuationWorker.Infrastructure;
using MassTransit;

namespace DataMarket.ValuationWorker.Consumers;

/// <summary>
/// Coordinates a valuation (every method runs as shards). Bad content becomes <see cref="ValuationFailed"/> at once;
/// anything else is left to the endpoint's retry policy, and after that to the error queue and a
/// <c>Fault&lt;RequestValuation&gt;</c> that the catalog turns into a failed valuation.
/// </summary>
public sealed class RequestValuationConsumer(
    ValuationRunner runner,
    PreparedValuations prepared,
    ShardStore store,
    BusOptions bus,
    ValuationWorkerOptions options,
    ILogger<RequestValuationConsumer> logger) : IConsumer<RequestValuation>
{
    public Task Consume(ConsumeContext<RequestValuation> context) => CoordinateAsync(context);

    /// <summary>
    /// This worker becomes the valuation's coordinator: it loads and checks the data once (for LoGra it also trains
    /// the proxy and logs the gradient store the shards read), cuts the test points (training rows for self-influence)
    /// into shards from the job size (never from how many workers there are) and sends one command per shard to the
    /// pool's queue; the shards and their reports do the rest, so no worker waits on another.
    /// </summary>
    private async Task CoordinateAsync(ConsumeContext<RequestValuation> context)
    {
        var request = context.Message;
        // Cancelled while it waited in the queue: nothing to load, train or shard.
        if (store.IsStopped(request.ValuationId))
        {
            logger.LogInformation("Valuation {ValuationId} was stopped before it started", request.ValuationId);
            return;
        }

        ShardedValuation valuation;
        // LoGra trains and logs here before any shard exists: a cancel must reach that step too, not only the shards.
        using (var stopped = store.WatchStopped(request.ValuationId, context.CancellationToken))
        {
            try
            {
                valuation = prepared.Get(request, r => runner.Prepare(r, stopped.Token));
            }
            catch (ValuationRejectedException exception)
            {
                logger.LogWarning("Valuation {ValuationId} rejected: {Reason}", request.ValuationId, exception.Message);
                await context.Publish(new ValuationFailed { ValuationId = request.ValuationId, Reason = exception.Message, FailedAt = DateTimeOffset.UtcNow });
                return;
            }
            catch (OperationCanceledException) when (store.IsStopped(request.ValuationId))
            {
                logger.LogInformation("Valuation {ValuationId} was stopped while it was being prepared", request.ValuationId);
                return;
            }
        }

        var startedAt = DateTimeOffset.UtcNow;
        store.MarkStarted(request.ValuationId, startedAt);
        await context.Publish(new ValuationStarted
        {
            ValuationId = request.ValuationId,
            TrainingPoints = valuation.TrainingPoints,
            TestPoints = valuation.TestPoints,
            StartedAt = startedAt,
        });
        var plan = valuation.Plan(options.PairsPerShard);
        var queue = ValuationQueues.Resolve(bus, ShardQueue(request.Device));
        // A send declares the queue as well; it must match how the consumers declared it (temporary in tests).
        var endpoint = await context.GetSendEndpoint(new Uri(bus.TemporaryEndpoints ? $"queue:{queue}?durable=false&autodelete=true" : $"queue:{queue}"));
        // The first shards of a sliding window; each finished shard sends the next (ValueShardConsumer).
        var inFlight = options.MaxShardsInFlight > 0 ? options.MaxShardsInFlight : plan.Count;
        for (var s = 0; s < Math.Min(inFlight, plan.Count); s++)
        {
            await endpoint.Send(new ValueShard
            {
                ValuationId = request.ValuationId,
                ShardIndex = s,
                ShardCount = plan.Count,
                FirstTestPoint = plan[s].First,
                TestPoints = plan[s].Count,
                Request = request,
                ShardsInFlight = inFlight,
            }, context.CancellationToken);
        }

        logger.LogInformation("Valuation {ValuationId}: {Shards} shards of up to {Size} test points to {Queue}", request.ValuationId, plan.Count, plan[0].Count, queue);
    }

    private string ShardQueue(string device) => device switch
    {
        "gpu" => ValuationQueues.GpuShards,
        "auto" when options.GpuPoolAvailable => ValuationQueues.GpuShards,
        _ => ValuationQueues.Shards,
    };
}

public sealed class RequestValuationConsumerDefinition : ConsumerDefinition<RequestValuationConsumer>
{
    public RequestValuationConsumerDefinition()
    {
        // Preparing a valuation loads its data (and for LoGra trains and logs); one at a time per worker keeps memory predictable.
        ConcurrentMessageLimit = 1;
    }

    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<RequestValuationConsumer> consumerConfigurator,
        IRegistrationContext context)
    {
        endpointConfigurator.UseMessageRetry(retry =>
        {
            retry.Ignore<ValuationRejectedException>();
            retry.Intervals(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5));
        });
    }
}
