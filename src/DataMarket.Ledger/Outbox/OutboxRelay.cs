using System.Data.Common;
using DataMarket.Ledger.Events;
using DataMarket.Ledger.Storage;

namespace DataMarket.Ledger.Outbox;

/// <summary>An integration event waiting in the outbox. Publish it with <see cref="MessageId"/> as the bus message id.</summary>
public sealed record OutboxMessage(Guid MessageId, long Sequence, string Type, string Payload, string? Headers, int Attempts);

/// <summary>Hands one outbox message to the bus. Throwing leaves the message for the next pass.</summary>
public interface IOutboxPublisher
{
    Task PublishAsync(OutboxMessage message, CancellationToken cancellationToken);
}

public sealed record OutboxRelayOptions
{
    public int BatchSize { get; init; } = 100;
    public TimeSpan IdleDelay { get; init; } = TimeSpan.FromMilliseconds(200);
    public TimeSpan FailureDelay { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// Relays committed outbox messages to the bus in sequence order, marking each dispatched (PostgreSQL:
/// deleting its document) after the bus accepted it. Delivery is at least once: a crash after publishing but before the mark commits
/// publishes the row again after restart, with the same message id, for the consumer's inbox to absorb.
/// Several relays may run: on PostgreSQL they take turns (an advisory lock held for a pass), so order holds.
/// </summary>
public sealed class OutboxRelay
{
    private readonly StorageBackend _backend;
    private readonly IOutboxPublisher _publisher;
    private readonly OutboxRelayOptions _options;
    private readonly TimeProvider _timeProvider;

    public OutboxRelay(LedgerDatabase database, IOutboxPublisher publisher, OutboxRelayOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(publisher);
        _backend = database.Backend;
        _timeProvider = database.TimeProvider;
        _publisher = publisher;
        _options = options ?? new OutboxRelayOptions();
    }

    /// <summary>Publishes one batch of undispatched messages; returns how many were marked dispatched.</summary>
    public Task<int> DispatchPendingAsync(CancellationToken cancellationToken = default) =>
        _backend.DispatchOutboxAsync(_options.BatchSize, message => TryPublishAsync(message, cancellationToken), _timeProvider.GetUtcNow(), cancellationToken);

    private async Task<bool> TryPublishAsync(OutboxMessage message, CancellationToken cancellationToken)
    {
        try
        {
            await _publisher.PublishAsync(message, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // Keep order: stop at the first failure and retry on the next pass.
            return false;
        }
    }

    /// <summary>Relays until cancelled; a restarted process simply starts this again and picks up where the table says.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            TimeSpan delay;
            try
            {
                var dispatched = await DispatchPendingAsync(cancellationToken).ConfigureAwait(false);
                delay = dispatched == 0 ? _options.IdleDelay : TimeSpan.Zero;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception) when (exception is DbException or TimeoutException)
            {
                // The database is away (restart, failover): try again shortly.
                delay = _options.FailureDelay;
            }

            if (delay > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(delay, _timeProvider, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Messages not yet dispatched, oldest first (for inspection and tests).</summary>
    public Task<IReadOnlyList<OutboxMessage>> GetUndispatchedAsync(CancellationToken cancellationToken = default) =>
        _backend.ReadUndispatchedAsync(cancellationToken);
}
