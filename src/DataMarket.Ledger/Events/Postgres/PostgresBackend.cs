using System.Data.Common;
using DataMarket.Ledger.Events.MartenStore;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Outbox;
using DataMarket.Ledger.Projections;
using DataMarket.Ledger.Storage;
using Marten;
using Marten.Services;
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
    /// The ledger's hot rows (account and statement documents, recent transfers) live in memory, where an
    /// index probe costs about what a sequential page does. With the server's default random_page_cost of 4
    /// the planner judged a table of a few thousand accounts cheaper to scan whole than to probe sixteen
    /// times (measured on the earlier row tables: 16 writers fell from 2,000 to 1,100 transfers/s). Set once
    /// per physical connection (a plain SET, which poolers in session mode pass through, unlike startup
    /// options), so nothing else on the server changes; a value the operator put in the connection string's
    /// Options wins.
    /// </summary>
    private static NpgsqlCommand IndexFriendlyCosts(NpgsqlConnection connection) => new("SET random_page_cost = 1.1", connection);

    internal static bool SetsRandomPageCost(string? options) =>
        options is not null && System.Text.RegularExpressions.Regex.IsMatch(options, @"(^|\s)(-c\s*|--)random_page_cost\s*=", System.Text.RegularExpressions.RegexOptions.IgnoreCase);

    public string Schema => _schema;

    /// <summary>The Marten store (tests hold an append open in a transaction of their own through it).</summary>
    internal MartenEventLog Marten => _marten;

    /// <summary>How long a reader waits for in-flight appends below the newest committed event (Marten's high-water agent).</summary>
    public TimeSpan HighWaterMarkPatience
    {
        get => _marten.HighWaterMarkPatience;
        set => _marten.HighWaterMarkPatience = value;
    }

    public override string ProviderName => "postgresql";

    public override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken) =>
        await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

    public override async Task<DbTransaction> BeginAsync(DbConnection connection, CancellationToken cancellationToken) =>
        await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false);

    public override async Task<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken cancellationToken) =>
        await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);

    /// <summary>Marten's event tables, functions and document tables (it serializes concurrent starts itself).</summary>
    public override Task InitializeAsync(CancellationToken cancellationToken) => _marten.InitializeAsync(cancellationToken);

    public override Task<AppendResult> AppendAsync(
        string streamId,
        string streamType,
        ExpectedVersion expected,
        IReadOnlyList<NewEvent> events,
        CancellationToken cancellationToken) =>
        _marten.AppendOneAsync(new StreamAppend(streamId, streamType, expected, events), cancellationToken);

    /// <summary>
    /// One Marten session, one save. Streams are queued in id order so two writers whose sets overlap wait for each
    /// other rather than deadlock; a deadlock or a lost creation race still surfaces as a concurrency exception.
    /// </summary>
    public override async Task AppendManyAsync(IReadOnlyList<StreamAppend> appends, CancellationToken cancellationToken)
    {
        await using var session = _marten.OpenSession();
        foreach (var append in appends.OrderBy(a => a.StreamId, StringComparer.Ordinal))
        {
            _marten.QueueAppend(session, append);
        }

        try
        {
            await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (MartenEventLog.IsStreamConflict(exception) || IsDeadlock(exception))
        {
            throw new EventStreamConcurrencyException(appends.Count == 1 ? appends[0].StreamId : $"{appends.Count} streams", appends[0].Expected, null, exception);
        }
    }

    private static bool IsDeadlock(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is PostgresException { SqlState: PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure })
            {
                return true;
            }
        }

        return false;
    }

    public override Task<long> GetHighWaterMarkAsync(CancellationToken cancellationToken) =>
        _marten.GetHighWaterMarkAsync(cancellationToken);

    public override bool IsTransient(Exception exception) => exception switch
    {
        EventStreamConcurrencyException => true,
        // A stale revision, a document or stream created concurrently.
        _ when MartenEventLog.IsStreamConflict(exception) => true,
        Marten.Exceptions.MartenCommandException { InnerException: { } inner } => IsTransient(inner),
        // A revision read before another writer moved it (our set-based document writes).
        PostgresException { SqlState: LedgerDocumentWrites.StaleRevisionState } => true,
        PostgresException { SqlState: PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.UniqueViolation } => true,
        NpgsqlException { IsTransient: true } => true,
        _ => false,
    };

    public override Task<ILedgerUnitOfWork> BeginUnitOfWorkAsync(CancellationToken cancellationToken) =>
        Task.FromResult<ILedgerUnitOfWork>(new MartenLedgerUnitOfWork(_marten));

    public override async Task<TransferRecord?> FindTransferAsync(Guid transferId, CancellationToken cancellationToken)
    {
        await using var session = _marten.Store.QuerySession();
        return (await session.LoadAsync<TransferDocument>(transferId, cancellationToken).ConfigureAwait(false))?.ToRecord();
    }

    public override async Task<IReadOnlyList<AccountBalance>> ReadBalancesAsync(string prefix, CancellationToken cancellationToken)
    {
        await using var session = _marten.Store.QuerySession();
        var accounts = await session.Query<AccountDocument>().Where(a => a.Id.StartsWith(prefix)).ToListAsync(cancellationToken).ConfigureAwait(false);
        return accounts.OrderBy(a => a.Id, StringComparer.Ordinal).Select(a => a.ToRow().ToBalance()).ToList();
    }

    public override async Task<IReadOnlyList<SellerStatementLine>> ReadStatementAsync(string seller, string period, CancellationToken cancellationToken)
    {
        await using var session = _marten.Store.QuerySession();
        var rows = await session.Query<SellerStatementDocument>().Where(s => s.Seller == seller && s.Period == period).ToListAsync(cancellationToken).ConfigureAwait(false);
        return rows.OrderBy(s => s.Currency, StringComparer.Ordinal).Select(s => new SellerStatementLine(s.Currency, s.Earned, s.Held, s.Paid)).ToList();
    }

    public override async Task<LedgerProjection> ReadProjectionsAsync(DbTransaction transaction, CancellationToken cancellationToken)
    {
        await using var session = _marten.Store.QuerySession(SessionOptions.ForTransaction((NpgsqlTransaction)transaction));
        var stored = new LedgerProjection();
        foreach (var account in await session.Query<AccountDocument>().ToListAsync(cancellationToken).ConfigureAwait(false))
        {
            stored.Accounts[account.Id] = account.ToRow();
        }

        foreach (var transfer in await session.Query<TransferDocument>().ToListAsync(cancellationToken).ConfigureAwait(false))
        {
            stored.Transfers[transfer.Id] = transfer.ToRecord();
        }

        foreach (var statement in await session.Query<SellerStatementDocument>().ToListAsync(cancellationToken).ConfigureAwait(false))
        {
            stored.Statements[statement.Key] = statement.Totals;
        }

        return stored;
    }

    public override async Task<long> CountUndispatchedAsync(DbTransaction transaction, CancellationToken cancellationToken)
    {
        await using var session = _marten.Store.QuerySession(SessionOptions.ForTransaction((NpgsqlTransaction)transaction));
        return await session.Query<OutboxDocument>().CountAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// In one transaction: lock the projection documents' tables against writers (readers go on reading the
    /// old state), read the log, and rewrite every document. Accounts and statements that stay are updated
    /// to their next revision rather than deleted and inserted, so a writer that read one before the
    /// rebuild fails its revision check afterwards and starts over from the rebuilt state.
    /// </summary>
    public override async Task<long> ReplaceProjectionsAsync(Func<IReadOnlyList<RecordedEvent>, LedgerProjection> replay, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var lockTables = new NpgsqlCommand(
            $"LOCK TABLE {_marten.TableFor<AccountDocument>()}, {_marten.TableFor<TransferDocument>()}, {_marten.TableFor<SellerStatementDocument>()} IN EXCLUSIVE MODE",
            connection,
            transaction))
        {
            await lockTables.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var log = await _marten.ReadLogAsync(transaction, cancellationToken).ConfigureAwait(false);
        var projection = replay(log);
        await using (var session = _marten.Store.LightweightSession(SessionOptions.ForTransaction(transaction)))
        {
            var accounts = (await session.Query<AccountDocument>().ToListAsync(cancellationToken).ConfigureAwait(false)).ToDictionary(a => a.Id, a => a.Revision, StringComparer.Ordinal);
            var statements = (await session.Query<SellerStatementDocument>().ToListAsync(cancellationToken).ConfigureAwait(false)).ToDictionary(s => s.Id, s => s.Revision, StringComparer.Ordinal);
            foreach (var account in projection.Accounts.Values)
            {
                var document = AccountDocument.From(account);
                if (accounts.Remove(account.Id, out var revision))
                {
                    session.UpdateRevision(document, revision + 1);
                }
                else
                {
                    session.Insert(document);
                }
            }

            foreach (var (key, totals) in projection.Statements)
            {
                var document = SellerStatementDocument.From(key, totals);
                if (statements.Remove(document.Id, out var revision))
                {
                    session.UpdateRevision(document, revision + 1);
                }
                else
                {
                    session.Insert(document);
                }
            }

            foreach (var stale in accounts.Keys)
            {
                session.Delete<AccountDocument>(stale);
            }

            foreach (var stale in statements.Keys)
            {
                session.Delete<SellerStatementDocument>(stale);
            }

            var transfers = projection.Transfers.Keys.ToHashSet();
            var storedTransfers = await session.Query<TransferDocument>().Select(t => t.Id).ToListAsync(cancellationToken).ConfigureAwait(false);
            foreach (var stale in storedTransfers.Where(id => !transfers.Contains(id)))
            {
                session.Delete<TransferDocument>(stale);
            }

            session.Store(projection.Transfers.Values.Select(TransferDocument.From).ToArray());
            await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return log.Count;
    }

    /// <summary>
    /// One relay at a time per schema (a transaction-scoped advisory lock; a second relay finds it taken and
    /// passes), so messages leave in sequence order and no two relays publish the same one at once. Published
    /// messages are deleted in the same transaction that held the lock; a crash before it commits publishes
    /// them again after the restart, with the same message ids, for the consumers' inboxes to absorb.
    /// </summary>
    public override async Task<int> DispatchOutboxAsync(int batchSize, Func<OutboxMessage, Task<bool>> publish, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var claim = new NpgsqlCommand("SELECT pg_try_advisory_xact_lock(hashtext(@key))", connection, transaction))
        {
            claim.Parameters.AddWithValue("key", "datamarket.ledger.outbox." + _schema);
            if (await claim.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not true)
            {
                return 0;
            }
        }

        var dispatched = 0;
        await using (var session = _marten.Store.LightweightSession(SessionOptions.ForTransaction(transaction)))
        {
            var documents = await session.Query<OutboxDocument>().OrderBy(d => d.Sequence).Take(batchSize).ToListAsync(cancellationToken).ConfigureAwait(false);
            foreach (var document in documents)
            {
                if (await publish(ToMessage(document)).ConfigureAwait(false))
                {
                    session.Delete(document);
                    dispatched++;
                    continue;
                }

                document.Attempts++;
                session.Update(document);
                break;
            }

            await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return dispatched;
    }

    public override async Task<IReadOnlyList<OutboxMessage>> ReadUndispatchedAsync(CancellationToken cancellationToken)
    {
        await using var session = _marten.Store.QuerySession();
        var documents = await session.Query<OutboxDocument>().OrderBy(d => d.Sequence).ToListAsync(cancellationToken).ConfigureAwait(false);
        return documents.Select(ToMessage).ToList();
    }

    private static OutboxMessage ToMessage(OutboxDocument document) =>
        new(document.Id, document.Sequence, document.Type, document.Payload, document.Headers, document.Attempts);

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
