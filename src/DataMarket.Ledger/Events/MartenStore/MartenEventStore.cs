using DataMarket.Ledger.Storage;
using Npgsql;

namespace DataMarket.Ledger.Events.MartenStore;

/// <summary>The event store port on Marten: appends run in a transaction of their own; reads are Marten's.</summary>
internal sealed class MartenEventStore(StorageBackend backend, MartenEventLog log) : IEventStore
{
    public async Task<AppendResult> AppendAsync(
        string streamId,
        string streamType,
        ExpectedVersion expected,
        IReadOnlyList<NewEvent> events,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamId);
        ArgumentException.ThrowIfNullOrEmpty(streamType);
        ArgumentNullException.ThrowIfNull(events);
        if (events.Count == 0)
        {
            throw new ArgumentException("At least one event is required.", nameof(events));
        }

        await using var connection = await backend.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await backend.BeginAsync(connection, cancellationToken).ConfigureAwait(false);
        var result = await log.AppendOneAsync((NpgsqlTransaction)transaction, new StreamAppend(streamId, streamType, expected, events), cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    public Task<StreamInfo?> GetStreamAsync(string streamId, CancellationToken cancellationToken = default) =>
        log.GetStreamAsync(streamId, cancellationToken);

    public Task<IReadOnlyList<RecordedEvent>> ReadStreamAsync(string streamId, long fromVersion = 1, CancellationToken cancellationToken = default) =>
        log.ReadStreamAsync(streamId, fromVersion, cancellationToken);

    public Task<long> GetHighWaterMarkAsync(CancellationToken cancellationToken = default) =>
        log.GetHighWaterMarkAsync(cancellationToken);

    public Task<IReadOnlyList<RecordedEvent>> ReadAllAsync(long afterSequence, int maxCount, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxCount);
        return log.ReadAllAsync(afterSequence, maxCount, cancellationToken);
    }
}
