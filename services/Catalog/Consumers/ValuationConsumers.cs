using DataMarket.Catalog.Infrastructure;
using DataMarket.Catalog.Model;
using DataMarket.Contracts;
using DataMarket.ServiceDefaults.Storage;
using MassTransit;
using Microsoft.EntityFrameworkCore;

namespace DataMarket.Catalog.Consumers;

// The consumers run concurrently on their own queues, so a valuation's state may only change through a conditional
// update in the database that follows ValuationStateMachine: "move to X if still in a state before X". A late,
// redelivered or out-of-order message then matches no row for the move, and no consumer can overwrite another's
// result. Facts a message carries (start time, sizes) are filled in where the row still lacks them, whatever the
// order. A consumer that throws (a locked or unreachable database) is retried with backoff (StatusConsumerDefinition)
// and after that lands in the error queue and turns /health unhealthy: an event is never silently dropped.

public sealed class ValuationStartedConsumer(CatalogDbContext db) : IConsumer<ValuationStarted>
{
    public async Task Consume(ConsumeContext<ValuationStarted> context)
    {
        var message = context.Message;
        var startedAt = message.StartedAt.UtcDateTime;
        await db.Valuations
            .Where(v => v.Id == message.ValuationId)
            .ExecuteUpdateAsync(
                set => set
                    .SetProperty(v => v.StartedAt, v => v.StartedAt ?? startedAt)
                    .SetProperty(v => v.TrainingPoints, v => v.TrainingPoints ?? message.TrainingPoints)
                    .SetProperty(v => v.TestPoints, v => v.TestPoints ?? message.TestPoints),
                context.CancellationToken);
        await db.Valuations
            .Where(v => v.Id == message.ValuationId && v.Status == ValuationStatus.Pending)
            .ExecuteUpdateAsync(set => set.SetProperty(v => v.Status, ValuationStatus.Running), context.CancellationToken);
    }
}

public sealed class ValuationProgressedConsumer(CatalogDbContext db) : IConsumer<ValuationProgressed>
{
    public Task Consume(ConsumeContext<ValuationProgressed> context)
    {
        var message = context.Message;
        // Progress only moves forward and never touches a finished valuation; progress proves the run started, so a
        // valuation whose start event is still on its way shows Running rather than "Pending 15/20".
        return db.Valuations
            .Where(v => v.Id == message.ValuationId
                && (v.Status == ValuationStatus.Pending || v.Status == ValuationStatus.Running)
                && v.CompletedTestPoints < message.CompletedTestPoints)
            .ExecuteUpdateAsync(
                set => set
                    .SetProperty(v => v.Status, ValuationStatus.Running)
                    .SetProperty(v => v.CompletedTestPoints, message.CompletedTestPoints)
                    .SetProperty(v => v.TestPoints, v => v.TestPoints ?? message.TotalTestPoints),
                context.CancellationToken);
    }
}

public sealed class ValuationCompletedConsumer(CatalogDbContext db, ContentAddressedBlobStore blobs) : IConsumer<ValuationCompleted>
{
    public async Task Consume(ConsumeContext<ValuationCompleted> context)
    {
        var message = context.Message;
        var finishedAt = message.CompletedAt.UtcDateTime;
        var startedAt = message.StartedAt?.UtcDateTime ?? finishedAt;
        var pointsBlob = message.PointValues?.BlobId;
        var pointCount = message.PointValues?.Count ?? message.Points.Count;
        if (pointsBlob is null && message.Points.Count > 0)
        {
            // An in-process producer may still send values inline; they are kept as a blob like the worker's, never as rows.
            pointsBlob = (await PointValueBlob.StoreAsync(blobs, InlineSegments(message.Points), context.CancellationToken)).BlobId;
        }

        // Seller-level methods value sellers only; the point count then stays what the worker reported.
        int? trainingPoints = message.TrainingPoints ?? (pointCount > 0 ? pointCount : null);
        var testPoints = message.TestPoints;
        await using var transaction = await db.Database.BeginTransactionAsync(context.CancellationToken);
        var claimed = await db.Valuations
            .Where(v => v.Id == message.ValuationId && (v.Status == ValuationStatus.Pending || v.Status == ValuationStatus.Running))
            .ExecuteUpdateAsync(
                set => set
                    .SetProperty(v => v.Status, ValuationStatus.Completed)
                    .SetProperty(v => v.FinishedAt, finishedAt)
                    .SetProperty(v => v.StartedAt, v => v.StartedAt ?? startedAt)
                    .SetProperty(v => v.TotalUtility, message.TotalUtility)
                    .SetProperty(v => v.PointsBlobId, pointsBlob)
                    .SetProperty(v => v.TrainingPoints, v => trainingPoints ?? v.TrainingPoints)
                    .SetProperty(v => v.TestPoints, v => testPoints ?? v.TestPoints)
                    .SetProperty(v => v.CompletedTestPoints, v => testPoints ?? v.TestPoints ?? v.CompletedTestPoints),
                context.CancellationToken);
        if (claimed == 0)
        {
            // Already finished (a duplicate, or cancelled first) or unknown here.
            return;
        }

        db.AddRange(message.Sellers.Select(s => new ValuationSellerValue
        {
            ValuationId = message.ValuationId,
            SellerId = s.SellerId,
            Points = s.Points,
            Value = s.Value,
            StandardError = s.StandardError,
        }));
        await ValuationCallbacks.EnqueueAsync(db, message.ValuationId, context.CancellationToken);
        await db.SaveChangesAsync(context.CancellationToken);
        await transaction.CommitAsync(context.CancellationToken);
    }

    private static List<PointValueSegment> InlineSegments(IReadOnlyList<PointValue> points)
    {
        var segments = new List<PointValueSegment>();
        var start = 0;
        while (start < points.Count)
        {
            var end = start;
            while (end < points.Count && points[end].ListingId == points[start].ListingId)
            {
                end++;
            }

            var run = points.Skip(start).Take(end - start).ToList();
            segments.Add(new PointValueSegment(points[start].ListingId, run.Select(p => p.Value).ToArray(), run.Select(p => p.StandardError ?? double.NaN).ToArray()));
            start = end;
        }

        return segments;
    }
}

public sealed class ValuationFailedConsumer(CatalogDbContext db) : IConsumer<ValuationFailed>
{
    public Task Consume(ConsumeContext<ValuationFailed> context) =>
        ValuationFailures.MarkFailedAsync(db, context.Message.ValuationId, context.Message.Reason, context.Message.FailedAt.UtcDateTime, context.CancellationToken);
}

/// <summary>The worker gave up after its retries: the buyer must hear about it rather than wait forever.</summary>
public sealed class RequestValuationFaultConsumer(CatalogDbContext db) : IConsumer<Fault<RequestValuation>>
{
    public Task Consume(ConsumeContext<Fault<RequestValuation>> context)
    {
        var reason = context.Message.Exceptions.FirstOrDefault()?.Message ?? "the valuation worker failed";
        return ValuationFailures.MarkFailedAsync(db, context.Message.Message.ValuationId, $"valuation worker error: {reason}", context.Message.Timestamp, context.CancellationToken);
    }
}

internal static class ValuationFailures
{
    public static async Task MarkFailedAsync(CatalogDbContext db, Guid valuationId, string reason, DateTime at, CancellationToken cancellationToken)
    {
        var finishedAt = DateTime.SpecifyKind(at, DateTimeKind.Utc);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var moved = await db.Valuations
            .Where(v => v.Id == valuationId && (v.Status == ValuationStatus.Pending || v.Status == ValuationStatus.Running))
            .ExecuteUpdateAsync(
                set => set
                    .SetProperty(v => v.Status, ValuationStatus.Failed)
                    .SetProperty(v => v.Error, reason)
                    .SetProperty(v => v.FinishedAt, finishedAt),
                cancellationToken);
        if (moved > 0)
        {
            await ValuationCallbacks.EnqueueAsync(db, valuationId, cancellationToken);
            await db.SaveChangesAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }
}

/// <summary>
/// Status events must not be lost to a briefly locked or unreachable database: retry with exponential backoff
/// (limits from <see cref="CatalogOptions.StatusRetry"/>), then the error queue and an unhealthy <c>/health</c>.
/// </summary>
public sealed class StatusConsumerDefinition<TConsumer>(CatalogOptions options) : ConsumerDefinition<TConsumer>
    where TConsumer : class, IConsumer
{
    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<TConsumer> consumerConfigurator,
        IRegistrationContext context)
    {
        var retry = options.StatusRetry;
        endpointConfigurator.UseMessageRetry(r => r.Exponential(retry.Limit, retry.MinInterval, retry.MaxInterval, retry.MinInterval));
    }
}
