using DataMarket.Ledger.Storage;

namespace DataMarket.Ledger.Events;

/// <summary>
/// What both implementations of the port share: an append runs in a transaction of its own through the
/// backend (a Marten session on PostgreSQL, SQL on SQLite), and the backend owns the high-water mark. Reads differ.
/// </summary>
internal abstract class BackendEventStore(StorageBackend backend) : IEventStore
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

        return await backend.AppendAsync(streamId, streamType, expected, events, cancellationToken).ConfigureAwait(false);
    }

    public async Task AppendManyAsync(IReadOnlyList<StreamAppendRequest> appends, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(appends);
        foreach (var append in appends)
        {
            ArgumentException.ThrowIfNullOrEmpty(append.StreamId);
            ArgumentException.ThrowIfNullOrEmpty(append.StreamType);
            if (append.Events is not { Count: > 0 })
            {
                throw new ArgumentException($"Stream '{append.StreamId}': at least one event is required.", nameof(appends));
            }
        }

        if (appends.Select(a => a.StreamId).Distinct(StringComparer.Ordinal).Count() != appends.Count)
        {
            throw new ArgumentException("Each stream may appear once.", nameof(appends));
        }

        if (appends.Count > 0)
        {
            await backend.AppendManyAsync(appends.Select(a => new StreamAppend(a.StreamId, a.StreamType, a.Expected, a.Events)).ToList(), cancellationToken).ConfigureAwait(false);
        }
    }

    public Task<long> GetHighWaterMarkAsync(CancellationToken cancellationToken = default) =>
        backend.GetHighWaterMarkAsync(cancellationToken);

    public Task<IReadOnlyList<RecordedEvent>> ReadAllAsync(long afterSequence, int maxCount, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxCount);
        return ReadAllCoreAsync(afterSequence, maxCount, cancellationToken);
    }

    public abstract Task<StreamInfo?> GetStreamAsync(string streamId, CancellationToken cancellationToken = default);

    public abstract Task<IReadOnlyList<RecordedEvent>> ReadStreamAsync(string streamId, long fromVersion = 1, CancellationToken cancellationToken = default);

    protected abstract Task<IReadOnlyList<RecordedEvent>> ReadAllCoreAsync(long afterSequence, int maxCount, CancellationToken cancellationToken);
}
