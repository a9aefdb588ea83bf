using DataMarket.Catalog.Model;
using DataMarket.Contracts;
using MassTransit;
using Microsoft.EntityFrameworkCore;

namespace DataMarket.Catalog.Consumers;

// The four consumers run concurrently on their own queues, so a valuation's state may only change through a
// conditional update in the database: "move to X if still in one of the states before X". A late, redelivered or
// out-of-order message then matches no row and changes nothing, and no consumer can overwrite another's result.

public sealed class ValuationStartedConsumer(CatalogDbContext db) : IConsumer<ValuationStarted>
{
    public Task Consume(ConsumeContext<ValuationStarted> context)
    {
        var message = context.Message;
        var startedAt = message.StartedAt.UtcDateTime;
        return db.Valuations
            .Where(v => v.Id == message.ValuationId && v.Status == ValuationStatus.Pending)
            .ExecuteUpdateAsync(
                set => set
                    .SetProperty(v => v.Status, ValuationStatus.Running)
                    .SetProperty(v => v.StartedAt, startedAt)
                    .SetProperty(v => v.TrainingPoints, message.TrainingPoints)
                    .SetProperty(v => v.TestPoints, message.TestPoints),
                context.CancellationToken);
    }
}

public sealed class ValuationProgressedConsumer(CatalogDbContext db) : IConsumer<ValuationProgressed>
{
    public Task Consume(ConsumeContext<ValuationProgressed> context)
    {
        var message = context.Message;
        // Progress only moves forward, and never touches a finished valuation.
        return db.Valuations
            .Where(v => v.Id == message.ValuationId
                && (v.Status == ValuationStatus.Pending || v.Status == ValuationStatus.Running)
                && v.CompletedTestPoints < message.CompletedTestPoints)
            .ExecuteUpdateAsync(
                set => set
                    .SetProperty(v => v.CompletedTestPoints, message.CompletedTestPoints)
                    .SetProperty(v => v.TestPoints, message.TotalTestPoints),
                context.CancellationToken);
    }
}

public sealed class ValuationCompletedConsumer(CatalogDbContext db) : IConsumer<ValuationCompleted>
{
    public async Task Consume(ConsumeContext<ValuationCompleted> context)
    {
        var message = context.Message;
        var finishedAt = message.CompletedAt.UtcDateTime;
        await using var transaction = await db.Database.BeginTransactionAsync(context.CancellationToken);
        // Seller-level methods value sellers only; the point count then stays what the worker reported at start.
        var pointCount = message.Points.Count;
        var claimed = await db.Valuations
            .Where(v => v.Id == message.ValuationId && (v.Status == ValuationStatus.Pending || v.Status == ValuationStatus.Running))
            .ExecuteUpdateAsync(
                set => set
                    .SetProperty(v => v.Status, ValuationStatus.Completed)
                    .SetProperty(v => v.FinishedAt, finishedAt)
                    .SetProperty(v => v.StartedAt, v => v.StartedAt ?? finishedAt)
                    .SetProperty(v => v.TotalUtility, message.TotalUtility)
                    .SetProperty(v => v.TrainingPoints, v => pointCount > 0 ? pointCount : v.TrainingPoints)
                    .SetProperty(v => v.CompletedTestPoints, v => v.TestPoints ?? v.CompletedTestPoints),
                context.CancellationToken);
        if (claimed == 0)
        {
            // Already finished (a duplicate) or unknown here.
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
        db.ValuationPoints.AddRange(message.Points.Select((p, ordinal) => new ValuationPointValue
        {
            ValuationId = message.ValuationId,
            Ordinal = ordinal,
            ListingId = p.ListingId,
            Row = p.Row,
            Value = p.Value,
            StandardError = p.StandardError,
        }));
        await db.SaveChangesAsync(context.CancellationToken);
        await transaction.CommitAsync(context.CancellationToken);
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
    public static Task MarkFailedAsync(CatalogDbContext db, Guid valuationId, string reason, DateTime at, CancellationToken cancellationToken)
    {
        var finishedAt = DateTime.SpecifyKind(at, DateTimeKind.Utc);
        return db.Valuations
            .Where(v => v.Id == valuationId && (v.Status == ValuationStatus.Pending || v.Status == ValuationStatus.Running))
            .ExecuteUpdateAsync(
                set => set
                    .SetProperty(v => v.Status, ValuationStatus.Failed)
                    .SetProperty(v => v.Error, reason)
                    .SetProperty(v => v.FinishedAt, finishedAt),
                cancellationToken);
    }
}
