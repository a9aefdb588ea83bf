using System.Diagnostics;
using DataMarket.Catalog.Model;
using DataMarket.ServiceDefaults.Messaging;
using MassTransit;
using Microsoft.EntityFrameworkCore;

namespace DataMarket.Catalog.Infrastructure;

/// <summary>Adds integration events to the unit of work; they are sent only if the state change commits.</summary>
public sealed class Outbox(CatalogDbContext db, OutboxSignal signal)
{
    public void Add<T>(T message)
        where T : class
    {
        db.Outbox.Add(new OutboxMessage
        {
            MessageId = NewId.NextGuid(),
            MessageType = IntegrationEvents.TypeName<T>(),
            Body = IntegrationEvents.Serialize(message),
            CreatedAt = DateTime.UtcNow,
            TraceParent = Activity.Current?.Id,
        });
    }

    /// <summary>Commits the unit of work and wakes the relay.</summary>
    public async Task SaveAndSendAsync(CancellationToken cancellationToken)
    {
        await db.SaveChangesAsync(cancellationToken);
        signal.Wake();
    }
}

public sealed class OutboxSignal
{
    private readonly SemaphoreSlim _signal = new(0, 1);

    public void Wake()
    {
        try
        {
            _signal.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already awake.
        }
    }

    public Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _signal.WaitAsync(timeout, cancellationToken);
}

/// <summary>
/// Publishes committed outbox rows in order and marks them dispatched. A crash between publish and marking
/// re-sends the row with the same message id after restart; consumers are idempotent, so that is harmless.
/// One relay per catalog database is assumed.
/// </summary>
public sealed class OutboxRelay(
    IServiceScopeFactory scopes,
    OutboxSignal signal,
    CatalogOptions options,
    ILogger<OutboxRelay> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            int sent;
            try
            {
                sent = await DispatchBatchAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception)
            {
                logger.LogWarning(exception, "Outbox relay failed; retrying");
                sent = 0;
            }

            if (sent == 0)
            {
                try
                {
                    await signal.WaitAsync(options.OutboxPollInterval, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task<int> DispatchBatchAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CatalogDbContext>();
        var publish = scope.ServiceProvider.GetRequiredService<IPublishEndpoint>();
        var batch = await db.Outbox
            .Where(m => m.DispatchedAt == null)
            .OrderBy(m => m.Id)
            .Take(50)
            .ToListAsync(cancellationToken);
        foreach (var message in batch)
        {
            // The relay runs outside the request that wrote the row; publishing under the row's trace context keeps
            // catalog -> bus -> worker -> catalog one trace (MassTransit copies the current context into the headers).
            using var activity = ActivityContext.TryParse(message.TraceParent, null, out var parent)
                ? CatalogTelemetry.Source.StartActivity("outbox publish " + message.MessageType, ActivityKind.Producer, parent)
                : null;
            try
            {
                await IntegrationEvents.PublishAsync(publish, message.MessageType, message.Body, message.MessageId, cancellationToken);
                message.DispatchedAt = DateTime.UtcNow;
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                message.Attempts++;
                message.LastError = exception.Message;
                await db.SaveChangesAsync(cancellationToken);
                throw;
            }

            await db.SaveChangesAsync(cancellationToken);
        }

        return batch.Count;
    }
}

/// <summary>The catalog's own spans (activity source <c>DataMarket.Catalog</c>).</summary>
public static class CatalogTelemetry
{
    public static readonly ActivitySource Source = new("DataMarket.Catalog");
}
