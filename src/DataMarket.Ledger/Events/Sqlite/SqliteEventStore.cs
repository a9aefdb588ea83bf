using System.Data.Common;

namespace DataMarket.Ledger.Events.Sqlite;

/// <summary>The event store port on SQLite (embedded mode): reads by SQL over the backend's events and streams tables.</summary>
internal sealed class SqliteEventStore(SqliteBackend backend) : BackendEventStore(backend)
{
    internal const string EventColumns = "seq, id, stream_id, version, type, data, correlation_id, causation_id, actor, created_at";

    public override async Task<StreamInfo?> GetStreamAsync(string streamId, CancellationToken cancellationToken = default)
    {
        await using var connection = await backend.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Storage.StorageBackend.CreateCommand(
            connection,
            $"SELECT id, type, version FROM {backend.Table("streams")} WHERE id = @id",
            ("id", streamId));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        return new StreamInfo(reader.GetString(0), reader.GetString(1), reader.GetInt64(2));
    }

    public override async Task<IReadOnlyList<RecordedEvent>> ReadStreamAsync(string streamId, long fromVersion = 1, CancellationToken cancellationToken = default)
    {
        await using var connection = await backend.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Storage.StorageBackend.CreateCommand(
            connection,
            $"SELECT {EventColumns} FROM {backend.Table("events")} WHERE stream_id = @id AND version >= @from ORDER BY version",
            ("id", streamId),
            ("from", fromVersion));
        return await ReadEventsAsync(backend, command, cancellationToken).ConfigureAwait(false);
    }

    protected override async Task<IReadOnlyList<RecordedEvent>> ReadAllCoreAsync(long afterSequence, int maxCount, CancellationToken cancellationToken)
    {
        var highWaterMark = await backend.GetHighWaterMarkAsync(cancellationToken).ConfigureAwait(false);
        if (highWaterMark <= afterSequence)
        {
            return [];
        }

        await using var connection = await backend.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Storage.StorageBackend.CreateCommand(
            connection,
            $"SELECT {EventColumns} FROM {backend.Table("events")} WHERE seq > @after AND seq <= @mark ORDER BY seq LIMIT @limit",
            ("after", afterSequence),
            ("mark", highWaterMark),
            ("limit", maxCount));
        return await ReadEventsAsync(backend, command, cancellationToken).ConfigureAwait(false);
    }

    internal static async Task<IReadOnlyList<RecordedEvent>> ReadEventsAsync(SqliteBackend backend, DbCommand command, CancellationToken cancellationToken)
    {
        var events = new List<RecordedEvent>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            events.Add(new RecordedEvent(
                Sequence: reader.GetInt64(0),
                EventId: SqliteBackend.ReadEventId(reader, 1),
                StreamId: reader.GetString(2),
                Version: reader.GetInt64(3),
                Type: reader.GetString(4),
                Data: reader.GetString(5),
                Metadata: new EventMetadata
                {
                    CorrelationId = reader.IsDBNull(6) ? null : reader.GetString(6),
                    CausationId = reader.IsDBNull(7) ? null : reader.GetString(7),
                    Actor = reader.IsDBNull(8) ? null : reader.GetString(8),
                    Timestamp = SqliteBackend.ReadEventTimestamp(reader, 9),
                }));
        }

        return events;
    }
}
