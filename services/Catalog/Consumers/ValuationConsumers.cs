using DataMarket.Catalog.Model;
using DataMarket.Contracts;
using MassTransit;
using Microsoft.EntityFrameworkCore;

namespace DataMarket.Catalog.Consumers;

// Each consumer is idempotent on the valuation's state: a redelivered or late message finds the valuation
// already past the state it would move it to, and changes nothing.

public sealed class ValuationStartedConsumer(CatalogDbContext db) : IConsumer<ValuationStarted>
{
    public async Task Consume(ConsumeContext<ValuationStarted> context)
    {
        var message = context.Message;
        var valuation = await db.Valuations.SingleOrDefaultAsync(v => v.Id == message.ValuationId, context.CancellationToken);
        if (valuation is null || valuation.Status != ValuationStatus.Pending)
        {
            return;
        }

        valuation.Status = ValuationStatus.Running;
        valuation.StartedAt = message.StartedAt.UtcDateTime;
        valuation.TrainingPoints = message.TrainingPoints;
        valuation.TestPoints = message.TestPoints;
        await db.SaveChangesAsync(context.CancellationToken);
    }
}

public sealed class ValuationProgressedConsumer(CatalogDbContext db) : IConsumer<ValuationProgressed>
{
    public async Task Consume(ConsumeContext<ValuationProgressed> context)
    {
        var message = context.Message;
        var valuation = await db.Valuations.SingleOrDefaultAsync(v => v.Id == message.ValuationId, context.CancellationToken);
        // Progress only moves forward, and never touches a finished valuation.
        if (valuation is null || valuation.Status is ValuationStatus.Completed or ValuationStatus.Failed
            || message.CompletedTestPoints <= valuation.CompletedTestPoints)
        {
            return;
        }

        valuation.CompletedTestPoints = message.CompletedTestPoints;
        valuation.TestPoints ??= message.TotalTestPoints;
        await db.SaveChangesAsync(context.CancellationToken);
    }
}

public sealed class ValuationCompletedConsumer(CatalogDbContext db) : IConsumer<ValuationCompleted>
{
    public async Task Consume(ConsumeContext<ValuationCompleted> context)
    {
        var message = context.Message;
        var valuation = await db.Valuations.SingleOrDefaultAsync(v => v.Id == message.ValuationId, context.CancellationToken);
        if (valuation is null || valuation.Status is ValuationStatus.Completed or ValuationStatus.Failed)
        {
            return;
        }

        valuation.Status = ValuationStatus.Completed;
        valuation.CompletedTestPoints = valuation.TestPoints ?? valuation.CompletedTestPoints;
        valuation.FinishedAt = message.CompletedAt.UtcDateTime;
        valuation.StartedAt ??= valuation.FinishedAt;
        valuation.TotalUtility = message.TotalUtility;
        // Seller-level methods value sellers only; the point count then stays what the worker reported at start.
        if (message.Points.Count > 0)
        {
            valuation.TrainingPoints = message.Points.Count;
        }
        valuation.Sellers.AddRange(message.Sellers.Select(s => new ValuationSellerValue
        {
            ValuationId = valuation.Id,
            SellerId = s.SellerId,
            Points = s.Points,
            Value = s.Value,
            StandardError = s.StandardError,
        }));
        db.ValuationPoints.AddRange(message.Points.Select((p, ordinal) => new ValuationPointValue
        {
            ValuationId = valuation.Id,
            Ordinal = ordinal,
            ListingId = p.ListingId,
            Row = p.Row,
            Value = p.Value,
            StandardError = p.StandardError,
        }));
        await db.SaveChangesAsync(context.CancellationToken);
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
        var valuation = await db.Valuations.SingleOrDefaultAsync(v => v.Id == valuationId, cancellationToken);
        if (valuation is null || valuation.Status is ValuationStatus.Completed or ValuationStatus.Failed)
        {
            return;
        }

        valuation.Status = ValuationStatus.Failed;
        valuation.Error = reason;
        valuation.FinishedAt = DateTime.SpecifyKind(at, DateTimeKind.Utc);
        await db.SaveChangesAsync(cancellationToken);
    }
}
