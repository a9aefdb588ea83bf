using System.Data.Common;
using DataMarket.Ledger.Events;

namespace DataMarket.Ledger.Storage;

internal sealed record SqlStatement(string Sql, params (string Name, object? Value)[] Parameters);

/// <summary>
/// What differs between PostgreSQL and SQLite: connections, transactions, the append itself, the
/// high-water mark and a little SQL. Everything else (ledger rules, projections, outbox) is shared.
/// </summary>
internal abstract class StorageBackend : IAsyncDisposable
{
    public abstract string ProviderName { get; }

    /// <summary>A table's qualified name in this store's own schema (PostgreSQL) or prefix (SQLite).</summary>
    public abstract string Table(string name);

    /// <summary>Row lock suffix for SELECT; empty where writers are already serialized.</summary>
    public abstract string ForUpdate { get; }

    /// <summary>Suffix that lets several relays claim different outbox rows.</summary>
    public abstract string SkipLocked { get; }

    /// <summary>Whether array parameters (and unnest) can turn many row writes into one statement.</summary>
    public virtual bool SupportsArrayParameters => false;

    /// <summary>Wraps a text parameter so it is stored as JSON.</summary>
    public abstract string Json(string parameter);

    public abstract Task<DbConnection> OpenAsync(CancellationToken cancellationToken);

    public abstract Task<DbTransaction> BeginAsync(DbConnection connection, CancellationToken cancellationToken);

    public abstract Task InitializeAsync(CancellationToken cancellationToken);

    public abstract Task<AppendResult> AppendAsync(
        DbTransaction transaction,
        string streamId,
        string streamType,
        ExpectedVersion expected,
        IReadOnlyList<NewEvent> events,
        CancellationToken cancellationToken);

    public abstract Task<long> GetHighWaterMarkAsync(CancellationToken cancellationToken);

    /// <summary>Errors after which a whole command may be retried: lost races, deadlocks, serialization failures.</summary>
    public abstract bool IsTransient(Exception exception);

    /// <summary>Runs statements in order inside the transaction (PostgreSQL sends them in one round trip).</summary>
    public virtual async Task ExecuteAsync(DbTransaction transaction, IReadOnlyList<SqlStatement> statements, CancellationToken cancellationToken)
    {
        foreach (var statement in statements)
        {
            await using var command = CreateCommand(transaction, statement.Sql, statement.Parameters);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Runs queries in order, handing each result set to <paramref name="read"/> with its index.</summary>
    public virtual async Task QueryAsync(DbTransaction transaction, IReadOnlyList<SqlStatement> queries, Func<int, DbDataReader, CancellationToken, Task> read, CancellationToken cancellationToken)
    {
        for (var i = 0; i < queries.Count; i++)
        {
            await using var command = CreateCommand(transaction, queries[i].Sql, queries[i].Parameters);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await read(i, reader, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Appends to streams, then runs the statements, all in the caller's transaction; with
    /// <paramref name="commit"/> the transaction is also committed (and durable) when this returns.
    /// </summary>
    public virtual async Task WriteAsync(DbTransaction transaction, IReadOnlyList<StreamAppend> appends, IReadOnlyList<SqlStatement> statements, bool commit, CancellationToken cancellationToken)
    {
        foreach (var append in appends)
        {
            await AppendAsync(transaction, append.StreamId, append.StreamType, append.Expected, append.Events, cancellationToken).ConfigureAwait(false);
        }

        await ExecuteAsync(transaction, statements, cancellationToken).ConfigureAwait(false);
        if (commit)
        {
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The event store port over this backend.</summary>
    public abstract IEventStore CreateEventStore();

    /// <summary>Where the events and streams live, and the events' global sequence column (for verification queries).</summary>
    public abstract string EventsTable { get; }

    public abstract string StreamsTable { get; }

    public abstract string SequenceColumn { get; }

    /// <summary>A condition on a stream id column that keeps only the log's own streams (not a store's bookkeeping streams).</summary>
    public abstract string LogStream(string column);

    /// <summary>The whole log in global order, read inside <paramref name="transaction"/> (one snapshot for verification and rebuilds).</summary>
    public abstract Task<IReadOnlyList<RecordedEvent>> ReadLogAsync(DbTransaction transaction, CancellationToken cancellationToken);

    /// <summary>A read-only transaction that sees one consistent snapshot (for verification).</summary>
    public abstract Task<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken cancellationToken);

    public static DbCommand CreateCommand(DbTransaction transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = transaction.Connection!.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        AddParameters(command, parameters);
        return command;
    }

    public static DbCommand CreateCommand(DbConnection connection, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        AddParameters(command, parameters);
        return command;
    }

    private static void AddParameters(DbCommand command, (string Name, object? Value)[] parameters)
    {
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }
    }

    public abstract ValueTask DisposeAsync();
}

/// <summary>An append that the ledger sends together with its projection writes.</summary>
internal sealed record StreamAppend(string StreamId, string StreamType, Events.ExpectedVersion Expected, IReadOnlyList<Events.NewEvent> Events);
