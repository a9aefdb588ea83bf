using DataMarket.Ledger.Model;
using DataMarket.Ledger.Projections;
using DataMarket.Ledger.Storage;
using Marten;

namespace DataMarket.Ledger.Events.MartenStore;

/// <summary>
/// One Marten session: reads in one batched query, then events, account, transfer and statement documents,
/// inbox receipt and outbox messages all go in one <c>SaveChangesAsync</c>, one transaction.
/// Accounts, statements and new transfers are written set-based, one statement per table
/// (<see cref="LedgerDocumentWrites"/>). Concurrency: accounts and statements carry numeric revisions; an
/// update names the revision it read, so a writer elsewhere that got there first makes the save fail (a
/// stale-revision error) and the whole unit is retried from its reads. New documents are inserted, so a
/// lost race to create one fails too.
/// </summary>
internal sealed class MartenLedgerUnitOfWork(MartenEventLog log) : ILedgerUnitOfWork
{
    private readonly IDocumentSession _session = log.OpenSession();
    private readonly Dictionary<string, long> _accountRevisions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _statementRevisions = new(StringComparer.Ordinal);
    private readonly List<(string Id, AccountDocument Document, long Revision)> _accounts = [];
    private readonly List<(string Id, SellerStatementDocument Document, long Revision)> _statements = [];
    private readonly List<TransferDocument> _transfers = [];
    private readonly List<TransferDocument> _transferUpdates = [];
    private readonly List<StreamAppend> _appends = [];
    private readonly List<string> _read = [];
    private KeyGate.Lease? _lease;

    public async Task<LedgerRows> LoadAsync(LedgerKeys keys, CancellationToken cancellationToken)
    {
        var gated = keys.GateKeys().ToList();
        if (gated.Count > 0)
        {
            if (_lease is not null)
            {
                throw new InvalidOperationException("A unit of work takes its key gate once, before its first read of accounts or statements.");
            }

            _lease = await log.Gate.EnterAsync(gated, cancellationToken).ConfigureAwait(false);
        }

        var rows = new LedgerRows();
        var cache = log.Rows;
        var accountIds = keys.Accounts.Distinct(StringComparer.Ordinal).ToList();
        var statementIds = keys.Statements.Select(SellerStatementDocument.IdOf).Distinct(StringComparer.Ordinal).ToList();
        if (keys.Optimistic)
        {
            // Rows this process last read or wrote, with their revisions: the save's revision check catches any
            // that moved since. Transfer ids are not looked up (a used one fails the save on its stream).
            rows.Optimistic = true;
            accountIds.RemoveAll(id => cache.TryGetAccount(id, out var row, out var revision) && Use(rows, row, revision));
            statementIds.RemoveAll(id => cache.TryGetStatement(id, out var key, out var totals, out var revision) && Use(rows, id, key, totals, revision));
        }

        _read.AddRange(accountIds);
        _read.AddRange(statementIds);
        var transferIds = keys.Optimistic ? [] : keys.Transfers.ToArray();
        if (transferIds.Length == 0 && accountIds.Count == 0 && statementIds.Count == 0 && keys.Inbox is null)
        {
            return rows;
        }

        var batch = _session.CreateBatchQuery();
        var transfers = transferIds.Length > 0 ? batch.LoadMany<TransferDocument>().ById(transferIds) : null;
        var accounts = accountIds.Count > 0 ? batch.LoadMany<AccountDocument>().ById(accountIds.ToArray()) : null;
        var statements = statementIds.Count > 0 ? batch.LoadMany<SellerStatementDocument>().ById(statementIds.ToArray()) : null;
        var inbox = keys.Inbox is { } receipt ? batch.Load<InboxDocument>(InboxDocument.IdOf(receipt)) : null;
        await batch.Execute(cancellationToken).ConfigureAwait(false);

        foreach (var transfer in transfers is null ? [] : await transfers.ConfigureAwait(false))
        {
            rows.Transfers[transfer.Id] = transfer.ToRecord();
        }

        foreach (var account in accounts is null ? [] : await accounts.ConfigureAwait(false))
        {
            var row = account.ToRow();
            cache.PutAccount(row, account.Revision);
            Use(rows, row, account.Revision);
        }

        foreach (var statement in statements is null ? [] : await statements.ConfigureAwait(false))
        {
            cache.PutStatement(statement.Id, statement.Key, statement.Totals, statement.Revision);
            Use(rows, statement.Id, statement.Key, statement.Totals, statement.Revision);
        }

        if (inbox is not null && await inbox.ConfigureAwait(false) is { } seen)
        {
            rows.Inbox = new InboxOutcome(seen.Rejection is { } r ? Enum.Parse<LedgerRejection>(r) : null, seen.Detail);
        }

        return rows;
    }

    private bool Use(LedgerRows rows, AccountRow row, long revision)
    {
        rows.Accounts[row.Id] = row;
        _accountRevisions[row.Id] = revision;
        return true;
    }

    private bool Use(LedgerRows rows, string id, StatementKey key, StatementTotals totals, long revision)
    {
        rows.Statements[key] = totals;
        _statementRevisions[id] = revision;
        return true;
    }

    public void Append(StreamAppend append)
    {
        if (append.Expected.IsAny)
        {
            log.QueueAppend(_session, append);
        }
        else
        {
            // New streams (the group's transfers and newly named accounts) and appends at an expected version (posts
            // and voids) go together at the save, in the order decided, set-based where the save is large.
            _appends.Add(append);
        }
    }

    public void PutAccount(AccountRow account) =>
        _accounts.Add((account.Id, AccountDocument.From(account), _accountRevisions.GetValueOrDefault(account.Id, LedgerDocumentWrites.New)));

    public void InsertTransfer(TransferRecord transfer) => _transfers.Add(TransferDocument.From(transfer));

    public void UpdateTransfer(TransferRecord transfer) => _transferUpdates.Add(TransferDocument.From(transfer));

    public void PutStatement(StatementKey key, StatementTotals delta, StatementTotals total)
    {
        var document = SellerStatementDocument.From(key, total);
        _statements.Add((document.Id, document, _statementRevisions.GetValueOrDefault(document.Id, LedgerDocumentWrites.New)));
    }

    public void AddOutbox(OutboxEntry entry) => _session.Insert(new OutboxDocument
    {
        Id = entry.MessageId,
        Sequence = OutboxSequence.Next(),
        Type = entry.Type,
        Payload = entry.Payload,
        Headers = entry.Headers,
        CreatedAtMicros = entry.CreatedAtMicros,
    });

    public void RecordInbox(InboxReceipt receipt, DateTimeOffset processedAt, LedgerResult? rejection) => _session.Insert(new InboxDocument
    {
        Id = InboxDocument.IdOf(receipt),
        Consumer = receipt.Consumer,
        MessageId = receipt.MessageId,
        ProcessedAtMicros = Time.ToUnixMicroseconds(processedAt),
        Rejection = rejection?.Rejection?.ToString(),
        Detail = rejection?.Detail,
    });

    public Task CommitAsync(CancellationToken cancellationToken)
    {
        if (_appends.Count + _accounts.Count + _transfers.Count + _transferUpdates.Count + _statements.Count >= log.SetBasedFrom)
        {
            // One statement per table for the whole unit (a group commit's many transfers), in the session's batch.
            log.Writes.QueueAppends(_session, _appends);
            log.Writes.QueuePut(_session, _accounts);
            log.Writes.QueueInsertTransfers(_session, _transfers);
            log.Writes.QueueUpdateTransfers(_session, _transferUpdates);
            log.Writes.QueuePut(_session, _statements, SellerStatementDocument.DuplicatedSeller);
        }
        else
        {
            // One transfer (or post or void): Marten's single-row statements cost less than the set-based ones
            // (same checks: UpdateRevision refuses a moved revision, Insert and StartStream a row or stream that
            // exists, Append a stream not at the expected version).
            foreach (var append in _appends)
            {
                log.QueueAppend(_session, append);
            }

            QueuePerDocument(_accounts);
            foreach (var transfer in _transfers)
            {
                _session.Insert(transfer);
            }

            foreach (var transfer in _transferUpdates)
            {
                _session.Update(transfer);
            }

            QueuePerDocument(_statements);
        }

        return SaveAsync(cancellationToken);
    }

    private void QueuePerDocument<T>(List<(string Id, T Document, long Revision)> documents)
        where T : notnull
    {
        foreach (var (_, document, revision) in documents)
        {
            if (revision == LedgerDocumentWrites.New)
            {
                _session.Insert(document);
            }
            else
            {
                _session.UpdateRevision(document, revision + 1);
            }
        }
    }

    private async Task SaveAsync(CancellationToken cancellationToken)
    {
        try
        {
            await log.SaveAsync(_session, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // Committed or not, what this unit read may be stale or its writes may have landed: read afresh next time.
            log.Rows.Forget(_accounts.Select(a => a.Id).Concat(_statements.Select(s => s.Id)).Concat(_read));
            throw;
        }

        // Still inside this unit's key gate, so the next writer of these rows in this process sees them.
        foreach (var (_, document, revision) in _accounts)
        {
            log.Rows.PutAccount(document.ToRow(), revision + 1);
        }

        foreach (var (id, document, revision) in _statements)
        {
            log.Rows.PutStatement(id, document.Key, document.Totals, revision + 1);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _lease?.Dispose();
        await _session.DisposeAsync().ConfigureAwait(false);
    }
}
