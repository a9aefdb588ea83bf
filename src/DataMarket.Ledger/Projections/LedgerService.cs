using System.Globalization;
using System.Text.Json;
using DataMarket.Ledger.Events;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Storage;

namespace DataMarket.Ledger.Projections;

/// <summary>
/// Runs each command in one unit of work (a Marten session on PostgreSQL, a write transaction on SQLite):
/// inbox check, idempotency check and the rows it touches read together, the shared fold, then events,
/// projections, inbox receipt and outbox messages committed together. Lost races are retried from the top.
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
            async (work, metadata, ct) => (await CommitManyAsync(work, [new CommitCommand(transfers, options, metadata)], options?.Inbox, ct).ConfigureAwait(false)).Results[0],
            cancellationToken);
    }

    public Task<LedgerResult> PostPendingAsync(Guid pendingTransferId, LedgerCommandOptions? options = null, CancellationToken cancellationToken = default) =>
        ResolveAsync(pendingTransferId, post: true, options, cancellationToken);

    public Task<LedgerResult> VoidPendingAsync(Guid pendingTransferId, LedgerCommandOptions? options = null, CancellationToken cancellationToken = default) =>
        ResolveAsync(pendingTransferId, post: false, options, cancellationToken);

    public async Task<IReadOnlyList<LedgerResult>> ResolvePendingAsync(IReadOnlyList<PendingTransferAction> actions, LedgerCommandOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(actions);
        if (options?.Inbox is not null)
        {
            throw new ArgumentException("An inbox receipt stands for one command; resolve a message's pending transfer with PostPendingAsync or VoidPendingAsync.", nameof(options));
        }

        if (actions.Count == 0)
        {
            return [];
        }

        // One read for all of them (one read each would take as many pooled connections as there are payouts).
        var known = await GetTransfersAsync(actions.Select(a => a.PendingTransferId).ToArray(), cancellationToken).ConfigureAwait(false);
        return await Task.WhenAll(actions.Select(a => ResolveAsync(a.PendingTransferId, a.Post, known.GetValueOrDefault(a.PendingTransferId), options, cancellationToken))).ConfigureAwait(false);
    }

    private async Task<LedgerResult> ResolveAsync(Guid transferId, bool post, LedgerCommandOptions? options, CancellationToken cancellationToken) =>
        await ResolveAsync(
            transferId,
            post,
            options?.Inbox is null && _batcher is not null ? await _backend.FindTransferAsync(transferId, cancellationToken).ConfigureAwait(false) : null,
            options,
            cancellationToken).ConfigureAwait(false);

    /// <param name="known">The transfer as read before (null when not read, or not found).</param>
    private Task<LedgerResult> ResolveAsync(Guid transferId, bool post, TransferRecord? known, LedgerCommandOptions? options, CancellationToken cancellationToken)
    {
        if (options?.Inbox is null && _batcher is not null && known is not null)
        {
            if (Settled(known, post) is { } settled)
            {
                // A resolved transfer never changes again: the answer needs no transaction.
                return Task.FromResult(settled);
            }

            // Payouts all post into one payouts_in_transit account: one transaction each would queue on its row, so
            // they share group commits with each other and with commits (the group decides on the transfer as read here,
            // and reads it again only if the save finds it resolved meanwhile).
            return _batcher.ResolveAsync(new PendingResolution(known, post), options, cancellationToken);
        }

        // With an inbox row (checked first, in the same transaction), or a transfer not seen yet: a transaction of its own.
        return RunAsync(options, (work, metadata, ct) => ResolveCoreAsync(work, transferId, post, metadata, options, ct), cancellationToken);
    }

    /// <summary>The answer for a transfer that is not (or no longer) pending; null while it is.</summary>
    private static LedgerResult? Settled(TransferRecord transfer, bool post)
    {
        if (!transfer.Pending)
        {
            return LedgerResult.Reject(LedgerRejection.NotPending, $"Transfer {transfer.Id} was not pending.");
        }

        if (transfer.State == (post ? TransferState.PendingPosted : TransferState.PendingVoided))
        {
            return new LedgerResult(LedgerStatus.AlreadyCommitted);
        }

        return transfer.State != TransferState.Pending
            ? LedgerResult.Reject(LedgerRejection.PendingAlreadyResolved, $"Transfer {transfer.Id} is already {transfer.State}.")
            : null;
    }

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

    /// <summary>Group-commit timings (empty where commands are not grouped).</summary>
    internal CommitStatistics Statistics => _batcher?.Statistics ?? new CommitStatistics();

    private async Task<LedgerResult> RunAsync(
        LedgerCommandOptions? options,
        Func<ILedgerUnitOfWork, EventMetadata, CancellationToken, Task<LedgerResult>> body,
        CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var metadata = NewMetadata(options);
            await using var work = await _backend.BeginUnitOfWorkAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var inbox = options?.Inbox;
                var result = await body(work, metadata, cancellationToken).ConfigureAwait(false);
                if (result.Status == LedgerStatus.DuplicateMessage)
                {
                    return result;
                }

                var keepReceipt = inbox is not null && ConsumesMessage(result);
                if (result.Status is LedgerStatus.Rejected or LedgerStatus.AlreadyCommitted && !keepReceipt)
                {
                    // Nothing was written; disposing the unit discards it.
                    return result;
                }

                if (inbox is not null)
                {
                    // A rejected command wrote nothing, but its message is still consumed (with the rejection): a
                    // redelivery must not succeed just because balances moved in between.
                    work.RecordInbox(inbox, metadata.Timestamp, result.Status == LedgerStatus.Rejected ? result : null);
                }

                await work.CommitAsync(cancellationToken).ConfigureAwait(false);
                return result;
            }
            catch (Exception exception) when (attempt < MaxAttempts && _backend.IsTransient(exception))
            {
                // Lost a race (a stream, account or receipt written concurrently, a stale revision, busy): start over.
                await Task.Delay(Random.Shared.Next(1, 1 + Math.Min(50, 1 << Math.Min(attempt, 6))), cancellationToken).ConfigureAwait(false);
            }
        }
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

    /// <summary>A redelivery's answer: DuplicateMessage, carrying the first delivery's rejection if it was rejected.</summary>
    private static LedgerResult Duplicate(InboxOutcome first) => first.Rejection is { } rejection
        ? new LedgerResult(LedgerStatus.DuplicateMessage, rejection, $"The first delivery was rejected: {first.Detail}")
        : new LedgerResult(LedgerStatus.DuplicateMessage);

    /// <summary>
    /// Decides several independent commands in one unit of work (group commit) and queues their writes;
    /// the caller commits when <c>Wrote</c>. Each command is its own all-or-nothing unit: it is applied to a
    /// copy of the rows it touches and merged only if no rule breaks, so one rejected command never
    /// affects another. Commands are applied, and their events appended, in order, so a replay of the log
    /// reaches the same decisions.
    /// </summary>
    internal async Task<(LedgerResult[] Results, bool Wrote, long LoadTicks)> CommitManyAsync(ILedgerUnitOfWork work, IReadOnlyList<CommitCommand> commands, InboxReceipt? inbox, CancellationToken cancellationToken, bool optimistic = false)
    {
        var allIds = commands.SelectMany(c => c.Transfers.Select(t => t.Id))
            .Concat(commands.Where(c => c.Resolution is not null).Select(c => c.Resolution!.TransferId)).Distinct().ToArray();
        var accountIds = commands.SelectMany(c => AccountsOf(c).Select(a => a.Id)).Distinct(StringComparer.Ordinal).ToArray();
        var statementKeys = commands.SelectMany(c => StatementKeys(AccountsOf(c), c.Metadata.Timestamp)).Distinct().ToArray();
        var loading = System.Diagnostics.Stopwatch.GetTimestamp();
        // Posts and voids decide optimistically on the pending transfer as read before they were queued; the save's
        // expected stream version (1: committed, not yet resolved) refuses one that was resolved meanwhile.
        optimistic = optimistic && inbox is null;
        var rows = await work.LoadAsync(new LedgerKeys(allIds, accountIds, statementKeys, inbox, optimistic), cancellationToken).ConfigureAwait(false);
        var loadTicks = System.Diagnostics.Stopwatch.GetTimestamp() - loading;
        if (rows.Inbox is { } seen)
        {
            return (commands.Select(_ => Duplicate(seen)).ToArray(), false, loadTicks);
        }

        var existing = rows.Transfers;
        var state = new LedgerProjection();
        foreach (var (id, account) in rows.Accounts)
        {
            state.Accounts[id] = account;
        }

        var storedStatements = rows.Statements;
        var loadedStatements = new Dictionary<StatementKey, StatementTotals>(storedStatements);
        var committedHere = new Dictionary<Guid, TransferRecord>();
        var resolvedHere = new Dictionary<Guid, TransferRecord>();
        var touched = new HashSet<string>(StringComparer.Ordinal);
        var statementDeltas = new Dictionary<StatementKey, StatementTotals>();
        var appends = new List<StreamAppend>();
        var outbox = new List<OutboxEntry>();
        var results = new LedgerResult[commands.Count];

        for (var i = 0; i < commands.Count; i++)
        {
            var (transfers, options, metadata) = commands[i];
            if (commands[i].Resolution is { } resolution)
            {
                // Decided on what this transaction read, after the commands before it in the group.
                var pending = resolvedHere.GetValueOrDefault(resolution.TransferId)
                    ?? existing.GetValueOrDefault(resolution.TransferId)
                    ?? (rows.Optimistic ? resolution.Known : null);
                if (pending is null)
                {
                    results[i] = LedgerResult.Reject(LedgerRejection.PendingNotFound, $"No transfer {resolution.TransferId}.");
                    continue;
                }

                if (Settled(pending, resolution.Post) is { } settled)
                {
                    results[i] = settled;
                    continue;
                }

                var resolving = new LedgerProjection { StoredStatements = storedStatements };
                resolving.Transfers[pending.Id] = pending;
                foreach (var id in new[] { pending.DebitAccountId, pending.CreditAccountId })
                {
                    resolving.Accounts[id] = state.Accounts.TryGetValue(id, out var row)
                        ? row.Clone()
                        : throw new InvalidOperationException($"Transfer {pending.Id} names account {id}, which is not stored.");
                }

                LedgerEvent resolutionEvent = resolution.Post ? new PendingTransferPosted(pending.Id) : new PendingTransferVoided(pending.Id);
                if (resolving.Apply(resolutionEvent, metadata.Timestamp) is { } refused)
                {
                    results[i] = refused;
                    continue;
                }

                Merge(resolving);
                resolvedHere[pending.Id] = resolving.Transfers[pending.Id];
                // The transfer stream holds exactly its commit; a second resolution would find version 2.
                appends.Add(new StreamAppend(LedgerEvent.TransferStream(pending.Id), "transfer", ExpectedVersion.Exactly(1), [ToNewEvent(resolutionEvent, metadata)]));
                outbox.AddRange((options?.Publish ?? []).Select(message => ToOutboxEntry(message, metadata)));
                results[i] = new LedgerResult(LedgerStatus.Committed);
                continue;
            }

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

            Merge(projection);
            foreach (var id in projection.NewTransfers)
            {
                committedHere[id] = projection.Transfers[id];
            }

            appends.AddRange(commandAppends);
            outbox.AddRange((options?.Publish ?? []).Select(message => ToOutboxEntry(message, metadata)));
            results[i] = new LedgerResult(LedgerStatus.Committed);
        }

        if (rows.Optimistic && results.Any(r => r.Status != LedgerStatus.Committed))
        {
            // A refusal (or an id seen as used) must rest on fresh rows, not on this process's cached ones.
            throw new OptimisticReadRefusedException();
        }

        if (appends.Count == 0)
        {
            return (results, false, loadTicks);
        }

        foreach (var append in appends)
        {
            work.Append(append);
        }

        // Id and key order: the same order in every writer, whatever order the commands came in.
        foreach (var id in touched.Order(StringComparer.Ordinal))
        {
            work.PutAccount(state.Accounts[id]);
        }

        foreach (var transfer in committedHere.Values)
        {
            work.InsertTransfer(transfer);
        }

        foreach (var transfer in resolvedHere.Values)
        {
            work.UpdateTransfer(transfer);
        }

        WriteStatements(work, statementDeltas, loadedStatements);
        foreach (var entry in outbox)
        {
            work.AddOutbox(entry);
        }

        return (results, true, loadTicks);

        // A command that passed its rules: its accounts and statement deltas become what the next command sees.
        void Merge(LedgerProjection applied)
        {
            foreach (var id in applied.TouchedAccounts)
            {
                state.Accounts[id] = applied.Accounts[id];
                touched.Add(id);
            }

            foreach (var (key, delta) in applied.Statements)
            {
                statementDeltas[key] = statementDeltas.TryGetValue(key, out var sum) ? sum.Add(delta) : delta;
                // The next command in this group is checked against what will be stored with this one.
                storedStatements[key] = (storedStatements.GetValueOrDefault(key) ?? StatementTotals.Zero).Add(delta);
            }
        }
    }

    private static void WriteStatements(ILedgerUnitOfWork work, Dictionary<StatementKey, StatementTotals> deltas, IReadOnlyDictionary<StatementKey, StatementTotals> loaded)
    {
        foreach (var (key, delta) in deltas.OrderBy(p => p.Key.Seller, StringComparer.Ordinal).ThenBy(p => p.Key.Currency, StringComparer.Ordinal).ThenBy(p => p.Key.Period, StringComparer.Ordinal))
        {
            // Checked already: the fold refused (Overflow) any delta whose sum with the stored row passes 64 bits.
            work.PutStatement(key, delta, (loaded.GetValueOrDefault(key) ?? StatementTotals.Zero).Add(delta));
        }
    }

    private async Task<LedgerResult> ResolveCoreAsync(
        ILedgerUnitOfWork work,
        Guid transferId,
        bool post,
        EventMetadata metadata,
        LedgerCommandOptions? options,
        CancellationToken cancellationToken)
    {
        var loaded = await work.LoadAsync(LedgerKeys.ForTransfers([transferId]) with { Inbox = options?.Inbox }, cancellationToken).ConfigureAwait(false);
        if (loaded.Inbox is { } seen)
        {
            return Duplicate(seen);
        }

        if (!loaded.Transfers.TryGetValue(transferId, out var transfer))
        {
            return LedgerResult.Reject(LedgerRejection.PendingNotFound, $"No transfer {transferId}.");
        }

        if (Settled(transfer, post) is { } settled)
        {
            return settled;
        }

        var statementKeys = StatementKeys([AccountRef.Parse(transfer.DebitAccountId), AccountRef.Parse(transfer.CreditAccountId)], metadata.Timestamp).Distinct().ToArray();
        var rows = await work.LoadAsync(new LedgerKeys([], [transfer.DebitAccountId, transfer.CreditAccountId], statementKeys), cancellationToken).ConfigureAwait(false);
        var loadedStatements = new Dictionary<StatementKey, StatementTotals>(rows.Statements);
        var projection = new LedgerProjection { StoredStatements = rows.Statements };
        projection.Transfers[transferId] = transfer;
        foreach (var (id, account) in rows.Accounts)
        {
            projection.Accounts[id] = account;
        }

        LedgerEvent resolution = post ? new PendingTransferPosted(transferId) : new PendingTransferVoided(transferId);
        if (projection.Apply(resolution, metadata.Timestamp) is { } rejection)
        {
            return rejection;
        }

        // The transfer stream holds exactly its commit; a second resolution would find version 2.
        work.Append(new StreamAppend(LedgerEvent.TransferStream(transferId), "transfer", ExpectedVersion.Exactly(1), [ToNewEvent(resolution, metadata)]));
        foreach (var id in projection.TouchedAccounts.Order(StringComparer.Ordinal))
        {
            work.PutAccount(projection.Accounts[id]);
        }

        work.UpdateTransfer(projection.Transfers[transferId]);
        WriteStatements(work, projection.Statements, loadedStatements);
        foreach (var message in options?.Publish ?? [])
        {
            work.AddOutbox(ToOutboxEntry(message, metadata));
        }

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

    private static OutboxEntry ToOutboxEntry(object message, EventMetadata metadata)
    {
        var type = message.GetType();
        var headers = JsonSerializer.Serialize(new Dictionary<string, string?>
        {
            ["correlationId"] = metadata.CorrelationId,
            ["causationId"] = metadata.CausationId,
            ["actor"] = metadata.Actor,
        });
        return new OutboxEntry(Guid.NewGuid(), type.FullName ?? type.Name, JsonSerializer.Serialize(message, type, IntegrationJson), headers, Time.ToUnixMicroseconds(metadata.Timestamp));
    }

    /// <summary>The rows a command will write: its accounts and its seller statement rows, named as the key gate names them.</summary>
    internal static IEnumerable<string> RowKeys(CommitCommand command) =>
        LedgerKeys.GateKeys(AccountsOf(command).Select(a => a.Id), StatementKeys(AccountsOf(command), command.Metadata.Timestamp));

    /// <summary>The accounts a command moves: its transfers' sides, or the pending transfer's it resolves.</summary>
    private static IEnumerable<AccountRef> AccountsOf(CommitCommand command) => command.Resolution is { } resolution
        ? [AccountRef.Parse(resolution.DebitAccountId), AccountRef.Parse(resolution.CreditAccountId)]
        : command.Transfers.SelectMany(t => new[] { t.Debit, t.Credit });

    /// <summary>The statement rows that transfers between these accounts, committed at <paramref name="timestamp"/>, may add to.</summary>
    private static IEnumerable<StatementKey> StatementKeys(IEnumerable<AccountRef> accounts, DateTimeOffset timestamp)
    {
        var period = LedgerProjection.Period(timestamp);
        return accounts.Where(a => StatementTotals.IsSellerKind(a.Kind)).Select(a => new StatementKey(a.Owner, a.Currency, period));
    }

    public Task<TransferRecord?> GetTransferAsync(Guid transferId, CancellationToken cancellationToken = default) =>
        _backend.FindTransferAsync(transferId, cancellationToken);

    public async Task<IReadOnlyDictionary<Guid, TransferRecord>> GetTransfersAsync(IReadOnlyCollection<Guid> transferIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transferIds);
        var found = new Dictionary<Guid, TransferRecord>();
        foreach (var chunk in transferIds.Distinct().Chunk(TransfersPerRead))
        {
            // Transfer rows only: no key gate, no lock; the unit is disposed without writing.
            await using var work = await _backend.BeginUnitOfWorkAsync(cancellationToken).ConfigureAwait(false);
            foreach (var (id, transfer) in (await work.LoadAsync(LedgerKeys.ForTransfers(chunk), cancellationToken).ConfigureAwait(false)).Transfers)
            {
                found[id] = transfer;
            }
        }

        return found;
    }

    private const int TransfersPerRead = 5_000;

    public Task<IReadOnlyList<AccountBalance>> GetBalancesAsync(string? accountIdPrefix = null, CancellationToken cancellationToken = default) =>
        _backend.ReadBalancesAsync(accountIdPrefix ?? string.Empty, cancellationToken);

    public async Task<SellerStatement> GetSellerStatementAsync(string sellerId, string period, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(sellerId);
        if (!DateTime.TryParseExact(period, "yyyy-MM", CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
        {
            throw new ArgumentException($"Period '{period}' is not a month written yyyy-MM.", nameof(period));
        }

        var lines = await _backend.ReadStatementAsync(sellerId, period, cancellationToken).ConfigureAwait(false);
        return new SellerStatement(sellerId, period, lines);
    }
}
