using System.Data.Common;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Outbox;
using DataMarket.Ledger.Projections;
using DataMarket.Ledger.Storage;
using Microsoft.Data.Sqlite;

namespace DataMarket.Ledger.Events.Sqlite;

/// <summary>
/// Embedded mode. SQLite lets one writer at a time hold the database (BEGIN IMMEDIATE), so sequence
/// numbers are taken and committed in order: the high-water mark is simply the highest sequence.
/// </summary>
internal sealed class SqliteBackend : StorageBackend
{
    private const int SqliteBusy = 5;
    private const int SqliteLocked = 6;
    private const int SqliteConstraintPrimaryKey = 1555;
    private const int SqliteConstraintUnique = 2067;

    private readonly string _connectionString;
    private readonly string _prefix;

    public SqliteBackend(string connectionString, string tablePrefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        var builder = new SqliteConnectionStringBuilder(connectionString);
        if (builder.DefaultTimeout < 30)
        {
            // Waiting writers retry SQLITE_BUSY until this many seconds have passed.
            builder.DefaultTimeout = 30;
        }

        _connectionString = builder.ToString();
        _prefix = SchemaName.Validate(tablePrefix) + "_";
    }

    public override string ProviderName => "sqlite";

    public string Table(string name) => _prefix + name;

    public override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA foreign_keys = ON;";
        await pragma.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return connection;
    }

    public override async Task<DbTransaction> BeginAsync(DbConnection connection, CancellationToken cancellationToken) =>
        // deferred: false is BEGIN IMMEDIATE: take the write lock now, not at the first write.
        await Task.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(deferred: false)).ConfigureAwait(false);

    public override async Task<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken cancellationToken) =>
        await Task.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(deferred: true)).ConfigureAwait(false);

    public override async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (var wal = connection.CreateCommand())
        {
            wal.CommandText = "PRAGMA journal_mode = WAL;";
            await wal.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using var transaction = await BeginAsync(connection, cancellationToken).ConfigureAwait(false);
        await using (var ddl = CreateCommand(transaction, SqliteSchema.Ddl(_prefix)))
        {
            await ddl.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        // SQLite has no ADD COLUMN IF NOT EXISTS: look first.
        foreach (var (table, column, type) in SqliteSchema.AddedColumns(_prefix))
        {
            await using var exists = CreateCommand(transaction, "SELECT count(*) FROM pragma_table_info(@table) WHERE name = @column", ("table", table), ("column", column));
            if (Convert.ToInt64(await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) == 0)
            {
                await using var add = CreateCommand(transaction, $"ALTER TABLE {table} ADD COLUMN {column} {type}");
                await add.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    public override async Task<AppendResult> AppendAsync(
        string streamId,
        string streamType,
        ExpectedVersion expected,
        IReadOnlyList<NewEvent> events,
        CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await BeginAsync(connection, cancellationToken).ConfigureAwait(false);
        var result = await AppendAsync(transaction, streamId, streamType, expected, events, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>Every stream in one write transaction (SQLite holds one writer at a time, so overlapping writers queue).</summary>
    public override async Task AppendManyAsync(IReadOnlyList<StreamAppend> appends, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await BeginAsync(connection, cancellationToken).ConfigureAwait(false);
        foreach (var append in appends)
        {
            await AppendAsync(transaction, append.StreamId, append.StreamType, append.Expected, append.Events, cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<AppendResult> AppendAsync(
        DbTransaction transaction,
        string streamId,
        string streamType,
        ExpectedVersion expected,
        IReadOnlyList<NewEvent> events,
        CancellationToken cancellationToken)
    {
        long? current;
        await using (var read = CreateCommand(transaction, $"SELECT version FROM {Table("streams")} WHERE id = @id", ("id", streamId)))
        {
            var value = await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            current = value is null or DBNull ? null : Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture);
        }

        // The version check comes before a sequence number is taken.
        if (!expected.IsSatisfiedBy(current))
        {
            throw new EventStreamConcurrencyException(streamId, expected, current);
        }

        var version = current ?? 0;
        if (current is null)
        {
            await using var insertStream = CreateCommand(
                transaction,
                $"INSERT INTO {Table("streams")} (id, type, version) VALUES (@id, @type, 0)",
                ("id", streamId),
                ("type", streamType));
            await insertStream.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        long sequence;
        await using (var max = CreateCommand(transaction, $"SELECT coalesce(max(seq), 0) FROM {Table("events")}"))
        {
            sequence = Convert.ToInt64(await max.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        }

        var first = sequence + 1;
        await using var insert = CreateCommand(
            transaction,
            $"""
            INSERT INTO {Table("events")} (seq, id, stream_id, version, type, data, correlation_id, causation_id, actor, created_at)
            VALUES (@seq, @id, @stream, @version, @type, @data, @correlation, @causation, @actor, @created)
            """,
            ("seq", 0L), ("id", ""), ("stream", streamId), ("version", 0L), ("type", ""), ("data", ""),
            ("correlation", null), ("causation", null), ("actor", null), ("created", 0L));
        foreach (var newEvent in events)
        {
            var metadata = newEvent.Metadata.Normalized();
            insert.Parameters["seq"].Value = ++sequence;
            insert.Parameters["id"].Value = newEvent.EventId.ToString();
            insert.Parameters["version"].Value = ++version;
            insert.Parameters["type"].Value = newEvent.Type;
            insert.Parameters["data"].Value = newEvent.Data;
            insert.Parameters["correlation"].Value = (object?)metadata.CorrelationId ?? DBNull.Value;
            insert.Parameters["causation"].Value = (object?)metadata.CausationId ?? DBNull.Value;
            insert.Parameters["actor"].Value = (object?)metadata.Actor ?? DBNull.Value;
            insert.Parameters["created"].Value = Time.ToUnixMicroseconds(metadata.Timestamp);
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using (var update = CreateCommand(
            transaction,
            $"UPDATE {Table("streams")} SET version = @version WHERE id = @id",
            ("version", version),
            ("id", streamId)))
        {
            await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        return new AppendResult(version, first, sequence);
    }

    public override async Task<long> GetHighWaterMarkAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = CreateCommand(connection, $"SELECT coalesce(max(seq), 0) FROM {Table("events")}");
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }

    public override bool IsTransient(Exception exception) => exception switch
    {
        EventStreamConcurrencyException => true,
        SqliteException { SqliteErrorCode: SqliteBusy or SqliteLocked } => true,
        SqliteException { SqliteExtendedErrorCode: SqliteConstraintPrimaryKey or SqliteConstraintUnique } => true,
        _ => false,
    };

    public override IEventStore CreateEventStore() => new SqliteEventStore(this);

    public override string EventsTable => Table("events");

    public override string StreamsTable => Table("streams");

    public override string SequenceColumn => "seq";

    public override string LogStream(string column) => "1 = 1";

    public override async Task<IReadOnlyList<RecordedEvent>> ReadLogAsync(DbTransaction transaction, CancellationToken cancellationToken)
    {
        await using var command = CreateCommand(transaction, $"SELECT {SqliteEventStore.EventColumns} FROM {Table("events")} ORDER BY seq");
        return await SqliteEventStore.ReadEventsAsync(this, command, cancellationToken).ConfigureAwait(false);
    }

    public override async Task<ILedgerUnitOfWork> BeginUnitOfWorkAsync(CancellationToken cancellationToken) =>
        await SqliteLedgerUnitOfWork.BeginAsync(this, cancellationToken).ConfigureAwait(false);

    public override async Task<TransferRecord?> FindTransferAsync(Guid transferId, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = CreateCommand(connection, $"SELECT {SqliteLedgerUnitOfWork.TransferColumns} FROM {Table("transfers")} WHERE id = @id", ("id", transferId.ToString()));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? SqliteLedgerUnitOfWork.ReadTransfer(reader) : null;
    }

    public override async Task<IReadOnlyList<AccountBalance>> ReadBalancesAsync(string prefix, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = CreateCommand(
            connection,
            $"SELECT {SqliteLedgerUnitOfWork.AccountColumns} FROM {Table("accounts")} WHERE substr(id, 1, length(@prefix)) = @prefix ORDER BY id",
            ("prefix", prefix));
        var balances = new List<AccountBalance>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            balances.Add(SqliteLedgerUnitOfWork.ReadAccount(reader).ToBalance());
        }

        return balances;
    }

    public override async Task<IReadOnlyList<SellerStatementLine>> ReadStatementAsync(string seller, string period, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = CreateCommand(
            connection,
            $"SELECT currency, earned, held, paid FROM {Table("seller_statements")} WHERE seller = @seller AND period = @period ORDER BY currency",
            ("seller", seller),
            ("period", period));
        var lines = new List<SellerStatementLine>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            lines.Add(new SellerStatementLine(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3)));
        }

        return lines;
    }

    public override async Task<LedgerProjection> ReadProjectionsAsync(DbTransaction transaction, CancellationToken cancellationToken)
    {
        var stored = new LedgerProjection();
        await using (var command = CreateCommand(transaction, $"SELECT {SqliteLedgerUnitOfWork.AccountColumns} FROM {Table("accounts")}"))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var account = SqliteLedgerUnitOfWork.ReadAccount(reader);
                stored.Accounts[account.Id] = account;
            }
        }

        await using (var command = CreateCommand(transaction, $"SELECT {SqliteLedgerUnitOfWork.TransferColumns} FROM {Table("transfers")}"))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var transfer = SqliteLedgerUnitOfWork.ReadTransfer(reader);
                stored.Transfers[transfer.Id] = transfer;
            }
        }

        await using (var command = CreateCommand(transaction, $"SELECT seller, currency, period, earned, held, paid FROM {Table("seller_statements")}"))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                stored.Statements[new StatementKey(reader.GetString(0), reader.GetString(1), reader.GetString(2))] =
                    new StatementTotals(reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5));
            }
        }

        return stored;
    }

    public override async Task<long> CountUndispatchedAsync(DbTransaction transaction, CancellationToken cancellationToken)
    {
        await using var command = CreateCommand(transaction, $"SELECT count(*) FROM {Table("outbox")} WHERE dispatched_at IS NULL");
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }

    public override async Task<long> ReplaceProjectionsAsync(Func<IReadOnlyList<RecordedEvent>, LedgerProjection> replay, CancellationToken cancellationToken)
    {
        // BEGIN IMMEDIATE: writers wait for the rebuild; readers keep reading the old state until it commits.
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await BeginAsync(connection, cancellationToken).ConfigureAwait(false);
        var log = await ReadLogAsync(transaction, cancellationToken).ConfigureAwait(false);
        var projection = replay(log);
        var statements = new List<SqlStatement>
        {
            new($"DELETE FROM {Table("accounts")}"),
            new($"DELETE FROM {Table("transfers")}"),
            new($"DELETE FROM {Table("seller_statements")}"),
        };
        statements.AddRange(projection.Accounts.Values.Select(a => SqliteLedgerUnitOfWork.InsertAccount(this, a)));
        statements.AddRange(projection.Transfers.Values.Select(t => SqliteLedgerUnitOfWork.InsertTransfer(this, t)));
        statements.AddRange(projection.Statements.Select(pair => SqliteLedgerUnitOfWork.InsertStatement(this, pair.Key, pair.Value)));
        await ExecuteAsync(transaction, statements, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return log.Count;
    }

    /// <summary>
    /// SQLite has one writer at a time; holding it while publishing would stall the ledger (and any
    /// consumer writing to the same file). Embedded mode runs one relay, so it reads, publishes, and
    /// marks each message in its own short transaction.
    /// </summary>
    public override async Task<int> DispatchOutboxAsync(int batchSize, Func<OutboxMessage, Task<bool>> publish, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        List<OutboxMessage> messages;
        await using (var read = await BeginSnapshotAsync(connection, cancellationToken).ConfigureAwait(false))
        {
            messages = await ReadOutboxAsync(read, batchSize, cancellationToken).ConfigureAwait(false);
            await read.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        var dispatched = 0;
        foreach (var message in messages)
        {
            var published = await publish(message).ConfigureAwait(false);
            await using (var transaction = await BeginAsync(connection, cancellationToken).ConfigureAwait(false))
            {
                await ExecuteAsync(transaction, [published
                    ? new SqlStatement($"UPDATE {Table("outbox")} SET dispatched_at = @now, attempts = attempts + 1 WHERE id = @id", ("now", Time.ToUnixMicroseconds(now)), ("id", message.MessageId.ToString()))
                    : new SqlStatement($"UPDATE {Table("outbox")} SET attempts = attempts + 1 WHERE id = @id", ("id", message.MessageId.ToString()))], cancellationToken).ConfigureAwait(false);
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

    public override async Task<IReadOnlyList<OutboxMessage>> ReadUndispatchedAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await BeginSnapshotAsync(connection, cancellationToken).ConfigureAwait(false);
        return await ReadOutboxAsync(transaction, int.MaxValue, cancellationToken).ConfigureAwait(false);
    }

    private async Task<List<OutboxMessage>> ReadOutboxAsync(DbTransaction transaction, int limit, CancellationToken cancellationToken)
    {
        await using var command = CreateCommand(
            transaction,
            $"SELECT id, seq, type, payload, headers, attempts FROM {Table("outbox")} WHERE dispatched_at IS NULL ORDER BY seq LIMIT @limit",
            ("limit", limit));
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

    public static Guid ReadEventId(DbDataReader reader, int ordinal) => Guid.Parse(reader.GetString(ordinal));

    public static DateTimeOffset ReadEventTimestamp(DbDataReader reader, int ordinal) =>
        Time.FromUnixMicroseconds(reader.GetInt64(ordinal));

    public override ValueTask DisposeAsync()
    {
        // Release this file's pooled connections (so it can be deleted or moved), not other databases' pools.
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
        return ValueTask.CompletedTask;
    }
}
