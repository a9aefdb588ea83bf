using DataMarket.Ledger.Storage;
using Marten;

namespace DataMarket.Ledger.Events.MartenStore;

/// <summary>
/// The group commit's document writes as one statement per table, queued into the Marten session so they
/// run in its batch and its transaction. Marten's own <c>UpdateRevision</c>/<c>Insert</c> send one
/// statement per document: with about five per transfer (two accounts, a statement row, the transfer
/// document, the stream), a group of thirty spent most of its save building and running single-row
/// statements. The rows are Marten's (same tables, columns, JSON serializer and numeric revisions), so
/// <c>LoadAsync</c>, queries and the rebuild read them as ever.
/// Revisions: an update names the revision it read and succeeds only where the row still has it; if any
/// row of the set moved (another process wrote it, or a rebuild did), the function raises
/// <see cref="StaleRevisionState"/> and the whole save rolls back, events included, as Marten's
/// <c>ConcurrencyException</c> would. A new row is inserted, so a row created meanwhile is a unique violation.
/// </summary>
internal sealed class LedgerDocumentWrites(DocumentStore store, string schema)
{
    /// <summary>The SQLSTATE our function raises for a stale revision (a class of our own: Npgsql does not call it transient, so Marten does not resend the batch).</summary>
    public const string StaleRevisionState = "DM409";

    /// <summary>A document that is new where the revision read is this (Marten's revisions start at 1).</summary>
    public const long New = 0;

    private readonly string _insertTransfers = $"insert into {schema}.mt_doc_transferdocument (id, data, mt_dotnet_type, mt_last_modified) select i.id, i.doc, ?, transaction_timestamp() from unnest(?::uuid[], ?::jsonb[]) as i(id, doc)";

    private readonly string _updateTransfers = $"update {schema}.mt_doc_transferdocument as d set data = i.doc, mt_dotnet_type = ?, mt_last_modified = transaction_timestamp() from unnest(?::uuid[], ?::jsonb[]) as i(id, doc) where d.id = i.id";

    // Existing streams move from the version expected to that plus their new events, only where they still have it.
    private readonly string _advanceStreams = $"with i as (select * from unnest(?::varchar[], ?::bigint[], ?::bigint[]) as i(id, expected, count)), "
        + $"moved as (update {schema}.mt_streams as s set version = i.expected + i.count, timestamp = now() from i where s.id = i.id and s.version = i.expected and not s.is_archived returning s.id) "
        + $"select {schema}.dm_require_revisions((select count(*) from i), (select count(*) from moved), '{schema}.mt_streams')";

    private readonly string _insertStreams = $"insert into {schema}.mt_streams (id, type, version, timestamp, tenant_id) select i.id, null, i.version, now(), '{JasperFx.StorageConstants.DefaultTenantId}' from unnest(?::varchar[], ?::bigint[]) as i(id, version)";

    // ORDER BY the position: volatile nextval in the target list is evaluated after the sort, so sequence
    // numbers follow the order the ledger decided in (a replay in global order reaches the same decisions).
    private readonly string _insertEvents = $"insert into {schema}.mt_events (seq_id, id, stream_id, version, data, type, tenant_id, timestamp, mt_dotnet_type, is_archived) select nextval('{schema}.mt_events_sequence'), i.id, i.stream_id, i.version, i.body, ?, '{JasperFx.StorageConstants.DefaultTenantId}', (now() at time zone 'utc'), ?, false from unnest(?::varchar[], ?::bigint[], ?::uuid[], ?::jsonb[]) with ordinality as i(stream_id, version, id, body, position) order by i.position";

    /// <summary>
    /// Raises <see cref="StaleRevisionState"/> when fewer rows moved than were named (one call at the end of
    /// each revisioned write; the write itself is plain SQL, so the server keeps its plan).
    /// </summary>
    public static string RequireRevisionsFunction(string schema) => $"""
        CREATE OR REPLACE FUNCTION {schema}.dm_require_revisions(expected bigint, moved bigint, doc_table text) RETURNS void LANGUAGE plpgsql AS $function$
        BEGIN
            IF moved <> expected THEN
                RAISE EXCEPTION 'Stale revision: % of % documents in % were changed by another writer since they were read', expected - moved, expected, doc_table USING ERRCODE = '{StaleRevisionState}';
            END IF;
        END;
        $function$;
        """;

    /// <summary>
    /// One statement for a set of revisioned documents: rows still at the revision read move to the next,
    /// new rows are inserted at revision 1, and the count of rows moved is checked against the count named.
    /// Data-modifying CTEs run to completion whether read or not, all in the statement's one snapshot.
    /// </summary>
    private string PutRevisionedSql(string table, string? duplicateColumn)
    {
        var setDuplicate = duplicateColumn is null ? "" : $", {duplicateColumn} = i.duplicate";
        var insertDuplicate = duplicateColumn is null ? "" : $", {duplicateColumn}";
        var selectDuplicate = duplicateColumn is null ? "" : ", i.duplicate";
        var input = duplicateColumn is null
            ? "unnest(?::varchar[], ?::jsonb[], ?::bigint[]) as i(id, doc, revision)"
            : "unnest(?::varchar[], ?::jsonb[], ?::bigint[], ?::varchar[]) as i(id, doc, revision, duplicate)";
        return $"with i as (select * from {input}), "
            + $"moved as (update {table} as d set data = i.doc, mt_version = i.revision + 1, mt_dotnet_type = ?, mt_last_modified = transaction_timestamp(){setDuplicate} from i where i.revision > 0 and d.id = i.id and d.mt_version = i.revision returning d.id), "
            + $"created as (insert into {table} (id, data, mt_version, mt_dotnet_type, mt_last_modified{insertDuplicate}) select i.id, i.doc, 1, ?, transaction_timestamp(){selectDuplicate} from i where i.revision = 0 returning id) "
            + $"select {schema}.dm_require_revisions((select count(*) from i where i.revision > 0), (select count(*) from moved), '{table}')";
    }

    /// <summary>
    /// Queues one statement for a set of revisioned documents: each with the revision read, or <see cref="New"/>;
    /// <paramref name="duplicate"/> names a field Marten keeps in a column of its own (<c>Duplicate</c>) and gives its value.
    /// </summary>
    public void QueuePut<T>(IDocumentSession session, IReadOnlyList<(string Id, T Document, long Revision)> documents, (string Column, Func<T, string> Value)? duplicate = null)
        where T : notnull
    {
        if (documents.Count == 0)
        {
            return;
        }

        var serializer = store.Options.Serializer();
        var parameters = new List<object>
        {
            documents.Select(d => d.Id).ToArray(),
            documents.Select(d => serializer.ToJson(d.Document)).ToArray(),
            documents.Select(d => d.Revision).ToArray(),
        };
        if (duplicate is { } column)
        {
            parameters.Add(documents.Select(d => column.Value(d.Document)).ToArray());
        }

        parameters.Add(DotNetType<T>());
        parameters.Add(DotNetType<T>());
        session.QueueSqlCommand(PutRevisionedSql($"{schema}.mt_doc_{typeof(T).Name.ToLowerInvariant()}", duplicate?.Column), parameters.ToArray());
    }

    /// <summary>Queues one insert for new transfer documents (an id used before is a unique violation: the save rolls back).</summary>
    public void QueueInsertTransfers(IDocumentSession session, IReadOnlyList<TransferDocument> transfers) => QueueTransfers(session, _insertTransfers, transfers);

    /// <summary>Queues one update for transfer documents that exist (a post or void; its stream's expected version guards it).</summary>
    public void QueueUpdateTransfers(IDocumentSession session, IReadOnlyList<TransferDocument> transfers) => QueueTransfers(session, _updateTransfers, transfers);

    private void QueueTransfers(IDocumentSession session, string sql, IReadOnlyList<TransferDocument> transfers)
    {
        if (transfers.Count == 0)
        {
            return;
        }

        var serializer = store.Options.Serializer();
        session.QueueSqlCommand(
            sql,
            DotNetType<TransferDocument>(),
            transfers.Select(t => t.Id).ToArray(),
            transfers.Select(t => serializer.ToJson(t)).ToArray());
    }

    /// <summary>
    /// Queues appends at an expected version (none: a new stream; or exactly n) as at most three statements for
    /// all of them: the new stream rows, the existing streams moved from n to n plus their events (where they
    /// are still at n; otherwise <see cref="StaleRevisionState"/> rolls the save back, as Marten's stale
    /// version would), then every event in the order given, each taking the next number of Marten's event
    /// sequence, as Marten's quick append does per stream (same columns and values, so Marten reads them as
    /// its own). A new stream that exists already is a unique violation on mt_streams: the save rolls back,
    /// like a <c>StartStream</c> that lost the race.
    /// </summary>
    public void QueueAppends(IDocumentSession session, IReadOnlyList<StreamAppend> appends)
    {
        if (appends.Count == 0)
        {
            return;
        }

        var serializer = store.Options.Serializer();
        var mapping = ((Marten.Events.EventGraph)store.Options.Events).EventMappingFor(typeof(StoredEvent));
        var newStreams = new List<string>();
        var newVersions = new List<long>();
        var movedStreams = new List<string>();
        var movedFrom = new List<long>();
        var movedBy = new List<long>();
        var eventStreams = new List<string>();
        var eventVersions = new List<long>();
        var eventIds = new List<Guid>();
        var bodies = new List<string>();
        foreach (var append in appends)
        {
            long from;
            if (append.Expected.IsNoStream)
            {
                from = 0;
                newStreams.Add(append.StreamId);
                newVersions.Add(append.Events.Count);
            }
            else
            {
                from = append.Expected.Value;
                movedStreams.Add(append.StreamId);
                movedFrom.Add(from);
                movedBy.Add(append.Events.Count);
            }

            for (var e = 0; e < append.Events.Count; e++)
            {
                var newEvent = append.Events[e];
                eventStreams.Add(append.StreamId);
                eventVersions.Add(from + e + 1);
                eventIds.Add(newEvent.EventId);
                bodies.Add(serializer.ToJson(StoredEvent.From(append.StreamType, newEvent)));
            }
        }

        if (newStreams.Count > 0)
        {
            session.QueueSqlCommand(_insertStreams, newStreams.ToArray(), newVersions.ToArray());
        }

        if (movedStreams.Count > 0)
        {
            session.QueueSqlCommand(_advanceStreams, movedStreams.ToArray(), movedFrom.ToArray(), movedBy.ToArray());
        }

        session.QueueSqlCommand(
            _insertEvents,
            mapping.EventTypeName,
            mapping.DotNetTypeName,
            eventStreams.ToArray(),
            eventVersions.ToArray(),
            eventIds.ToArray(),
            bodies.ToArray());
    }

    /// <summary>What Marten writes in mt_dotnet_type: the type's full name and assembly.</summary>
    private static string DotNetType<T>() => $"{typeof(T).FullName}, {typeof(T).Assembly.GetName().Name}";
}
