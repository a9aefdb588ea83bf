using System.Data.Common;
using DataMarket.Ledger.Events;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Outbox;
using DataMarket.Ledger.Projections;

namespace DataMarket.Ledger.Storage;

internal sealed record SqlStatement(string Sql, params (string Name, object? Value)[] Parameters);

/// <summary>
/// What differs between PostgreSQL (Marten) and SQLite: connections, the append itself, the high-water mark,
/// and where the projections, inbox and outbox live (Marten documents; SQLite tables). The ledger's rules,
/// the fold, verification and the relay's loop are shared above it.
/// </summary>
internal abstract class StorageBackend : IAsyncDisposable
{
    public abstract string ProviderName { get; }

    public abstract Task<DbConnection> OpenAsync(CancellationToken cancellationToken);

    public abstract Task<DbTransaction> BeginAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>A read-only transaction that sees one consistent snapshot (for verification).</summary>
    public abstract Task<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken cancellationToken);

    public abstract Task InitializeAsync(CancellationToken cancellationToken);

    /// <summary>One append in a transaction of its own (the event store port's append).</summary>
    public abstract Task<AppendResult> AppendAsync(
        string streamId,
        string streamType,
        ExpectedVersion expected,
        IReadOnlyList<NewEvent> events,
        CancellationToken cancellationToken);

    /// <summary>Appends to several streams in one transaction of their own (the event store port's multi-stream append).</summary>
    public abstract Task AppendManyAsync(IReadOnlyList<StreamAppend> appends, CancellationToken cancellationToken);

    public abstract Task<long> GetHighWaterMarkAsync(CancellationToken cancellationToken);

    /// <summary>Errors after which a whole command may be retried: lost races, stale revisions, deadlocks, a busy database.</summary>
    public abstract bool IsTransient(Exception exception);

    /// <summary>A ledger command's reads and writes, committed together or not at all.</summary>
    public abstract Task<ILedgerUnitOfWork> BeginUnitOfWorkAsync(CancellationToken cancellationToken);

    public abstract Task<TransferRecord?> FindTransferAsync(Guid transferId, CancellationToken cancellationToken);

    /// <summary>Accounts whose id starts with <paramref name="prefix"/>, ordered by id.</summary>
    public abstract Task<IReadOnlyList<AccountBalance>> ReadBalancesAsync(string prefix, CancellationToken cancellationToken);

    public abstract Task<IReadOnlyList<SellerStatementLine>> ReadStatementAsync(string seller, string period, CancellationToken cancellationToken);

    /// <summary>Every account, transfer and statement as stored, read inside the snapshot <paramref name="transaction"/>.</summary>
    public abstract Task<LedgerProjection> ReadProjectionsAsync(DbTransaction transaction, CancellationToken cancellationToken);

    public abstract Task<long> CountUndispatchedAsync(DbTransaction transaction, CancellationToken cancellationToken);

    /// <summary>
    /// Replaces the stored projections with <paramref name="replay"/>'s fold of the whole log, reading the
    /// log and writing in one transaction that keeps writers out meanwhile; returns the events replayed.
    /// </summary>
    public abstract Task<long> ReplaceProjectionsAsync(Func<IReadOnlyList<RecordedEvent>, LedgerProjection> replay, CancellationToken cancellationToken);

    /// <summary>
    /// One relay pass: the oldest undispatched messages in order, each handed to <paramref name="publish"/>;
    /// published ones are marked (or removed), the first failure counts an attempt and ends the pass.
    /// </summary>
    public abstract Task<int> DispatchOutboxAsync(int batchSize, Func<OutboxMessage, Task<bool>> publish, DateTimeOffset now, CancellationToken cancellationToken);

    public abstract Task<IReadOnlyList<OutboxMessage>> ReadUndispatchedAsync(CancellationToken cancellationToken);

    /// <summary>Runs statements in order inside the transaction.</summary>
    public virtual async Task ExecuteAsync(DbTransaction transaction, IReadOnlyList<SqlStatement> statements, CancellationToken cancellationToken)
    {
        foreach (var statement in statements)
        {
            await using var command = CreateCommand(transaction, statement.Sql, statement.Parameters);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
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
