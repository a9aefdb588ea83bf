using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using DataMarket.Ledger.Events;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Storage;

namespace DataMarket.Ledger.Projections;

/// <summary>
/// Runs each command in one transaction: inbox check, idempotency check, row locks on the accounts it
/// touches (in id order, so writers never deadlock), the shared fold, then events, projections and
/// outbox rows written together. Lost races are retried from the top.
/// </summary>
internal sealed class LedgerService : ILedger
{
    private readonly StorageBackend _backend;
    private readonly TimeProvider _timeProvider;
    private readonly CommitBatcher? _batcher;

    public LedgerService(StorageBackend backend, TimeProvider timeProvider, int groupCommitWriters)
    {
        _backend = backend;
        _timeProvider = timeProvider;
        _batcher = groupCommitWriters > 0 ? new CommitBatcher(this, groupCommitWriters) : null;
    }

    public ValueTask DisposeAsync() => _batcher?.DisposeAsync() ?? ValueTask.CompletedTask;

    private const int MaxAttempts = 25;
    private const string TransferColumns = "id, debit_account_id, credit_account_id, amount, currency, code, pending, state, batch_id, reference, created_at, resolved_at";
    private const string AccountColumns = "id, kind, owner, currency, flags, debits_pending, debits_posted, credits_pending, credits_posted";

    internal static readonly JsonSerializerOptions IntegrationJson = new(JsonSerializerDefaults.Web);

    public Task<LedgerResult> CommitAsync(IReadOnlyList<TransferRequest> transfers, LedgerCommandOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transfers);
        var invalid = Validate(transfers);
        if (invalid is not null)
        {
            return Task.FromResult(invalid);
        }

        if (options?.Inbox is null && _batcher is not null)
        {
            // No inbox row to check first: share a transaction (and its fsync) with concurrent commands.
            return _batcher.CommitAsync(transfers, options, cancellationToken);
        }

        return RunAsync(
            options,
            async (transaction, metadata, ct) => (await CommitManyAsync(transaction, [new CommitCommand(transfers, options, metadata)], commit: false, ct).ConfigureAwait(false))[0],
            cancellationToken);
    }

    public Task<LedgerResult> PostPendingAsync(Guid pendingTransferId, LedgerCommandOptions? options = null, CancellationToken cancellationToken = default) =>
        RunAsync(options, (transaction, metadata, ct) => ResolveCoreAsync(transaction, pendingTransferId, post: true, metadata, options, ct), cancellationToken);

    public Task<LedgerResult> VoidPendingAsync(Guid pendingTransferId, LedgerCommandOptions? options = null, CancellationToken cancellationToken = default) =>
        RunAsync(options, (transaction, metadata, ct) => ResolveCoreAsync(transaction, pendingTransferId, post: false, metadata, options, ct), cancellationToken);

    private static LedgerResult? Validate(IReadOnlyList<TransferRequest> transfers)
    {
        if (transfers.Count == 0)
        {
            return LedgerResult.Reject(LedgerRejection.EmptyBatch, "A batch needs at least one transfer.");
        }

        var ids = new HashSet<Guid>();
        foreach (var transfer in transfers)
        {
            ArgumentNullException.ThrowIfNull(transfer, nameof(transfers));
            if (!transfer.Debit.IsValid || !transfer.Credit.IsValid)
            {
                var side = transfer.Debit.IsValid ? "credit" : "debit";
                return LedgerResult.Reject(LedgerRejection.InvalidAccount, $"Transfer {transfer.Id}: the {side} account is default(AccountRef), which names no account; build it with AccountRef's constructor or factories.");
            }

            if (!Enum.IsDefined(transfer.Code))
            {
                return LedgerResult.Reject(LedgerRejection.UndefinedCode, $"Transfer {transfer.Id}: code {(int)transfer.Code} is not a defined transfer code ({string.Join(", ", Enum.GetNames<TransferCode>())}).");
            }

            if (transfer.Reference is { } reference && !AccountRef.IsCleanText(reference))
            {
                return LedgerResult.Reject(LedgerRejection.InvalidReference, $"Transfer {transfer.Id}: the reference may not contain control characters (NUL, newlines, tabs) or broken UTF-16.");
            }

            if (transfer.Amount <= 0)
            {
                return LedgerResult.Reject(LedgerRejection.InvalidAmount, $"Transfer {transfer.Id} amount must be positive.");
            }

            if (transfer.Debit == transfer.Credit)
            {
                return LedgerResult.Reject(LedgerRejection.SameAccount, $"Transfer {transfer.Id} debits and credits {transfer.Debit}.");
            }

            if (transfer.Debit.Currency != transfer.Credit.Currency)
            {
                return LedgerResult.Reject(LedgerRejection.CurrencyMismatch, $"Transfer {transfer.Id} crosses currencies.");
            }

            if (!ids.Add(transfer.Id))
            {
                return LedgerResult.Reject(LedgerRejection.DuplicateIdInBatch, $"Transfer {transfer.Id} appears twice.");
            }
        }

        return null;
    }

    internal EventMetadata NewMetadata(LedgerCommandOptions? options) => new()
    {
        Actor = options?.Actor,
        CorrelationId = options?.CorrelationId,
        CausationId = options?.CausationId ?? options?.Inbox?.MessageId.ToString(),
        Timestamp = Time.ToMicroseconds(_timeProvider.GetUtcNow()),
    };

    internal StorageBackend Backend => _backend;

    private async Task<LedgerResult> RunAsync(
        LedgerCommandOptions? options,
        Func<DbTransaction, EventMetadata, CancellationToken, Task<LedgerResult>> body,
        CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var metadata = NewMetadata(options);
            await using var connection = await _backend.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = await _backend.BeginAsync(connection, cancellationToken).ConfigureAwait(false);
            try
            {
                var inbox = options?.Inbox;
                if (inbox is not null && !await RecordInboxAsync(transaction, inbox, metadata.Timestamp, cancellationToken).ConfigureAwait(false))
                {
                    var first = await ReadInboxOutcomeAsync(transaction, inbox, cancellationToken).ConfigureAwait(false);
                    await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
                    return first;
                }

                var result = await body(transaction, metadata, cancellationToken).ConfigureAwait(false);
                var keepReceipt = inbox is not null && ConsumesMessage(result);
                if (result.Status is LedgerStatus.Rejected or LedgerStatus.AlreadyCommitted && !keepReceipt)
                {
                    // Nothing was written; nothing to keep.
                    await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
                    return result;
                }

                if (result.Status == LedgerStatus.Rejected)
                {
                    // A rejected command wrote nothing, but its message is still consumed: a redelivery must
                    // not succeed just because balances moved in between.
                    await RecordInboxRejectionAsync(transaction, inbox!, result, cancellationToken).ConfigureAwait(false);
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                return result;
            }
            catch (Exception exception) when (attempt < MaxAttempts && _backend.IsTransient(exception))
            {
                // Lost a race (stream or account created concurrently, deadlock, busy): start over.
                await TryRollbackAsync(transaction).ConfigureAwait(false);
                await Task.Delay(Random.Shared.Next(1, 1 + Math.Min(50, 1 << Math.Min(attempt, 6))), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static async Task TryRollbackAsync(DbTransaction transaction)
    {
        try
        {
            await transaction.RollbackAsync().ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is DbException or InvalidOperationException)
        {
            // The connection may already be broken; disposing it releases everything.
        }
    }

    private async Task<bool> RecordInboxAsync(DbTransaction transaction, InboxReceipt inbox, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // ON CONFLICT DO NOTHING waits for a concurrent insert of the same key and then skips it.
        await using var command = StorageBackend.CreateCommand(
            transaction,
            $"INSERT INTO {_backend.Table("inbox")} (consumer, message_id, processed_at) VALUES (@consumer, @message, @now) ON CONFLICT (consumer, message_id) DO NOTHING",
            ("consumer", inbox.Consumer),
            ("message", inbox.MessageId.ToString()),
            ("now", Time.ToUnixMicroseconds(now)));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    /// <summary>
    /// Whether a message's receipt is kept with this result. Not when nothing happened and a
    /// redelivery would reach the same answer anyway (already committed: transfers never change), so the
    /// sender is answered again; not when the answer may change with time for the right reason (a pending
    /// transfer not there yet because messages crossed). Every other rejection is final for that message.
    /// </summary>
    private static bool ConsumesMessage(LedgerResult result) => result switch
    {
        { Status: LedgerStatus.AlreadyCommitted } => false,
        { Status: LedgerStatus.Rejected, Rejection: LedgerRejection.PendingNotFound } => false,
        _ => true,
    };

    private async Task RecordInboxRejectionAsync(DbTransaction transaction, InboxReceipt inbox, LedgerResult rejection, CancellationToken cancellationToken)
    {
        await using var command = StorageBackend.CreateCommand(
            transaction,
            $"UPDATE {_backend.Table("inbox")} SET rejection = @rejection, detail = @detail WHERE consumer = @consumer AND message_id = @message",
            ("rejection", rejection.Rejection?.ToString()),
            ("detail", rejection.Detail),
            ("consumer", inbox.Consumer),
            ("message", inbox.MessageId.ToString()));
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A redelivery's answer: DuplicateMessage, carrying the first delivery's rejection if it was rejected.</summary>
    private async Task<LedgerResult> ReadInboxOutcomeAsync(DbTransaction transaction, InboxReceipt inbox, CancellationToken cancellationToken)
    {
        await using var command = StorageBackend.CreateCommand(
            transaction,
            $"SELECT rejection, detail FROM {_backend.Table("inbox")} WHERE consumer = @consumer AND message_id = @message",
            ("consumer", inbox.Consumer),
            ("message", inbox.MessageId.ToString()));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false) && !reader.IsDBNull(0))
        {
            var rejection = Enum.Parse<LedgerRejection>(reader.GetString(0));
            var detail = reader.IsDBNull(1) ? null : reader.GetString(1);
            return new LedgerResult(LedgerStatus.DuplicateMessage, rejection, $"The first delivery was rejected: {detail}");
        }

        return new LedgerResult(LedgerStatus.DuplicateMessage);
    }

    /// <summary>
    /// Commits several independent commands in one transaction (group commit). Each command is its own
    /// all-or-nothing unit: it is applied to a copy of the rows it touches and merged only if no rule
    /// breaks, so one rejected command never affects another. Commands are applied, and their events
    /// appended, in order, so a replay of the log reaches the same decisions. With <paramref name="commit"/>
    /// the transaction is committed before this returns, in the same round trip as the last writes.
    /// </summary>
    internal async Task<LedgerResult[]> CommitManyAsync(DbTransaction transaction, IReadOnlyList<CommitCommand> commands, bool commit, CancellationToken cancellationToken)
    {
        var allIds = commands.SelectMany(c => c.Transfers.Select(t => t.Id)).Distinct().ToArray();
        var state = new LedgerProjection();
        var accountIds = commands.SelectMany(c => c.Transfers.SelectMany(t => new[] { t.Debit.Id, t.Credit.Id }));
        var statementKeys = commands.SelectMany(c => StatementKeys(c.Transfers.SelectMany(t => new[] { t.Debit, t.Credit }), c.Metadata.Timestamp));
        var storedStatements = new Dictionary<StatementKey, StatementTotals>();
        var existing = await LoadAsync(transaction, TransfersQuery(allIds, forUpdate: false), AccountsQuery(accountIds), StatementsQuery(statementKeys), state, storedStatements, cancellationToken).ConfigureAwait(false);

        var committedHere = new Dictionary<Guid, TransferRecord>();
        var touched = new HashSet<string>(StringComparer.Ordinal);
        var statementDeltas = new Dictionary<StatementKey, StatementTotals>();
        var appends = new List<StreamAppend>();
        var outbox = new List<SqlStatement>();
        var results = new LedgerResult[commands.Count];

        for (var i = 0; i < commands.Count; i++)
        {
            var (transfers, options, metadata) = commands[i];
            Guid? batchId = transfers.Count > 1 ? transfers[0].Id : null;
            var known = transfers.Where(t => existing.ContainsKey(t.Id) || committedHere.ContainsKey(t.Id)).ToList();
            if (known.Count > 0)
            {
                var identical = known.Count == transfers.Count
                    && transfers.All(t => SameContent(existing.TryGetValue(t.Id, out var stored) ? stored : committedHere[t.Id], t, batchId));
                results[i] = identical
                    ? new LedgerResult(LedgerStatus.AlreadyCommitted)
                    : LedgerResult.Reject(LedgerRejection.IdReusedWithDifferentContent, $"Transfer id(s) {string.Join(", ", known.Select(t => t.Id))} already used with different content.");
                continue;
            }

            var accountRefs = transfers.SelectMany(t => new[] { t.Debit, t.Credit }).DistinctBy(a => a.Id).OrderBy(a => a.Id, StringComparer.Ordinal).ToList();
            var projection = new LedgerProjection { StoredStatements = storedStatements };
            var commandAppends = new List<StreamAppend>();
            var events = new List<LedgerEvent>();
            foreach (var account in accountRefs)
            {
                if (state.Accounts.TryGetValue(account.Id, out var row))
                {
                    projection.Accounts[account.Id] = row.Clone();
                    continue;
                }

                var opened = new AccountOpened(account.Id, AccountRef.KindName(account.Kind), account.Owner, account.Currency, (int)account.Flags);
                events.Add(opened);
                commandAppends.Add(new StreamAppend(LedgerEvent.AccountStream(account.Id), "account", ExpectedVersion.NoStream, [ToNewEvent(opened, metadata)]));
            }

            foreach (var transfer in transfers)
            {
                var committed = new TransferCommitted(
                    transfer.Id,
                    transfer.Debit.Id,
                    transfer.Credit.Id,
                    transfer.Amount,
                    transfer.Debit.Currency,
                    transfer.Code.ToString(),
                    transfer.Pending,
                    batchId,
                    transfer.Reference);
                events.Add(committed);
                commandAppends.Add(new StreamAppend(LedgerEvent.TransferStream(transfer.Id), "transfer", ExpectedVersion.NoStream, [ToNewEvent(committed, metadata)]));
            }

            LedgerResult? rejection = null;
            foreach (var ledgerEvent in events)
            {
                rejection = projection.Apply(ledgerEvent, metadata.Timestamp);
                if (rejection is not null)
                {
                    break;
                }
            }

            if (rejection is not null)
            {
                results[i] = rejection;
                continue;
            }

            foreach (var id in projection.TouchedAccounts)
            {
                state.Accounts[id] = projection.Accounts[id];
                touched.Add(id);
            }

            foreach (var id in projection.NewTransfers)
            {
                committedHere[id] = projection.Transfers[id];
            }

            foreach (var (key, delta) in projection.Statements)
            {
                statementDeltas[key] = statementDeltas.TryGetValue(key, out var sum) ? sum.Add(delta) : delta;
                // The next command in this group is checked against what will be stored with this one.
                storedStatements[key] = (storedStatements.GetValueOrDefault(key) ?? StatementTotals.Zero).Add(delta);
            }

            appends.AddRange(commandAppends);
            outbox.AddRange((options?.Publish ?? []).Select(message => OutboxInsert(message, metadata)));
            results[i] = new LedgerResult(LedgerStatus.Committed);
        }

        if (appends.Count > 0)
        {
            var merged = new LedgerProjection();
            foreach (var id in touched)
            {
                merged.Accounts[id] = state.Accounts[id];
                merged.TouchedAccounts.Add(id);
            }

            foreach (var (id, transfer) in committedHere)
            {
                merged.Transfers[id] = transfer;
                merged.NewTransfers.Add(id);
            }

            foreach (var (key, delta) in statementDeltas)
            {
                merged.Statements[key] = delta;
            }

            await WriteAsync(transaction, merged, appends, outbox, commit, cancellationToken).ConfigureAwait(false);
        }
        else if (commit)
        {
            // Nothing to write (every command was a replay or rejected): end the read-only transaction.
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        return results;
    }

    private async Task<LedgerResult> ResolveCoreAsync(
        DbTransaction transaction,
        Guid transferId,
        bool post,
        EventMetadata metadata,
        LedgerCommandOptions? options,
        CancellationToken cancellationToken)
    {
        var loaded = await LoadAsync(transaction, TransfersQuery([transferId], forUpdate: true), AccountsQuery([]), StatementsQuery([]), new LedgerProjection(), null, cancellationToken).ConfigureAwait(false);
        if (!loaded.TryGetValue(transferId, out var transfer))
        {
            return LedgerResult.Reject(LedgerRejection.PendingNotFound, $"No transfer {transferId}.");
        }

        if (!transfer.Pending)
        {
            return LedgerResult.Reject(LedgerRejection.NotPending, $"Transfer {transferId} was not pending.");
        }

        var wanted = post ? TransferState.PendingPosted : TransferState.PendingVoided;
        if (transfer.State == wanted)
        {
            return new LedgerResult(LedgerStatus.AlreadyCommitted);
        }

        if (transfer.State != TransferState.Pending)
        {
            return LedgerResult.Reject(LedgerRejection.PendingAlreadyResolved, $"Transfer {transferId} is already {transfer.State}.");
        }

        var storedStatements = new Dictionary<StatementKey, StatementTotals>();
        var projection = new LedgerProjection { StoredStatements = storedStatements };
        projection.Transfers[transferId] = transfer;
        var statementKeys = StatementKeys([AccountRef.Parse(transfer.DebitAccountId), AccountRef.Parse(transfer.CreditAccountId)], metadata.Timestamp);
        await LoadAsync(transaction, TransfersQuery([], forUpdate: false), AccountsQuery([transfer.DebitAccountId, transfer.CreditAccountId]), StatementsQuery(statementKeys), projection, storedStatements, cancellationToken).ConfigureAwait(false);
        LedgerEvent resolution = post ? new PendingTransferPosted(transferId) : new PendingTransferVoided(transferId);
        if (projection.Apply(resolution, metadata.Timestamp) is { } rejection)
        {
            return rejection;
        }

        // The transfer stream holds exactly its commit; a second resolution would find version 2.
        var append = new StreamAppend(LedgerEvent.TransferStream(transferId), "transfer", ExpectedVersion.Exactly(1), [ToNewEvent(resolution, metadata)]);
        var outbox = (options?.Publish ?? []).Select(message => OutboxInsert(message, metadata)).ToList();
        await WriteAsync(transaction, projection, [append], outbox, commit: false, cancellationToken).ConfigureAwait(false);
        return new LedgerResult(LedgerStatus.Committed);
    }

    private static bool SameContent(TransferRecord stored, TransferRequest request, Guid? batchId) =>
        stored.DebitAccountId == request.Debit.Id
        && stored.CreditAccountId == request.Credit.Id
        && stored.Amount == request.Amount
        && stored.Currency == request.Debit.Currency
        && stored.Code == request.Code
        && stored.Pending == request.Pending
        && stored.BatchId == batchId
        && stored.Reference == request.Reference;

    private static NewEvent ToNewEvent(LedgerEvent ledgerEvent, EventMetadata metadata) =>
        // Time-ordered ids: the unique index on event ids grows at its right edge instead of at random pages.
        new(Guid.CreateVersion7(metadata.Timestamp), ledgerEvent.TypeName, ledgerEvent.ToJson(), metadata);

    private async Task WriteAsync(
        DbTransaction transaction,
        LedgerProjection projection,
        IReadOnlyList<StreamAppend> appends,
        IReadOnlyList<SqlStatement> outbox,
        bool commit,
        CancellationToken cancellationToken)
    {
        var statements = new List<SqlStatement>();
        var accounts = projection.TouchedAccounts.Order(StringComparer.Ordinal).Select(id => projection.Accounts[id]).ToList();
        var transfers = projection.NewTransfers.Select(id => projection.Transfers[id]).ToList();
        if (_backend.SupportsArrayParameters && accounts.Count(a => a.Loaded) > 1)
        {
            statements.Add(UpdateAccounts(accounts.Where(a => a.Loaded).ToList()));
            statements.AddRange(accounts.Where(a => !a.Loaded).Select(UpsertAccount));
        }
        else
        {
            statements.AddRange(accounts.Select(a => a.Loaded ? UpdateAccount(a) : UpsertAccount(a)));
        }

        if (_backend.SupportsArrayParameters && transfers.Count > 1)
        {
            statements.Add(InsertTransfers(transfers));
        }
        else
        {
            statements.AddRange(transfers.Select(InsertTransfer));
        }

        foreach (var id in projection.ResolvedTransfers.Where(id => !projection.NewTransfers.Contains(id)))
        {
            var transfer = projection.Transfers[id];
            statements.Add(new SqlStatement(
                $"UPDATE {_backend.Table("transfers")} SET state = @state, resolved_at = @resolved WHERE id = @id",
                ("state", transfer.State.ToString()),
                ("resolved", transfer.ResolvedAt is { } resolved ? Time.ToUnixMicroseconds(resolved) : null),
                ("id", transfer.Id.ToString())));
        }

        // Key order, so two transactions never take statement rows in opposite orders.
        var statementRows = projection.Statements
            .OrderBy(p => p.Key.Seller, StringComparer.Ordinal).ThenBy(p => p.Key.Currency, StringComparer.Ordinal).ThenBy(p => p.Key.Period, StringComparer.Ordinal)
            .ToList();
        if (_backend.SupportsArrayParameters && statementRows.Count > 1)
        {
            statements.Add(UpsertStatements(statementRows));
        }
        else
        {
            statements.AddRange(statementRows.Select(row => UpsertStatement(row.Key, row.Value)));
        }

        statements.AddRange(outbox);

        await _backend.WriteAsync(transaction, appends, statements, commit, cancellationToken).ConfigureAwait(false);
    }

    private const string StatementConflict = """
        ON CONFLICT (seller, currency, period) DO UPDATE SET
            earned = st.earned + excluded.earned, held = st.held + excluded.held, paid = st.paid + excluded.paid
        """;

    private SqlStatement UpsertStatement(StatementKey key, StatementTotals delta) => new(
        $"""
        INSERT INTO {_backend.Table("seller_statements")} AS st (seller, currency, period, earned, held, paid)
        VALUES (@seller, @currency, @period, @earned, @held, @paid)
        {StatementConflict}
        """,
        ("seller", key.Seller), ("currency", key.Currency), ("period", key.Period),
        ("earned", delta.Earned), ("held", delta.Held), ("paid", delta.Paid));

    /// <summary>Every seller's statement delta in one statement (PostgreSQL arrays); keys are distinct, so no row is hit twice.</summary>
    private SqlStatement UpsertStatements(IReadOnlyList<KeyValuePair<StatementKey, StatementTotals>> rows) => new(
        $"""
        INSERT INTO {_backend.Table("seller_statements")} AS st (seller, currency, period, earned, held, paid)
        SELECT * FROM unnest(@seller, @currency, @period, @earned, @held, @paid)
        {StatementConflict}
        """,
        ("seller", rows.Select(r => r.Key.Seller).ToArray()),
        ("currency", rows.Select(r => r.Key.Currency).ToArray()),
        ("period", rows.Select(r => r.Key.Period).ToArray()),
        ("earned", rows.Select(r => r.Value.Earned).ToArray()),
        ("held", rows.Select(r => r.Value.Held).ToArray()),
        ("paid", rows.Select(r => r.Value.Paid).ToArray()));

    internal SqlStatement UpsertAccount(AccountRow account) => new(
        $"""
        INSERT INTO {_backend.Table("accounts")} ({AccountColumns})
        VALUES (@id, @kind, @owner, @currency, @flags, @dpend, @dpost, @cpend, @cpost)
        ON CONFLICT (id) DO UPDATE SET
            debits_pending = excluded.debits_pending, debits_posted = excluded.debits_posted,
            credits_pending = excluded.credits_pending, credits_posted = excluded.credits_posted
        """,
        ("id", account.Id), ("kind", AccountRef.KindName(account.Kind)), ("owner", account.Owner), ("currency", account.Currency),
        ("flags", (int)account.Flags), ("dpend", account.DebitsPending), ("dpost", account.DebitsPosted),
        ("cpend", account.CreditsPending), ("cpost", account.CreditsPosted));

    /// <summary>A row this transaction read and locked: a plain UPDATE is cheaper than an upsert.</summary>
    private SqlStatement UpdateAccount(AccountRow account) => new(
        $"UPDATE {_backend.Table("accounts")} SET debits_pending = @dpend, debits_posted = @dpost, credits_pending = @cpend, credits_posted = @cpost WHERE id = @id",
        ("dpend", account.DebitsPending), ("dpost", account.DebitsPosted), ("cpend", account.CreditsPending), ("cpost", account.CreditsPosted), ("id", account.Id));

    /// <summary>Many locked rows in one statement (PostgreSQL arrays).</summary>
    private SqlStatement UpdateAccounts(IReadOnlyList<AccountRow> accounts) => new(
        $"""
        UPDATE {_backend.Table("accounts")} AS a SET
            debits_pending = u.dpend, debits_posted = u.dpost, credits_pending = u.cpend, credits_posted = u.cpost
        FROM unnest(@ids, @dpend, @dpost, @cpend, @cpost) AS u(id, dpend, dpost, cpend, cpost)
        WHERE a.id = u.id
        """,
        ("ids", accounts.Select(a => a.Id).ToArray()),
        ("dpend", accounts.Select(a => a.DebitsPending).ToArray()),
        ("dpost", accounts.Select(a => a.DebitsPosted).ToArray()),
        ("cpend", accounts.Select(a => a.CreditsPending).ToArray()),
        ("cpost", accounts.Select(a => a.CreditsPosted).ToArray()));

    private SqlStatement InsertTransfers(IReadOnlyList<TransferRecord> transfers) => new(
        $"""
        INSERT INTO {_backend.Table("transfers")} ({TransferColumns})
        SELECT * FROM unnest(@id, @debit, @credit, @amount, @currency, @code, @pending, @state, @batch, @reference, @created, @resolved)
        """,
        ("id", transfers.Select(t => t.Id.ToString()).ToArray()),
        ("debit", transfers.Select(t => t.DebitAccountId).ToArray()),
        ("credit", transfers.Select(t => t.CreditAccountId).ToArray()),
        ("amount", transfers.Select(t => t.Amount).ToArray()),
        ("currency", transfers.Select(t => t.Currency).ToArray()),
        ("code", transfers.Select(t => t.Code.ToString()).ToArray()),
        ("pending", transfers.Select(t => t.Pending ? 1 : 0).ToArray()),
        ("state", transfers.Select(t => t.State.ToString()).ToArray()),
        ("batch", transfers.Select(t => t.BatchId?.ToString()).ToArray()),
        ("reference", transfers.Select(t => t.Reference).ToArray()),
        ("created", transfers.Select(t => Time.ToUnixMicroseconds(t.CreatedAt)).ToArray()),
        ("resolved", transfers.Select(t => t.ResolvedAt is { } r ? Time.ToUnixMicroseconds(r) : (long?)null).ToArray()));

    internal SqlStatement InsertTransfer(TransferRecord transfer) => new(
        $"""
        INSERT INTO {_backend.Table("transfers")} ({TransferColumns})
        VALUES (@id, @debit, @credit, @amount, @currency, @code, @pending, @state, @batch, @reference, @created, @resolved)
        """,
        ("id", transfer.Id.ToString()), ("debit", transfer.DebitAccountId), ("credit", transfer.CreditAccountId),
        ("amount", transfer.Amount), ("currency", transfer.Currency), ("code", transfer.Code.ToString()),
        ("pending", transfer.Pending ? 1 : 0), ("state", transfer.State.ToString()), ("batch", transfer.BatchId?.ToString()),
        ("reference", transfer.Reference), ("created", Time.ToUnixMicroseconds(transfer.CreatedAt)),
        ("resolved", transfer.ResolvedAt is { } resolved ? Time.ToUnixMicroseconds(resolved) : null));

    internal static SqlStatement StatementInsert(StorageBackend backend, StatementKey key, StatementTotals totals) => new(
        $"INSERT INTO {backend.Table("seller_statements")} (seller, currency, period, earned, held, paid) VALUES (@seller, @currency, @period, @earned, @held, @paid)",
        ("seller", key.Seller), ("currency", key.Currency), ("period", key.Period),
        ("earned", totals.Earned), ("held", totals.Held), ("paid", totals.Paid));

    private SqlStatement OutboxInsert(object message, EventMetadata metadata)
    {
        var type = message.GetType();
        var headers = JsonSerializer.Serialize(new Dictionary<string, string?>
        {
            ["correlationId"] = metadata.CorrelationId,
            ["causationId"] = metadata.CausationId,
            ["actor"] = metadata.Actor,
        });
        return new SqlStatement(
            $"INSERT INTO {_backend.Table("outbox")} (id, type, payload, headers, created_at) VALUES (@id, @type, {_backend.Json("@payload")}, {_backend.Json("@headers")}, @created)",
            ("id", Guid.NewGuid().ToString()),
            ("type", type.FullName ?? type.Name),
            ("payload", JsonSerializer.Serialize(message, type, IntegrationJson)),
            ("headers", headers),
            ("created", Time.ToUnixMicroseconds(metadata.Timestamp)));
    }

    /// <summary>"id IN (...)" as one reusable statement text: an array on PostgreSQL (so it is prepared once), a list on SQLite.</summary>
    private (string Condition, (string Name, object? Value)[] Parameters) IdsIn(string prefix, IReadOnlyList<string> ids, string column = "id")
    {
        if (_backend.SupportsArrayParameters)
        {
            return ($"{column} = ANY(@{prefix})", [(prefix, ids.ToArray())]);
        }

        var parameters = ids.Select((id, i) => ($"{prefix}{i}", (object?)id)).ToArray();
        return ($"{column} IN ({string.Join(", ", parameters.Select(p => "@" + p.Item1))})", parameters);
    }

    /// <summary>The statement rows that transfers between these accounts, committed at <paramref name="timestamp"/>, may add to.</summary>
    private static IEnumerable<StatementKey> StatementKeys(IEnumerable<AccountRef> accounts, DateTimeOffset timestamp)
    {
        var period = LedgerProjection.Period(timestamp);
        return accounts.Where(a => StatementTotals.IsSellerKind(a.Kind)).Select(a => new StatementKey(a.Owner, a.Currency, period));
    }

    /// <summary>
    /// The stored statement rows for these keys (a superset: seller in the sellers and period in the
    /// periods), locked in key order like accounts, so the overflow check sees what the write will add to.
    /// </summary>
    private SqlStatement StatementsQuery(IEnumerable<StatementKey> keys)
    {
        var distinct = keys.Distinct().ToList();
        var (sellers, sellerParameters) = IdsIn("ss", distinct.Select(k => k.Seller).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(), "seller");
        var (periods, periodParameters) = IdsIn("sp", distinct.Select(k => k.Period).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(), "period");
        return new SqlStatement(
            $"SELECT seller, currency, period, earned, held, paid FROM {_backend.Table("seller_statements")} WHERE {sellers} AND {periods} ORDER BY seller, currency, period{_backend.ForUpdate}",
            [.. sellerParameters, .. periodParameters]);
    }

    private SqlStatement TransfersQuery(IReadOnlyList<Guid> ids, bool forUpdate)
    {
        var (condition, parameters) = IdsIn("t", ids.Select(id => id.ToString()).ToList());
        return new SqlStatement($"SELECT {TransferColumns} FROM {_backend.Table("transfers")} WHERE {condition}{(forUpdate ? _backend.ForUpdate : "")}", parameters);
    }

    private SqlStatement AccountsQuery(IEnumerable<string> ids)
    {
        // Locking in id order means two transactions over the same accounts queue instead of deadlocking.
        var (condition, parameters) = IdsIn("a", ids.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList());
        return new SqlStatement($"SELECT {AccountColumns} FROM {_backend.Table("accounts")} WHERE {condition} ORDER BY id{_backend.ForUpdate}", parameters);
    }

    /// <summary>Existing transfers, the locked accounts and statement rows, in one round trip where the backend can batch.</summary>
    private async Task<Dictionary<Guid, TransferRecord>> LoadAsync(
        DbTransaction transaction,
        SqlStatement transfersQuery,
        SqlStatement accountsQuery,
        SqlStatement statementsQuery,
        LedgerProjection projection,
        Dictionary<StatementKey, StatementTotals>? statements,
        CancellationToken cancellationToken)
    {
        var transfers = new Dictionary<Guid, TransferRecord>();
        await _backend.QueryAsync(transaction, [transfersQuery, accountsQuery, statementsQuery], async (index, reader, ct) =>
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                switch (index)
                {
                    case 0:
                        var transfer = ReadTransfer(reader);
                        transfers[transfer.Id] = transfer;
                        break;
                    case 1:
                        var account = ReadAccount(reader);
                        projection.Accounts[account.Id] = account;
                        break;
                    default:
                        if (statements is not null)
                        {
                            statements[new StatementKey(reader.GetString(0), reader.GetString(1), reader.GetString(2))] =
                                new StatementTotals(reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5));
                        }

                        break;
                }
            }
        }, cancellationToken).ConfigureAwait(false);
        return transfers;
    }

    internal static AccountRow ReadAccount(DbDataReader reader) => new()
    {
        Id = reader.GetString(0),
        Kind = AccountRef.ParseKind(reader.GetString(1)),
        Owner = reader.GetString(2),
        Currency = reader.GetString(3),
        Flags = (AccountFlags)reader.GetInt32(4),
        DebitsPending = reader.GetInt64(5),
        DebitsPosted = reader.GetInt64(6),
        CreditsPending = reader.GetInt64(7),
        CreditsPosted = reader.GetInt64(8),
        Loaded = true,
    };

    internal static TransferRecord ReadTransfer(DbDataReader reader) => new(
        Guid.Parse(reader.GetString(0)),
        reader.GetString(1),
        reader.GetString(2),
        reader.GetInt64(3),
        reader.GetString(4),
        Enum.Parse<TransferCode>(reader.GetString(5)),
        reader.GetInt32(6) != 0,
        Enum.Parse<TransferState>(reader.GetString(7)),
        reader.IsDBNull(8) ? null : Guid.Parse(reader.GetString(8)),
        reader.IsDBNull(9) ? null : reader.GetString(9),
        Time.FromUnixMicroseconds(reader.GetInt64(10)),
        reader.IsDBNull(11) ? null : Time.FromUnixMicroseconds(reader.GetInt64(11)));

    public async Task<TransferRecord?> GetTransferAsync(Guid transferId, CancellationToken cancellationToken = default)
    {
        await using var connection = await _backend.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = StorageBackend.CreateCommand(
            connection,
            $"SELECT {TransferColumns} FROM {_backend.Table("transfers")} WHERE id = @id",
            ("id", transferId.ToString()));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadTransfer(reader) : null;
    }

    public async Task<IReadOnlyList<AccountBalance>> GetBalancesAsync(string? accountIdPrefix = null, CancellationToken cancellationToken = default)
    {
        var prefix = accountIdPrefix ?? string.Empty;
        await using var connection = await _backend.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = StorageBackend.CreateCommand(
            connection,
            $"SELECT {AccountColumns} FROM {_backend.Table("accounts")} WHERE substr(id, 1, length(@prefix)) = @prefix ORDER BY id",
            ("prefix", prefix));
        var balances = new List<AccountBalance>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            balances.Add(ReadAccount(reader).ToBalance());
        }

        return balances;
    }

    public async Task<SellerStatement> GetSellerStatementAsync(string sellerId, string period, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(sellerId);
        if (!DateTime.TryParseExact(period, "yyyy-MM", CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
        {
            throw new ArgumentException($"Period '{period}' is not a month written yyyy-MM.", nameof(period));
        }

        await using var connection = await _backend.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = StorageBackend.CreateCommand(
            connection,
            $"SELECT currency, earned, held, paid FROM {_backend.Table("seller_statements")} WHERE seller = @seller AND period = @period ORDER BY currency",
            ("seller", sellerId),
            ("period", period));
        var lines = new List<SellerStatementLine>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            lines.Add(new SellerStatementLine(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3)));
        }

        return new SellerStatement(sellerId, period, lines);
    }
}
