using System.Text.Json;
using DataMarket.Ledger;
using DataMarket.Ledger.Events;
using DataMarket.SettlementService.Application;

namespace DataMarket.SettlementService.Infrastructure;

/// <summary>
/// The settlement service's event streams, kept through the ledger project's event-store port in a database of their
/// own (a schema on PostgreSQL, a file in embedded mode). Only <see cref="IEventStore"/>'s members are used, so the
/// store behind the port can change without this class noticing.
/// </summary>
public sealed class SettlementStore(SettlementOptions options) : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        // A standard error is NaN when a task has one test point; JSON has no NaN.
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private static readonly Dictionary<string, Type> EventTypes = new[]
    {
        typeof(TermsPublished), typeof(QuoteIssued), typeof(PurchaseKeyClaimed), typeof(PurchaseCompleted), typeof(PurchaseRefunded),
        typeof(HoldsReleased), typeof(DestinationRegistered), typeof(RunStarted), typeof(PayoutsPlanned), typeof(PayoutSent),
        typeof(PayoutFailed), typeof(StatementWritten), typeof(RunCompleted), typeof(SandboxOperationRecorded),
        typeof(ChargeRequested), typeof(PurchasePending), typeof(PurchaseFailed), typeof(PurchaseDisputed), typeof(DisputeOpened),
        typeof(StripeEventReceived), typeof(DestinationReady), typeof(RefundRequested), typeof(PayoutsResolved),
        typeof(ReversalsResolved),
    }.ToDictionary(t => t.Name, StringComparer.Ordinal);

    private readonly SemaphoreSlim _opening = new(1, 1);
    private LedgerDatabase? _database;

    public async Task<IEventStore> EventsAsync(CancellationToken cancellationToken)
    {
        if (_database is { } open)
        {
            return open.Events;
        }

        await _opening.WaitAsync(cancellationToken);
        try
        {
            _database ??= options.Store switch
            {
                SettlementStoreKind.Sqlite => await LedgerDatabase.OpenSqliteAsync(options.ConnectionString ?? "Data Source=datamarket-settlement.db", options.Schema, cancellationToken: cancellationToken),
                _ => await LedgerDatabase.OpenPostgresAsync(options.ConnectionString ?? DataMarket.ServiceDefaults.LocalDefaults.PostgresConnectionString, options.Schema, cancellationToken: cancellationToken),
            };
            return _database.Events;
        }
        finally
        {
            _opening.Release();
        }
    }

    /// <summary>A stream's events, deserialized, with the stream's version (0 when it does not exist).</summary>
    public async Task<(IReadOnlyList<object> Events, long Version)> ReadAsync(string streamId, CancellationToken cancellationToken)
    {
        var events = await EventsAsync(cancellationToken);
        var recorded = await events.ReadStreamAsync(streamId, cancellationToken: cancellationToken);
        return (recorded.Select(Deserialize).ToList(), recorded.Count == 0 ? 0 : recorded[^1].Version);
    }

    /// <summary>Appends at the expected version; false when another writer got there first (re-read and decide again).</summary>
    public async Task<bool> TryAppendAsync(string streamId, string streamType, long expectedVersion, string actor, CancellationToken cancellationToken, params object[] events)
    {
        var store = await EventsAsync(cancellationToken);
        var metadata = new EventMetadata { Actor = actor, Timestamp = DateTimeOffset.UtcNow };
        var batch = events.Select(e => ToNewEvent(e, metadata)).ToList();
        try
        {
            await store.AppendAsync(streamId, streamType, expectedVersion == 0 ? ExpectedVersion.NoStream : ExpectedVersion.Exactly(expectedVersion), batch, cancellationToken);
            return true;
        }
        catch (EventStreamConcurrencyException)
        {
            return false;
        }
    }

    /// <summary>
    /// Creates each stream with its one event, all in one transaction; false (nothing written) when any of them
    /// exists already or another writer won a race for one.
    /// </summary>
    public async Task<bool> TryAppendManyAsync(IReadOnlyList<(string StreamId, string StreamType, object Event)> streams, string actor, CancellationToken cancellationToken)
    {
        var store = await EventsAsync(cancellationToken);
        var metadata = new EventMetadata { Actor = actor, Timestamp = DateTimeOffset.UtcNow };
        var appends = streams.Select(s => new StreamAppendRequest(s.StreamId, s.StreamType, ExpectedVersion.NoStream,
            [ToNewEvent(s.Event, metadata)])).ToList();
        try
        {
            await store.AppendManyAsync(appends, cancellationToken);
            return true;
        }
        catch (EventStreamConcurrencyException)
        {
            return false;
        }
    }

    /// <summary>Events per page of a scan: a 100,000-seller store holds a few hundred thousand events, and each page is a round trip.</summary>
    private const int ScanPage = 5_000;

    /// <summary>Every event of the given types in the whole store, in commit order (reports and scans that are not hot paths).</summary>
    public async IAsyncEnumerable<object> ScanAsync(IReadOnlySet<string> types, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var store = await EventsAsync(cancellationToken);
        var after = 0L;
        while (true)
        {
            var page = await store.ReadAllAsync(after, ScanPage, cancellationToken);
            if (page.Count == 0)
            {
                yield break;
            }

            foreach (var recorded in page)
            {
                if (types.Contains(recorded.Type))
                {
                    yield return Deserialize(recorded);
                }
            }

            after = page[^1].Sequence;
        }
    }

    private static NewEvent ToNewEvent(object @event, EventMetadata metadata) =>
        new(Guid.NewGuid(), @event.GetType().Name, JsonSerializer.Serialize(@event, @event.GetType(), Json), metadata);

    private static object Deserialize(RecordedEvent recorded) =>
        EventTypes.TryGetValue(recorded.Type, out var type)
            ? JsonSerializer.Deserialize(recorded.Data, type, Json) ?? throw new InvalidDataException($"event {recorded.EventId} holds null")
            : throw new InvalidDataException($"stream {recorded.StreamId} holds an event of unknown type '{recorded.Type}'");

    public async ValueTask DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }

        _opening.Dispose();
    }
}
