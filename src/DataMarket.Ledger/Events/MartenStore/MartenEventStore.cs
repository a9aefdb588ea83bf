using DataMarket.Ledger.Storage;

namespace DataMarket.Ledger.Events.MartenStore;

/// <summary>The event store port on Marten: appends through the backend's Marten session, reads are Marten's.</summary>
internal sealed class MartenEventStore(StorageBackend backend, MartenEventLog log) : BackendEventStore(backend)
{
    public override Task<StreamInfo?> GetStreamAsync(string streamId, CancellationToken cancellationToken = default) =>
        log.GetStreamAsync(streamId, cancellationToken);

    public override Task<IReadOnlyList<RecordedEvent>> ReadStreamAsync(string streamId, long fromVersion = 1, CancellationToken cancellationToken = default) =>
        log.ReadStreamAsync(streamId, fromVersion, cancellationToken);

    protected override Task<IReadOnlyList<RecordedEvent>> ReadAllCoreAsync(long afterSequence, int maxCount, CancellationToken cancellationToken) =>
        log.ReadAllAsync(afterSequence, maxCount, cancellationToken);
}
