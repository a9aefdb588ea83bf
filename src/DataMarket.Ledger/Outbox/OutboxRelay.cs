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
/// Relays committed outbox rows to the bus in sequence order, marking each dispatched after the bus
/// accepted it. Delivery is at least once: a crash after publishing but before the mark commits
/// publishes the row again after restart, with the same message id, for the consumer's inbox to absorb.
/// Several relays may run: on PostgreSQL each claims rows with SKIP LOCKED.
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
    public async Task<int> DispatchPendingAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await _backend.OpenAsync(cancellationToken).ConfigureAwait(false);
        if (_backend.SkipLocked.Length == 0)
        {
            return await DispatchWithoutClaimAsync(connection, cancellationToken).ConfigureAwait(false);
        }

        // PostgreSQL: the claimed rows stay locked while they are published, so parallel relays skip them.
        await using var transaction = await _backend.BeginAsync(connection, cancellationToken).ConfigureAwait(false);
        var messages = await ClaimAsync(transaction, cancellationToken).ConfigureAwait(false);
        var dispatched = 0;
        foreach (var message in messages)
        {
            var published = await TryPublishAsync(message, cancellationToken).ConfigureAwait(false);
            await MarkAsync(transaction, message, published, cancellationToken).ConfigureAwait(false);
            if (!published)
            {
                break;
            }

            dispatched++;
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return dispatched;
    }

    /// <summary>
    /// SQLite has one writer at a time; holding it while publishing would stall the ledger (and any
    /// consumer writing to the same file). Embedded mode runs one relay, so it reads, publishes, and
    /// marks each message in its own short transaction.
    /// </summary>
    private async Task<int> DispatchWithoutClaimAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        List<OutboxMessage> messages;
        await using (var read = await _backend.BeginSnapshotAsync(connection, cancellationToken).ConfigureAwait(false))
        {
            messages = await ClaimAsync(read, cancellationToken, lockRows: false).ConfigureAwait(false);
            await read.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        var dispatched = 0;
        foreach (var message in messages)
        {
            var published = await TryPublishAsync(message, cancellationToken).ConfigureAwait(false);
            await using (var transaction = await _backend.BeginAsync(connection, cancellationToken).ConfigureAwait(false))
            {
                await MarkAsync(transaction, message, published, cancellationToken).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }

            if (!published)
            {
                break;
            }

            dispatched++;
        }

        return dispatched;
    }

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

    private Task MarkAsync(DbTransaction transaction, OutboxMessage message, bool published, CancellationToken cancellationToken) =>
        published
            ? ExecuteAsync(
                transaction,
                $"UPDATE {_backend.Table("outbox")} SET dispatched_at = @now, attempts = attempts + 1 WHERE id = @id",
                cancellationToken,
                ("now", Time.ToUnixMicroseconds(_timeProvider.GetUtcNow())),
                ("id", message.MessageId.ToString()))
            : ExecuteAsync(transaction, $"UPDATE {_backend.Table("outbox")} SET attempts = attempts + 1 WHERE id = @id", cancellationToken, ("id", message.MessageId.ToString()));

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
    public async Task<IReadOnlyList<OutboxMessage>> GetUndispatchedAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await _backend.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await _backend.BeginSnapshotAsync(connection, cancellationToken).ConfigureAwait(false);
        return await ClaimAsync(transaction, cancellationToken, int.MaxValue, lockRows: false).ConfigureAwait(false);
    }

    private async Task<List<OutboxMessage>> ClaimAsync(DbTransaction transaction, CancellationToken cancellationToken, int? limit = null, bool lockRows = true)
    {
        await using var command = StorageBackend.CreateCommand(
            transaction,
            $"SELECT id, seq, type, payload, headers, attempts FROM {_backend.Table("outbox")} WHERE dispatched_at IS NULL ORDER BY seq LIMIT @limit{(lockRows ? _backend.SkipLocked : "")}",
            ("limit", limit ?? _options.BatchSize));
        var messages = new List<OutboxMessage>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            messages.Add(new OutboxMessage(
                Guid.Parse(reader.GetString(0)),
                reader.GetInt64(1),
                reader.GetString(2),
                reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4),
                reader.GetInt32(5)));
        }

        return messages;
    }

    private static async Task ExecuteAsync(DbTransaction transaction, string sql, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters)
    {
        await using var command = StorageBackend.CreateCommand(transaction, sql, parameters);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
