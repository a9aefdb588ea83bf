using System.Data.Common;
using DataMarket.Ledger.Events.MartenStore;
using DataMarket.Ledger.Storage;
using Npgsql;

namespace DataMarket.Ledger.Events.Postgres;

internal sealed class PostgresBackend : StorageBackend
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _schema;
    private readonly MartenEventLog _marten;

    public PostgresBackend(string connectionString, string schema)
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
        _marten = new MartenEventLog(_dataSource, _schema);
    }

    public override IEventStore CreateEventStore() => new MartenEventStore(this, _marten);

    public override string EventsTable => _marten.EventsTable;

    public override string StreamsTable => _marten.StreamsTable;

    public override string SequenceColumn => "seq_id";

    /// <summary>Marten records the sequence numbers of failed saves as tombstone events in a stream of its own.</summary>
    public override string LogStream(string column) => $"{column} <> '{JasperFx.Events.Tombstone.StreamKey}'";

    public override Task<IReadOnlyList<RecordedEvent>> ReadLogAsync(DbTransaction transaction, CancellationToken cancellationToken) =>
        _marten.ReadLogAsync((NpgsqlTransaction)transaction, cancellationToken);

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

    /// <summary>How long a reader waits for in-flight appends below the newest committed event (Marten's high-water agent).</summary>
    public TimeSpan HighWaterMarkPatience
    {
        get => _marten.HighWaterMarkPatience;
        set => _marten.HighWaterMarkPatience = value;
    }

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

        await using (var ddl = new NpgsqlCommand(PostgresSchema.Ddl(_schema), connection, transaction))
        {
            await ddl.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        // Marten's event tables and functions, in the same schema (it takes its own lock for concurrent starts).
        await _marten.InitializeAsync(cancellationToken).ConfigureAwait(false);
    }

    public override Task<AppendResult> AppendAsync(
        DbTransaction transaction,
        string streamId,
        string streamType,
        ExpectedVersion expected,
        IReadOnlyList<NewEvent> events,
        CancellationToken cancellationToken) =>
        _marten.AppendOneAsync((NpgsqlTransaction)transaction, new StreamAppend(streamId, streamType, expected, events), cancellationToken);

    public override Task<long> GetHighWaterMarkAsync(CancellationToken cancellationToken) =>
        _marten.GetHighWaterMarkAsync(cancellationToken);

    public override bool IsTransient(Exception exception) => exception switch
    {
        EventStreamConcurrencyException => true,
        _ when MartenEventLog.IsStreamConflict(exception) => true,
        Marten.Exceptions.MartenCommandException { InnerException: { } inner } => IsTransient(inner),
        PostgresException { SqlState: PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.UniqueViolation } => true,
        // A statement row two transactions both created at once (no row to lock yet) can overflow in the
        // upsert; the retry reads the row, and the ledger's own check refuses the culprit with Overflow.
        PostgresException { SqlState: PostgresErrorCodes.NumericValueOutOfRange } => true,
        NpgsqlException { IsTransient: true } => true,
        _ => false,
    };

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
    /// Marten's save (every append, one round trip), then the projection, outbox and inbox rows and (with
    /// <paramref name="commit"/>) COMMIT in a second. One transaction: all of it is durable or none of it.
    /// If a row statement fails, the server skips the rest of the batch, COMMIT included, and the
    /// transaction is left open in a failed state for the caller to roll back.
    /// </summary>
    public override async Task WriteAsync(DbTransaction transaction, IReadOnlyList<StreamAppend> appends, IReadOnlyList<SqlStatement> statements, bool commit, CancellationToken cancellationToken)
    {
        if (appends.Count > 0)
        {
            await _marten.AppendAsync((NpgsqlTransaction)transaction, appends, cancellationToken).ConfigureAwait(false);
        }

        await using var rows = new NpgsqlBatch((NpgsqlConnection)transaction.Connection!, (NpgsqlTransaction)transaction);
        AddStatements(rows, statements);
        if (commit)
        {
            // Npgsql follows the server's transaction status, so the NpgsqlTransaction counts as
            // completed afterwards and its disposal sends nothing.
            rows.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
        }

        if (rows.BatchCommands.Count > 0)
        {
            await rows.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
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
        await _marten.DisposeAsync().ConfigureAwait(false);
        await _dataSource.DisposeAsync().ConfigureAwait(false);
    }
}
