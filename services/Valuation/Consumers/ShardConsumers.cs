using DataMarket.Contracts;
using DataMarket.ServiceDefaults.Messaging;
using DataMarket.Valuation.Shapley;
using DataMarket.ValuationWorker.Infrastructure;
using MassTransit;

namespace DataMarket.ValuationWorker.Consumers;

/// <summary>
/// Computes one shard and stores its partial moments under the shard's own name, then reports it. Any worker of the
/// pool takes any shard (competing consumers, one at a time); a worker that dies mid-shard leaves the message
/// unacknowledged, the broker hands it to another worker, and the recomputed shard overwrites the same file, so no
/// shard is ever counted twice. A shard whose data is bad stops the valuation and fails it with the reason.
/// </summary>
public sealed class ValueShardConsumer(
    ValuationRunner runner, PreparedValuations prepared, ShardStore store, ILogger<ValueShardConsumer> logger) : IConsumer<ValueShard>
{
    public async Task Consume(ConsumeContext<ValueShard> context)
    {
        var shard = context.Message;
        if (store.IsStopped(shard.ValuationId) || store.IsCompleted(shard.ValuationId))
        {
            return;
        }

        ShardMoments moments;
        ShardedValuation valuation;
        var started = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            valuation = prepared.Get(shard.Request, runner.Open);
            moments = await Task.Run(
                () => valuation.RunShard(new TestPointRange(shard.FirstTestPoint, shard.TestPoints), null, context.CancellationToken),
                context.CancellationToken);
        }
        catch (ValuationRejectedException exception)
        {
            logger.LogWarning("Valuation {ValuationId} shard {Shard} rejected: {Reason}", shard.ValuationId, shard.ShardIndex, exception.Message);
            store.MarkStopped(shard.ValuationId, exception.Message);
            ValuationMetrics.Failed.Add(1);
            await context.Publish(new ValuationFailed { ValuationId = shard.ValuationId, Reason = exception.Message, FailedAt = DateTimeOffset.UtcNow });
            return;
        }

        store.WriteShard(shard.ValuationId, shard.ShardIndex, moments);
        ValuationMetrics.ShardDuration.Record(started.Elapsed.TotalSeconds);
        await SendNextAsync(context, valuation.ShardUnits);
        await context.Publish(new ValuationShardCompleted
        {
            ValuationId = shard.ValuationId,
            ShardIndex = shard.ShardIndex,
            ShardCount = shard.ShardCount,
            TotalUnits = valuation.ShardUnits,
            TestPoints = valuation.TestPoints,
            Request = shard.Request,
            CompletedAt = DateTimeOffset.UtcNow,
        });
    }

    /// <summary>
    /// Keeps the valuation's window full: shard s + window goes to the queue this shard came from. Only a shard that is
    /// not the last sends one, so its size is the plan's shard size. A redelivered shard sends its successor again; the
    /// copy recomputes the same file, so nothing is counted twice.
    /// </summary>
    private async Task SendNextAsync(ConsumeContext<ValueShard> context, int units)
    {
        var shard = context.Message;
        var next = shard.ShardIndex + shard.ShardsInFlight;
        if (shard.ShardsInFlight <= 0 || next >= shard.ShardCount || store.IsStopped(shard.ValuationId))
        {
            return;
        }

        var range = ShardPlan.Range(next, shard.TestPoints, units);
        var endpoint = await context.GetSendEndpoint(context.ReceiveContext.InputAddress);
        await endpoint.Send(shard with { ShardIndex = next, FirstTestPoint = range.First, TestPoints = range.Count }, context.CancellationToken);
    }
}

public sealed class ValueShardConsumerDefinition : ConsumerDefinition<ValueShardConsumer>
{
    public ValueShardConsumerDefinition(BusOptions bus, ValuationWorkerOptions options)
    {
        // The queue KEDA scales on (k8s/base/keda.yaml): one per pool, so GPU shards reach only the GPU pool.
        EndpointName = ValuationQueues.Resolve(bus, options.Pool == "gpu" ? ValuationQueues.GpuShards : ValuationQueues.Shards);
        // One shard at a time per worker: its memory is one training set's ranking state plus one block of test points.
        ConcurrentMessageLimit = 1;
    }

    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<ValueShardConsumer> consumerConfigurator, IRegistrationContext context)
    {
        if (endpointConfigurator is IRabbitMqReceiveEndpointConfigurator rabbit)
        {
            rabbit.PrefetchCount = 1;
        }

        endpointConfigurator.UseMessageRetry(retry =>
        {
            retry.Ignore<ValuationRejectedException>();
            retry.Intervals(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5));
        });
    }
}

/// <summary>
/// The coordinator's half: counts the stored shards into progress and, once every shard is in, merges them in shard
/// order and publishes the result. Reports may arrive at several workers at once; the merge is deterministic and the
/// catalog takes the first result, so a second merge changes nothing.
/// </summary>
public sealed class ValuationShardCompletedConsumer(
    ValuationRunner runner, PreparedValuations prepared, ShardStore store, ILogger<ValuationShardCompletedConsumer> logger) : IConsumer<ValuationShardCompleted>
{
    public async Task Consume(ConsumeContext<ValuationShardCompleted> context)
    {
        var report = context.Message;
        var id = report.ValuationId;
        if (store.IsStopped(id) || store.IsCompleted(id))
        {
            return;
        }

        var done = 0;
        var missing = 0;
        for (var s = 0; s < report.ShardCount; s++)
        {
            if (store.StoredRange(id, s) is { } range)
            {
                done += range.Count;
            }
            else
            {
                missing++;
            }
        }

        // Progress is in test points, as ValuationStarted announced: where the shards split training rows, the share done
        // is carried over to them.
        var completedTestPoints = report.TotalUnits == report.TestPoints
            ? done
            : (int)((long)done * report.TestPoints / Math.Max(1, report.TotalUnits));
        await context.Publish(new ValuationProgressed
        {
            ValuationId = id, CompletedTestPoints = completedTestPoints, TotalTestPoints = report.TestPoints, At = DateTimeOffset.UtcNow,
        });
        if (missing > 0)
        {
            return;
        }

        var shards = Enumerable.Range(0, report.ShardCount).Select(s => store.ReadShard(id, s)).ToList();
        var valuation = prepared.Get(report.Request, runner.Open);
        var result = valuation.Merge(shards);
        var completed = await runner.CompleteAsync(
            report.Request, valuation.Parts, valuation.TestPoints, result, store.StartedAt(id) ?? report.CompletedAt, context.CancellationToken);
        await context.Publish(completed);
        store.MarkCompleted(id);
        ValuationMetrics.Completed.Add(1);
        logger.LogInformation("Valuation {ValuationId}: merged {Shards} shards", id, report.ShardCount);
    }
}

public sealed class ValuationShardCompletedConsumerDefinition : ConsumerDefinition<ValuationShardCompletedConsumer>
{
    public const string Queue = DataMarket.ServiceDefaults.Messaging.ValuationQueues.ShardReports;

    public ValuationShardCompletedConsumerDefinition(BusOptions bus)
    {
        EndpointName = ValuationQueues.Resolve(bus, Queue);
        ConcurrentMessageLimit = 1;
    }
}

/// <summary>The buyer cancelled: the valuation's remaining shards are dropped by whichever worker takes them.</summary>
public sealed class ValuationCancelledConsumer(ShardStore store) : IConsumer<ValuationCancelled>
{
    public Task Consume(ConsumeContext<ValuationCancelled> context)
    {
        store.MarkStopped(context.Message.ValuationId, "cancelled by the buyer");
        return Task.CompletedTask;
    }
}
