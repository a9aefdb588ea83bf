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
    private readonly List<StreamAppend> _newStreams = [];
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
        var batch = _session.CreateBatchQuery();
        var transfers = keys.Transfers.Count > 0 ? batch.LoadMany<TransferDocument>().ById(keys.Transfers.ToArray()) : null;
        var accounts = keys.Accounts.Count > 0 ? batch.LoadMany<AccountDocument>().ById(keys.Accounts.Distinct(StringComparer.Ordinal).ToArray()) : null;
        var statements = keys.Statements.Count > 0 ? batch.LoadMany<SellerStatementDocument>().ById(keys.Statements.Select(SellerStatementDocument.IdOf).Distinct(StringComparer.Ordinal).ToArray()) : null;
        var inbox = keys.Inbox is { } receipt ? batch.Load<InboxDocument>(InboxDocument.IdOf(receipt)) : null;
        await batch.Execute(cancellationToken).ConfigureAwait(false);

        foreach (var transfer in transfers is null ? [] : await transfers.ConfigureAwait(false))
        {
            rows.Transfers[transfer.Id] = transfer.ToRecord();
        }

        foreach (var account in accounts is null ? [] : await accounts.ConfigureAwait(false))
        {
            rows.Accounts[account.Id] = account.ToRow();
            _accountRevisions[account.Id] = account.Revision;
        }

        foreach (var statement in statements is null ? [] : await statements.ConfigureAwait(false))
        {
            rows.Statements[statement.Key] = statement.Totals;
            _statementRevisions[statement.Id] = statement.Revision;
        }

        if (inbox is not null && await inbox.ConfigureAwait(false) is { } seen)
        {
            rows.Inbox = new InboxOutcome(seen.Rejection is { } r ? Enum.Parse<LedgerRejection>(r) : null, seen.Detail);
        }

        return rows;
    }

    public void Append(StreamAppend append)
    {
        if (append.Expected.IsNoStream)
        {
            // New streams (the group's transfers and newly named accounts) start together, set-based.
            _newStreams.Add(append);
        }
        else
        {
            log.QueueAppend(_session, append);
        }
    }

    public void PutAccount(AccountRow account) =>
        _accounts.Add((account.Id, AccountDocument.From(account), _accountRevisions.GetValueOrDefault(account.Id, LedgerDocumentWrites.New)));

    public void InsertTransfer(TransferRecord transfer) => _transfers.Add(TransferDocument.From(transfer));

    public void UpdateTransfer(TransferRecord transfer) => _session.Update(TransferDocument.From(transfer));

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
        // One statement per table for the whole unit (a group commit's many transfers), in the session's batch.
        log.Writes.QueueStartStreams(_session, _newStreams);
        log.Writes.QueuePut(_session, _accounts);
        log.Writes.QueueInsertTransfers(_session, _transfers);
        log.Writes.QueuePut(_session, _statements, SellerStatementDocument.DuplicatedSeller);
        return log.SaveAsync(_session, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        _lease?.Dispose();
        await _session.DisposeAsync().ConfigureAwait(false);
    }
}
