namespace DataMarket.Ledger.Events;

/// <summary>
/// An append-only store of event streams. Appends check the expected version before a global
/// sequence number is taken; <c>UNIQUE(stream_id, version)</c> is the last line of defence.
/// </summary>
public interface IEventStore
{
    /// <summary>Appends events to a stream atomically.</summary>
    /// <exception cref="EventStreamConcurrencyException">The stream is not at the expected version, or another writer won a race; safe to retry after re-reading.</exception>
    Task<AppendResult> AppendAsync(
        string streamId,
        string streamType,
        ExpectedVersion expected,
        IReadOnlyList<NewEvent> events,
        CancellationToken cancellationToken = default);

    /// <summary>
    /// Appends to several streams in one transaction: all of them or none. For a writer that records many small
    /// streams at once (the settlement sandbox's transfers, one stream per idempotency key), where one transaction per
    /// stream is what costs.
    /// </summary>
    /// <exception cref="EventStreamConcurrencyException">A stream is not at its expected version, or another writer won a race for one (a deadlock between two such writers counts as a lost race); nothing was written, safe to retry after re-reading.</exception>
    Task AppendManyAsync(IReadOnlyList<StreamAppendRequest> appends, CancellationToken cancellationToken = default);

    Task<StreamInfo?> GetStreamAsync(string streamId, CancellationToken cancellationToken = default);

    /// <summary>Reads a stream's events in version order, starting at <paramref name="fromVersion"/>.</summary>
    Task<IReadOnlyList<RecordedEvent>> ReadStreamAsync(
        string streamId,
        long fromVersion = 1,
        CancellationToken cancellationToken = default);

    /// <summary>
    /// The highest global sequence number below which no event can still appear: every lower
    /// sequence number is either committed or belongs to a transaction that can no longer commit.
    /// </summary>
    Task<long> GetHighWaterMarkAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads events with a sequence greater than <paramref name="afterSequence"/>, in order, never past
    /// the high-water mark, so a reader that resumes from the last sequence it saw never skips an event.
    /// </summary>
    Task<IReadOnlyList<RecordedEvent>> ReadAllAsync(
        long afterSequence,
        int maxCount,
        CancellationToken cancellationToken = default);
}
