using JasperFx;
using JasperFx.Events;
using JasperFx.Events.Daemon;
using Marten;
using Marten.Exceptions;
using Marten.Services;
using Microsoft.Extensions.Logging.Abstractions;
using DataMarket.Ledger.Storage;
using Npgsql;

namespace DataMarket.Ledger.Events.MartenStore;

/// <summary>
/// The event store's envelope as Marten stores it: the port carries events as (type name, JSON) pairs so
/// that any service can keep its own streams through it, and Marten stores one CLR event type. The
/// envelope keeps the port's event id, stream type and metadata, so reads return exactly what was appended.
/// </summary>
public sealed class StoredEvent
{
    public Guid EventId { get; set; }
    public string StreamType { get; set; } = "";
    public string Type { get; set; } = "";
    public string Data { get; set; } = "";
    public string? CorrelationId { get; set; }
    public string? CausationId { get; set; }
    public string? Actor { get; set; }
    public long TimestampMicros { get; set; }

    internal static StoredEvent From(string streamType, NewEvent newEvent)
    {
        var metadata = newEvent.Metadata.Normalized();
        return new StoredEvent
        {
            EventId = newEvent.EventId,
            StreamType = streamType,
            Type = newEvent.Type,
            Data = newEvent.Data,
            CorrelationId = metadata.CorrelationId,
            CausationId = metadata.CausationId,
            Actor = metadata.Actor,
            TimestampMicros = Time.ToUnixMicroseconds(metadata.Timestamp),
        };
    }

    internal RecordedEvent ToRecorded(IEvent stored) => new(
        stored.Sequence,
        EventId,
        stored.StreamKey!,
        stored.Version,
        Type,
        Data,
        new EventMetadata
        {
            CorrelationId = CorrelationId,
            CausationId = CausationId,
            Actor = Actor,
            Timestamp = Time.FromUnixMicroseconds(TimestampMicros),
        });
}

/// <summary>
/// Marten's event store in the ledger's schema: string stream keys, Quick appends (no sequence round trip
/// before a save), and Marten's own high-water detection for readers that tail the log. Appends enlist in
/// the caller's Npgsql transaction, so the ledger's projection, inbox and outbox rows commit with them.
/// </summary>
internal sealed class MartenEventLog : IAsyncDisposable
{
    private readonly DocumentStore _store;
    private readonly SemaphoreSlim _daemonLock = new(1, 1);
    private IProjectionDaemon? _daemon;

    private readonly NpgsqlDataSource _dataSource;

    public MartenEventLog(NpgsqlDataSource dataSource, string schema)
    {
        _dataSource = dataSource;
        _store = DocumentStore.For(options =>
        {
            options.Connection(dataSource);
            options.DatabaseSchemaName = schema;
            options.AutoCreateSchemaObjects = AutoCreate.CreateOrUpdate;
            options.Events.StreamIdentity = StreamIdentity.AsString;
            // Quick appends compute versions and sequence numbers in the insert itself: no nextval round
            // trip before each save, which is what group commit needs.
            options.Events.AppendMode = EventAppendMode.Quick;
            options.Events.AddEventType<StoredEvent>();
            // A gap in the sequence is skipped only once Marten finds no live transaction that could still
            // fill it; after that proof, a rolled-back append should hold readers back for a second, not three.
            options.Projections.StaleSequenceThreshold = TimeSpan.FromSeconds(1);
            // The ledger's projections, inbox and outbox are documents written in the same session as the events.
            options.Schema.For<AccountDocument>().UseNumericRevisions(true);
            options.Schema.For<SellerStatementDocument>().UseNumericRevisions(true).Duplicate(x => x.Seller);
            options.Schema.For<TransferDocument>();
            options.Schema.For<InboxDocument>();
            options.Schema.For<OutboxDocument>().Duplicate(x => x.Sequence);
            // The group commit's set-based document writes (see LedgerDocumentWrites), managed with the schema.
            options.Storage.ExtendedSchemaObjects.Add(Weasel.Postgresql.Functions.Function.ForSql(LedgerDocumentWrites.RequireRevisionsFunction(schema)));
        });
        Writes = new LedgerDocumentWrites(_store, schema);
    }

    /// <summary>
    /// From how many rows (new streams, accounts, transfer documents, statement rows) a save writes them
    /// set-based (<see cref="LedgerDocumentWrites"/>); below it, Marten's single-row statements. A transfer, or a
    /// post or void, is about five rows, so a save of one stays on Marten's statements (measured about 0.9 ms
    /// faster) and a group of two or more goes set-based (16 writers x 1 in flight, about five transfers per
    /// group: save + commit 2.7 ms against 3.05 ms, medians of six alternating runs, faster in five of the six
    /// pairs). Tests set it to 1 or to <see cref="int.MaxValue"/> to run either path on any unit.
    /// </summary>
    internal int SetBasedFrom { get; set; } = 6;

    /// <summary>Accounts and statement rows as this process last saw them (a group commit's first, optimistic read).</summary>
    public LedgerRowCache Rows { get; } = new();

    /// <summary>One statement per document table per save, instead of one per document.</summary>
    public LedgerDocumentWrites Writes { get; }

    /// <summary>Queues this process's writers on the rows they are about to write (see <see cref="KeyGate"/>).</summary>
    public KeyGate Gate { get; } = new();

    public DocumentStore Store => _store;

    public IDocumentSession OpenSession() => _store.LightweightSession();

    /// <summary>Marten's table for a document type (its default name: mt_doc_ and the type name in lower case), for the rebuild's lock.</summary>
    public string TableFor<T>() => $"{_store.Options.DatabaseSchemaName}.mt_doc_{typeof(T).Name.ToLowerInvariant()}";

    public string EventsTable => $"{_store.Options.Events.DatabaseSchemaName}.mt_events";

    public string StreamsTable => $"{_store.Options.Events.DatabaseSchemaName}.mt_streams";

    public Task InitializeAsync(CancellationToken cancellationToken) =>
        _store.Storage.Database.ApplyAllConfiguredChangesToDatabaseAsync(ct: cancellationToken);

    /// <summary>Queues an append on a session; it is written with everything else at the session's save.</summary>
    public StreamAction QueueAppend(IDocumentSession session, StreamAppend append)
    {
        var events = append.Events.Select(e => (object)StoredEvent.From(append.StreamType, e)).ToArray();
        return append.Expected switch
        {
            { IsNoStream: true } => session.Events.StartStream(append.StreamId, events),
            { IsAny: true } => session.Events.Append(append.StreamId, events),
            // Marten's expected version is the stream's version after the append.
            var exactly => session.Events.Append(append.StreamId, exactly.Value + events.Length, events),
        };
    }

    /// <summary>One save: events, documents and the commit in Marten's transaction.</summary>
    public Task SaveAsync(IDocumentSession session, CancellationToken cancellationToken) => session.SaveChangesAsync(cancellationToken);

    /// <summary>
    /// One append in a session of its own, with its outcome: Quick appends compute versions and sequence
    /// numbers in the database and do not hand them back, so they are read back by event id once committed
    /// (the ledger's group commit does not need them and skips this round trip).
    /// </summary>
    public async Task<AppendResult> AppendOneAsync(StreamAppend append, CancellationToken cancellationToken)
    {
        Guid[] ids;
        await using (var session = OpenSession())
        {
            ids = QueueAppend(session, append).Events.Select(e => e.Id).ToArray();
            try
            {
                await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception exception) when (IsStreamConflict(exception))
            {
                await using var query = _store.QuerySession();
                var state = await query.Events.FetchStreamStateAsync(append.StreamId, cancellationToken).ConfigureAwait(false);
                throw new EventStreamConcurrencyException(append.StreamId, append.Expected, state?.Version, exception);
            }
        }

        await using var reader = _store.QuerySession();
        // By stream first: mt_events has no index on id, so the id alone scanned the whole log on every append (a
        // settlement run's per-seller appends grew quadratic); (stream_id, version) is its primary key.
        var mine = await reader.Events.QueryAllRawEvents()
            .Where(e => e.StreamKey == append.StreamId && e.Id.IsOneOf(ids))
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        return new AppendResult(mine.Max(e => e.Version), mine.Min(e => e.Sequence), mine.Max(e => e.Sequence));
    }

    /// <summary>A stale expected version, a stream created twice, or a lost race for a new stream.</summary>
    internal static bool IsStreamConflict(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is AggregateException aggregate && aggregate.InnerExceptions.Any(IsStreamConflict))
            {
                return true;
            }

            if (e is ConcurrencyException or DocumentAlreadyExistsException or JasperFx.Events.ExistingStreamIdCollisionException or Marten.Exceptions.ExistingStreamIdCollisionException or EventStreamUnexpectedMaxEventIdException)
            {
                return true;
            }

            if (e is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation } unique
                && (unique.TableName is "mt_streams" or "mt_events" || unique.ConstraintName?.StartsWith("pk_mt_", StringComparison.Ordinal) == true))
            {
                return true;
            }
        }

        return false;
    }

    public async Task<StreamInfo?> GetStreamAsync(string streamId, CancellationToken cancellationToken)
    {
        await using var session = _store.QuerySession();
        var state = await session.Events.FetchStreamStateAsync(streamId, cancellationToken).ConfigureAwait(false);
        if (state is null)
        {
            return null;
        }

        var first = await session.Events.FetchStreamAsync(streamId, version: 1, token: cancellationToken).ConfigureAwait(false);
        var type = first.Count > 0 && first[0].Data is StoredEvent stored ? stored.StreamType : "";
        return new StreamInfo(streamId, type, state.Version);
    }

    public async Task<IReadOnlyList<RecordedEvent>> ReadStreamAsync(string streamId, long fromVersion, CancellationToken cancellationToken)
    {
        await using var session = _store.QuerySession();
        var events = await session.Events.FetchStreamAsync(streamId, fromVersion: Math.Max(1, fromVersion), token: cancellationToken).ConfigureAwait(false);
        return Recorded(events);
    }

    /// <summary>How long a reader waits for in-flight appends below the newest committed event before settling for the mark it has.</summary>
    public TimeSpan HighWaterMarkPatience { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Marten's high-water mark, kept by the async daemon's high-water agent: the highest sequence below
    /// which no event can still appear. The agent holds at a gap in the sequence until the append that
    /// reserved it commits, or until it has gone stale and Marten finds no live transaction that could
    /// still fill it (a rolled-back append), so a reader lags, it does not skip. A reader waits (up to
    /// <see cref="HighWaterMarkPatience"/>) for the mark to reach the newest committed event.
    /// </summary>
    public async Task<long> GetHighWaterMarkAsync(CancellationToken cancellationToken)
    {
        var daemon = await DaemonAsync().ConfigureAwait(false);
        // The newest committed event: what the mark reaches once nothing below it is in flight.
        long ceiling;
        await using (var command = _dataSource.CreateCommand($"SELECT coalesce(max(seq_id), 0) FROM {EventsTable}"))
        {
            ceiling = (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        // The agent publishes each advance on its tracker; poll it rather than subscribe (a reader's wait is short).
        var deadline = DateTime.UtcNow + HighWaterMarkPatience;
        var delay = TimeSpan.FromMilliseconds(2);
        while (daemon.Tracker.HighWaterMark < ceiling && DateTime.UtcNow < deadline)
        {
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromMilliseconds(Math.Min(50, delay.TotalMilliseconds * 2));
        }

        return daemon.Tracker.HighWaterMark;
    }

    private async Task<IProjectionDaemon> DaemonAsync()
    {
        if (_daemon is { } existing)
        {
            return existing;
        }

        await _daemonLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_daemon is null)
            {
                var daemon = await _store.BuildProjectionDaemonAsync().ConfigureAwait(false);
                await daemon.StartAllAsync().ConfigureAwait(false);
                _daemon = daemon;
            }

            return _daemon;
        }
        finally
        {
            _daemonLock.Release();
        }
    }

    public async Task<IReadOnlyList<RecordedEvent>> ReadAllAsync(long afterSequence, int maxCount, CancellationToken cancellationToken)
    {
        var mark = await GetHighWaterMarkAsync(cancellationToken).ConfigureAwait(false);
        if (mark <= afterSequence)
        {
            return [];
        }

        await using var session = _store.QuerySession();
        var events = await session.Events.QueryAllRawEvents()
            .Where(e => e.Sequence > afterSequence && e.Sequence <= mark)
            .OrderBy(e => e.Sequence)
            .Take(maxCount)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        return Recorded(events);
    }

    /// <summary>The whole log in global order, read inside <paramref name="transaction"/> (one snapshot for verification and rebuilds).</summary>
    public async Task<IReadOnlyList<RecordedEvent>> ReadLogAsync(NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await using var session = _store.QuerySession(SessionOptions.ForTransaction(transaction));
        var events = await session.Events.QueryAllRawEvents().OrderBy(e => e.Sequence).ToListAsync(cancellationToken).ConfigureAwait(false);
        return Recorded(events);
    }

    /// <summary>Only the port's envelopes: Marten's own bookkeeping events (tombstones of failed saves) are not the log's.</summary>
    private static List<RecordedEvent> Recorded(IEnumerable<IEvent> events) =>
        events.Where(e => e.Data is StoredEvent).Select(e => ((StoredEvent)e.Data).ToRecorded(e)).ToList();

    public async ValueTask DisposeAsync()
    {
        if (_daemon is { } daemon)
        {
            await daemon.StopAllAsync().ConfigureAwait(false);
            daemon.Dispose();
        }

        _daemonLock.Dispose();
        _store.Dispose();
    }
}
