using DataMarket.Ledger.Events;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Projections;

namespace DataMarket.Ledger.Storage;

/// <summary>
/// What a command reads before it decides: existing transfers, accounts, seller statements and its inbox receipt.
/// <paramref name="Optimistic"/>: the caller commits only if every command is accepted and otherwise decides
/// again from a plain read (see <see cref="LedgerRows.Optimistic"/>), so a store may serve accounts and
/// statements from what this process last read or wrote, and skip looking up transfer ids (a used id makes
/// the save fail on its stream, and the caller retries with a plain read).
/// </summary>
internal sealed record LedgerKeys(
    IReadOnlyCollection<Guid> Transfers,
    IReadOnlyCollection<string> Accounts,
    IReadOnlyCollection<StatementKey> Statements,
    InboxReceipt? Inbox = null,
    bool Optimistic = false)
{
    public static LedgerKeys ForTransfers(IReadOnlyCollection<Guid> transfers) => new(transfers, [], []);

    /// <summary>The rows these keys will write, one name each: account ids, and statement keys marked as such.</summary>
    public static IEnumerable<string> GateKeys(IEnumerable<string> accounts, IEnumerable<StatementKey> statements) =>
        accounts.Concat(statements.Select(k => $"statement:{k.Seller}:{k.Currency}:{k.Period}")).Distinct(StringComparer.Ordinal);

    public IEnumerable<string> GateKeys() => GateKeys(Accounts, Statements);
}

/// <summary>What the first delivery of a message decided (null rejection: it succeeded).</summary>
internal sealed record InboxOutcome(LedgerRejection? Rejection, string? Detail);

internal sealed class LedgerRows
{
    public Dictionary<Guid, TransferRecord> Transfers { get; } = [];
    public Dictionary<string, AccountRow> Accounts { get; } = new(StringComparer.Ordinal);
    public Dictionary<StatementKey, StatementTotals> Statements { get; } = [];

    /// <summary>The receipt's first outcome if the message was seen before; null if it is new.</summary>
    public InboxOutcome? Inbox { get; set; }

    /// <summary>
    /// True when the store took the optimistic road (cached rows, transfer ids not looked up): a refusal
    /// decided on these rows may rest on a stale balance or a missed id, so it must be decided again from a
    /// plain read; an acceptance is safe, since the save's revision checks and stream inserts fail if the
    /// rows moved or an id was used.
    /// </summary>
    public bool Optimistic { get; set; }
}

/// <summary>
/// Thrown by a decision made on optimistic rows that refused or skipped a command: nothing was written, and
/// the caller decides again from a plain read (see <see cref="LedgerRows.Optimistic"/>).
/// </summary>
internal sealed class OptimisticReadRefusedException() : Exception("A command decided on cached rows was not accepted; it is decided again from a fresh read.");

/// <summary>An integration event bound for the outbox, serialized when the command committed.</summary>
internal sealed record OutboxEntry(Guid MessageId, string Type, string Payload, string Headers, long CreatedAtMicros);

/// <summary>
/// One command's (or one group's) reads and writes against a store: everything written here becomes durable
/// together in <see cref="CommitAsync"/>, events, projections, inbox receipt and outbox messages, or nothing
/// does. On PostgreSQL it is one Marten session; on SQLite one write transaction.
/// </summary>
internal interface ILedgerUnitOfWork : IAsyncDisposable
{
    Task<LedgerRows> LoadAsync(LedgerKeys keys, CancellationToken cancellationToken);

    void Append(StreamAppend append);

    /// <summary>Accounts this unit loaded are updated (guarded against concurrent writers); the others are created.</summary>
    void PutAccount(AccountRow account);

    void InsertTransfer(TransferRecord transfer);

    void UpdateTransfer(TransferRecord transfer);

    /// <summary>A statement row moves by <paramref name="delta"/> to <paramref name="total"/> (what was loaded plus the delta).</summary>
    void PutStatement(StatementKey key, StatementTotals delta, StatementTotals total);

    void AddOutbox(OutboxEntry entry);

    void RecordInbox(InboxReceipt receipt, DateTimeOffset processedAt, LedgerResult? rejection);

    /// <summary>Makes every write durable at once; lost races surface as exceptions the backend calls transient.</summary>
    Task CommitAsync(CancellationToken cancellationToken);
}
