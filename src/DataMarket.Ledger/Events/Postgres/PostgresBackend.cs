using System.Data.Common;
using System.Globalization;
using DataMarket.Ledger.Events.MartenStore;
using DataMarket.Ledger.Storage;
using Npgsql;

namespace DataMarket.Ledger.Events.Postgres;

internal sealed class PostgresBackend : StorageBackend
{
    private const string ConcurrencySqlState = "DM001";

    private readonly NpgsqlDataSource _dataSource;
    private readonly string _schema;
    private long _lastSafeHighWaterMark;
    private readonly MartenEventLog? _marten;

    /// <param name="ownEventStore">Our own event tables and append function instead of Marten's (kept only to measure both in one run).</param>
    public PostgresBackend(string connectionString, string schema, bool ownEventStore = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        _schema = SchemaName.Validate(schema);
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        if (builder.ConnectionStringBuilder.MaxAutoPrepare == 0)
        {
            // The same dozen statements run for every transfer: let the server keep their plans.
            builder.ConnectionStringBuilder.MaxAutoPrepare = 32;
        }

        // Our sessions carry no state worth resetting between pooled uses (so the setting below stays put).
        builder.ConnectionStringBuilder.NoResetOnClose = true;
        if (!SetsRandomPageCost(builder.ConnectionStringBuilder.Options))
        {
            builder.UsePhysicalConnectionInitializer(
                connection =>
                {
                    using var command = IndexFriendlyCosts(connection);
                    command.ExecuteNonQuery();
                },
                async connection =>
                {
                    await using var command = IndexFriendlyCosts(connection);
                    await command.ExecuteNonQueryAsync().ConfigureAwait(false);
                });
        }

        _dataSource = builder.Build();
        _marten = ownEventStore ? null : new MartenEventLog(_dataSource, _schema);
    }

    public override IEventStore CreateEventStore() => _marten is null ? base.CreateEventStore() : new MartenEventStore(this, _marten);

    public override string EventsTable => _marten?.EventsTable ?? base.EventsTable;

    public override string StreamsTable => _marten?.StreamsTable ?? base.StreamsTable;

    public override string SequenceColumn => _marten is null ? base.SequenceColumn : "seq_id";

    /// <summary>Marten records the sequence numbers of failed saves as tombstone events in a stream of its own.</summary>
    public override string LogStream(string column) => _marten is null ? base.LogStream(column) : $"{column} <> '{JasperFx.Events.Tombstone.StreamKey}'";

    public override async Task<IReadOnlyList<RecordedEvent>> ReadLogAsync(DbTransaction transaction, CancellationToken cancellationToken) =>
        _marten is null
            ? await base.ReadLogAsync(transaction, cancellationToken).ConfigureAwait(false)
            : await _marten.ReadLogAsync((NpgsqlTransaction)transaction, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// The ledger's hot rows (accounts, recent transfers) live in memory, where an index probe costs
    /// about what a sequential page does. With the server's default random_page_cost of 4 the planner
    /// judges a table of a few thousand accounts cheaper to scan whole than to probe sixteen times, so
    /// every transfer read and rewrote the whole accounts table: 16 writers reached 2,000 transfers/s
    /// and slowed down as the table filled with dead row versions. Set once per physical connection (a
    /// plain SET, which poolers in session mode pass through, unlike startup options), so nothing else
    /// on the server changes; a value the operator put in the connection string's Options wins.
    /// </summary>
    private static NpgsqlCommand IndexFriendlyCosts(NpgsqlConnection connection) => new("SET random_page_cost = 1.1", connection);

    internal static bool SetsRandomPageCost(string? options) =>
        options is not null && System.Text.RegularExpressions.Regex.IsMatch(options, @"(^|\s)(-c\s*|--)random_page_cost\s*=", System.Text.RegularExpressions.RegexOptions.IgnoreCase);

    public string Schema => _schema;

    /// <summary>How long a reader waits for in-flight appends before settling for the last proven mark.</summary>
    public TimeSpan HighWaterMarkPatience
    {
        get => _highWaterMarkPatience;
        set
        {
            _highWaterMarkPatience = value;
            if (_marten is not null)
            {
                _marten.HighWaterMarkPatience = value;
            }
        }
    }

    private TimeSpan _highWaterMarkPatience = TimeSpan.FromSeconds(10);

    public override string ProviderName => "postgresql";

    public override string Table(string name) => $"{_schema}.{name}";

    public override string ForUpdate => " FOR UPDATE";

    public override bool SupportsArrayParameters => true;

    public override string SkipLocked => " FOR UPDATE SKIP LOCKED";

    public override string Json(string parameter) => $"CAST({parameter} AS jsonb)";

    public override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken) =>
        await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

    public override async Task<DbTransaction> BeginAsync(DbConnection connection, CancellationToken cancellationToken) =>
        await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false);

    public override async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        // Concurrent starts of the same application would race on CREATE OR REPLACE; serialize them.
        await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtext(@schema))", connection, transaction))
        {
            lockCommand.Parameters.AddWithValue("schema", "datamarket.ledger.ddl." + _schema);
            await lockCommand.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using (var ddl = new NpgsqlCommand(PostgresSchema.Ddl(_schema, ownEventStore: _marten is null), connection, transaction))
        {
            await ddl.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        if (_marten is not null)
        {
            await _marten.InitializeAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public override async Task<AppendResult> AppendAsync(
        DbTransaction transaction,
        string streamId,
        string streamType,
        ExpectedVersion expected,
        IReadOnlyList<NewEvent> events,
        CancellationToken cancellationToken)
    {
        if (_marten is not null)
        {
            return await _marten.AppendOneAsync((NpgsqlTransaction)transaction, new StreamAppend(streamId, streamType, expected, events), cancellationToken).ConfigureAwait(false);
        }

        await using var command = CreateAppendCommand(transaction, streamId, streamType, expected, events);
        try
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            return new AppendResult(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
        }
        catch (PostgresException exception) when (TryTranslate(exception, streamId, expected, out var translated))
        {
            throw translated;
        }
    }

    /// <summary>The append as one command, so the ledger can send it in the same round trip as its projections.</summary>
    public NpgsqlBatchCommand CreateAppendBatchCommand(string streamId, string streamType, ExpectedVersion expected, IReadOnlyList<NewEvent> events)
    {
        var command = new NpgsqlBatchCommand(AppendSql);
        AddAppendParameters(command.Parameters, streamId, streamType, expected, events);
        return command;
    }

    private string AppendSql => $"SELECT stream_version, first_seq, last_seq FROM {_schema}.append_events(@stream, @type, @expected, @ids, @types, @data, @correlation, @causation, @actor, @created)";

    private NpgsqlCommand CreateAppendCommand(DbTransaction transaction, string streamId, string streamType, ExpectedVersion expected, IReadOnlyList<NewEvent> events)
    {
        var command = new NpgsqlCommand(AppendSql, (NpgsqlConnection)transaction.Connection!, (NpgsqlTransaction)transaction);
        AddAppendParameters(command.Parameters, streamId, streamType, expected, events);
        return command;
    }

    private static void AddAppendParameters(NpgsqlParameterCollection parameters, string streamId, string streamType, ExpectedVersion expected, IReadOnlyList<NewEvent> events)
    {
        var count = events.Count;
        var ids = new Guid[count];
        var types = new string[count];
        var data = new string[count];
        var correlation = new string?[count];
        var causation = new string?[count];
        var actor = new string?[count];
        var created = new DateTimeOffset[count];
        for (var i = 0; i < count; i++)
        {
            var metadata = events[i].Metadata.Normalized();
            ids[i] = events[i].EventId;
            types[i] = events[i].Type;
            data[i] = events[i].Data;
            correlation[i] = metadata.CorrelationId;
            causation[i] = metadata.CausationId;
            actor[i] = metadata.Actor;
            created[i] = metadata.Timestamp;
        }

        parameters.AddWithValue("stream", streamId);
        parameters.AddWithValue("type", streamType);
        parameters.AddWithValue("expected", expected.Value);
        parameters.AddWithValue("ids", ids);
        parameters.AddWithValue("types", types);
        parameters.AddWithValue("data", data);
        parameters.Add(new NpgsqlParameter("correlation", NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text) { Value = correlation });
        parameters.Add(new NpgsqlParameter("causation", NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text) { Value = causation });
        parameters.Add(new NpgsqlParameter("actor", NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text) { Value = actor });
        parameters.AddWithValue("created", created);
    }

    /// <summary>Maps a failed append (stale version, lost creation race, duplicate version) to the retryable concurrency error.</summary>
    public static bool TryTranslate(PostgresException exception, string streamId, ExpectedVersion expected, out Exception translated)
    {
        if (exception.SqlState == ConcurrencySqlState)
        {
            long? actual = long.TryParse(exception.MessageText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var version) ? version : null;
            translated = new EventStreamConcurrencyException(streamId, expected, actual, exception);
            return true;
        }

        if (exception.SqlState == PostgresErrorCodes.UniqueViolation
            && exception.ConstraintName is "streams_pkey" or "events_stream_version")
        {
            translated = new EventStreamConcurrencyException(streamId, expected, null, exception);
            return true;
        }

        translated = exception;
        return false;
    }

    /// <summary>
    /// Gap-safe high-water mark. Every append locks the streams table before it takes a sequence number
    /// and holds that lock until it ends. So an event numbered at or below the highest committed
    /// sequence M, but not yet committed when M was read, belongs to a transaction that already held
    /// the lock then and holds it still when pg_locks is read just after (or has committed since, and is
    /// visible). We note those transactions once and wait for them to end. The set is fixed, so a steady
    /// stream of new writers cannot keep a reader waiting. Matching against the reading snapshot's list
    /// of running transactions is not enough: a transaction whose id is above every finished one is left
    /// out of that list. If a noted transaction lingers past our patience, we return the last proven
    /// mark: readers lag, they never skip.
    /// </summary>
    public override async Task<long> GetHighWaterMarkAsync(CancellationToken cancellationToken)
    {
        if (_marten is not null)
        {
            return await _marten.GetHighWaterMarkAsync(cancellationToken).ConfigureAwait(false);
        }

        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        long candidate;
        long[] writers;
        // One statement: max(seq) is read under the statement's snapshot, taken before pg_locks is read.
        await using (var command = new NpgsqlCommand(
            $"""
            SELECT (SELECT coalesce(max(seq), 0) FROM {_schema}.events),
                   ARRAY(SELECT DISTINCT t.transactionid::text::bigint FROM pg_locks l
                         JOIN pg_locks t ON t.pid = l.pid AND t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock' AND t.granted
                         WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                           AND l.relation = '{_schema}.streams'::regclass AND l.pid <> pg_backend_pid())
            """,
            connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            candidate = reader.GetInt64(0);
            writers = reader.GetFieldValue<long[]>(1);
        }

        var deadline = DateTime.UtcNow + HighWaterMarkPatience;
        var delay = TimeSpan.FromMilliseconds(1);
        while (writers.Length > 0)
        {
            await using (var command = new NpgsqlCommand(
                """
                SELECT count(*) FROM pg_locks
                WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted AND transactionid::text::bigint = ANY(@writers)
                """,
                connection))
            {
                command.Parameters.AddWithValue("writers", writers);
                var inFlight = (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
                if (inFlight == 0)
                {
                    break;
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                return Volatile.Read(ref _lastSafeHighWaterMark);
            }

            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromMilliseconds(Math.Min(50, delay.TotalMilliseconds * 2));
        }

        long previous;
        do
        {
            previous = Volatile.Read(ref _lastSafeHighWaterMark);
            if (candidate <= previous)
            {
                return previous;
            }
        }
        while (Interlocked.CompareExchange(ref _lastSafeHighWaterMark, candidate, previous) != previous);

        return candidate;
    }

    public override bool IsTransient(Exception exception) => exception switch
    {
        EventStreamConcurrencyException => true,
        _ when MartenEventLog.IsStreamConflict(exception) => true,
        Marten.Exceptions.MartenCommandException { InnerException: { } inner } => IsTransient(inner),
        PostgresException { SqlState: PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.UniqueViolation or ConcurrencySqlState } => true,
        // A statement row two transactions both created at once (no row to lock yet) can overflow in the
        // upsert; the retry reads the row, and the ledger's own check refuses the culprit with Overflow.
        PostgresException { SqlState: PostgresErrorCodes.NumericValueOutOfRange } => true,
        NpgsqlException { IsTransient: true } => true,
        _ => false,
    };

    public override object EventIdValue(Guid id) => id;

    public override Guid ReadEventId(DbDataReader reader, int ordinal) => reader.GetGuid(ordinal);

    public override DateTimeOffset ReadEventTimestamp(DbDataReader reader, int ordinal) =>
        new(DateTime.SpecifyKind(reader.GetDateTime(ordinal), DateTimeKind.Utc));

    private static void AddStatements(NpgsqlBatch batch, IReadOnlyList<SqlStatement> statements)
    {
        foreach (var statement in statements)
        {
            var command = new NpgsqlBatchCommand(statement.Sql);
            foreach (var (name, value) in statement.Parameters)
            {
                command.Parameters.AddWithValue(name, value ?? DBNull.Value);
            }

            batch.BatchCommands.Add(command);
        }
    }

    public override async Task ExecuteAsync(DbTransaction transaction, IReadOnlyList<SqlStatement> statements, CancellationToken cancellationToken)
    {
        if (statements.Count == 0)
        {
            return;
        }

        await using var batch = new NpgsqlBatch((NpgsqlConnection)transaction.Connection!, (NpgsqlTransaction)transaction);
        AddStatements(batch, statements);

        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public override async Task<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken cancellationToken) =>
        await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);

    public override async Task QueryAsync(DbTransaction transaction, IReadOnlyList<SqlStatement> queries, Func<int, DbDataReader, CancellationToken, Task> read, CancellationToken cancellationToken)
    {
        await using var batch = new NpgsqlBatch((NpgsqlConnection)transaction.Connection!, (NpgsqlTransaction)transaction);
        AddStatements(batch, queries);

        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        for (var i = 0; i < queries.Count; i++)
        {
            await read(i, reader, cancellationToken).ConfigureAwait(false);
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// One round trip: every append, then every projection, outbox and inbox statement, then (with
    /// <paramref name="commit"/>) COMMIT itself. The server answers only once the commit is durable; if
    /// any statement fails, it skips the rest of the batch, COMMIT included, and the transaction is
    /// left open in a failed state for the caller to roll back.
    /// </summary>
    public override async Task WriteAsync(DbTransaction transaction, IReadOnlyList<StreamAppend> appends, IReadOnlyList<SqlStatement> statements, bool commit, CancellationToken cancellationToken)
    {
        if (_marten is not null)
        {
            // Marten's save (every append, one round trip), then the projection, outbox and inbox rows and
            // COMMIT in a second: one transaction, so all of it is durable or none of it.
            if (appends.Count > 0)
            {
                await _marten.AppendAsync((NpgsqlTransaction)transaction, appends, cancellationToken).ConfigureAwait(false);
            }

            await using var rows = new NpgsqlBatch((NpgsqlConnection)transaction.Connection!, (NpgsqlTransaction)transaction);
            AddStatements(rows, statements);
            if (commit)
            {
                rows.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
            }

            if (rows.BatchCommands.Count > 0)
            {
                await rows.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        await using var batch = new NpgsqlBatch((NpgsqlConnection)transaction.Connection!, (NpgsqlTransaction)transaction);
        if (appends.Count > 1 && appends.All(a => a.Expected.IsNoStream))
        {
            AddNewStreamsCommands(batch, appends);
        }
        else
        {
            foreach (var append in appends)
            {
                batch.BatchCommands.Add(CreateAppendBatchCommand(append.StreamId, append.StreamType, append.Expected, append.Events));
            }
        }

        AddStatements(batch, statements);

        if (commit)
        {
            // Npgsql follows the server's transaction status, so the NpgsqlTransaction counts as
            // completed afterwards and its disposal sends nothing.
            batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
        }

        try
        {
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException exception) when (appends.Count > 0 && TryTranslate(exception, appends[0].StreamId, appends[0].Expected, out var translated))
        {
            throw translated;
        }
    }

    /// <summary>
    /// Many new streams at once (a group of transfers): two set-based statements instead of one function
    /// call per stream. Inserting the streams first is the version check (a duplicate id fails on the
    /// primary key before any sequence number is taken), gives the transaction its id and locks the
    /// streams table, which is all the high-water mark relies on.
    /// </summary>
    private void AddNewStreamsCommands(NpgsqlBatch batch, IReadOnlyList<StreamAppend> appends)
    {
        var streamIds = new string[appends.Count];
        var streamTypes = new string[appends.Count];
        var streamVersions = new long[appends.Count];
        var events = appends.Sum(a => a.Events.Count);
        var ids = new Guid[events];
        var eventStreams = new string[events];
        var versions = new long[events];
        var types = new string[events];
        var data = new string[events];
        var correlation = new string?[events];
        var causation = new string?[events];
        var actor = new string?[events];
        var created = new DateTimeOffset[events];
        var e = 0;
        for (var i = 0; i < appends.Count; i++)
        {
            var append = appends[i];
            streamIds[i] = append.StreamId;
            streamTypes[i] = append.StreamType;
            streamVersions[i] = append.Events.Count;
            for (var v = 0; v < append.Events.Count; v++, e++)
            {
                var newEvent = append.Events[v];
                var metadata = newEvent.Metadata.Normalized();
                ids[e] = newEvent.EventId;
                eventStreams[e] = append.StreamId;
                versions[e] = v + 1;
                types[e] = newEvent.Type;
                data[e] = newEvent.Data;
                correlation[e] = metadata.CorrelationId;
                causation[e] = metadata.CausationId;
                actor[e] = metadata.Actor;
                created[e] = metadata.Timestamp;
            }
        }

        var streams = new NpgsqlBatchCommand($"INSERT INTO {_schema}.streams (id, type, version) SELECT * FROM unnest(@ids, @types, @versions)");
        streams.Parameters.AddWithValue("ids", streamIds);
        streams.Parameters.AddWithValue("types", streamTypes);
        streams.Parameters.AddWithValue("versions", streamVersions);
        batch.BatchCommands.Add(streams);

        var insert = new NpgsqlBatchCommand(
            $"""
            INSERT INTO {_schema}.events (seq, id, stream_id, version, type, data, correlation_id, causation_id, actor, created_at)
            SELECT nextval('{_schema}.event_sequence'), u.id, u.stream_id, u.version, u.type, u.data::jsonb, u.correlation, u.causation, u.actor, u.created
            FROM unnest(@ids, @streams, @versions, @types, @data, @correlation, @causation, @actor, @created) WITH ORDINALITY
                AS u(id, stream_id, version, type, data, correlation, causation, actor, created, n)
            ORDER BY u.n
            """);
        insert.Parameters.AddWithValue("ids", ids);
        insert.Parameters.AddWithValue("streams", eventStreams);
        insert.Parameters.AddWithValue("versions", versions);
        insert.Parameters.AddWithValue("types", types);
        insert.Parameters.AddWithValue("data", data);
        insert.Parameters.Add(new NpgsqlParameter("correlation", NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text) { Value = correlation });
        insert.Parameters.Add(new NpgsqlParameter("causation", NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text) { Value = causation });
        insert.Parameters.Add(new NpgsqlParameter("actor", NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text) { Value = actor });
        insert.Parameters.AddWithValue("created", created);
        batch.BatchCommands.Add(insert);
    }

    /// <summary>Drops this store's schema. For tests and benchmarks that made their own schema.</summary>
    public async Task DropSchemaAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {_schema} CASCADE", connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public override async ValueTask DisposeAsync()
    {
        if (_marten is not null)
        {
            await _marten.DisposeAsync().ConfigureAwait(false);
        }

        await _dataSource.DisposeAsync().ConfigureAwait(false);
    }
}
