using DataMarket.Ledger.Model;
using DataMarket.Ledger.Projections;
using Marten.Schema;

namespace DataMarket.Ledger.Events.MartenStore;

/// <summary>
/// An account's balance as a Marten document. Its numeric revision is what guards concurrent writers
/// (in other processes; writers in one process queue on the key gate first): an update names the
/// revision it read plus one, and Marten refuses it if anyone got there first.
/// </summary>
public sealed class AccountDocument
{
    public string Id { get; set; } = "";
    public string Kind { get; set; } = "";
    public string Owner { get; set; } = "";
    public string Currency { get; set; } = "";
    public int Flags { get; set; }
    public long DebitsPending { get; set; }
    public long DebitsPosted { get; set; }
    public long CreditsPending { get; set; }
    public long CreditsPosted { get; set; }

    [Version]
    public long Revision { get; set; }

    internal static AccountDocument From(AccountRow row) => new()
    {
        Id = row.Id,
        Kind = AccountRef.KindName(row.Kind),
        Owner = row.Owner,
        Currency = row.Currency,
        Flags = (int)row.Flags,
        DebitsPending = row.DebitsPending,
        DebitsPosted = row.DebitsPosted,
        CreditsPending = row.CreditsPending,
        CreditsPosted = row.CreditsPosted,
    };

    internal AccountRow ToRow() => new()
    {
        Id = Id,
        Kind = AccountRef.ParseKind(Kind),
        Owner = Owner,
        Currency = Currency,
        Flags = (AccountFlags)Flags,
        DebitsPending = DebitsPending,
        DebitsPosted = DebitsPosted,
        CreditsPending = CreditsPending,
        CreditsPosted = CreditsPosted,
        Loaded = true,
    };
}

/// <summary>A transfer's record. Its stream's version (1 committed, 2 resolved) guards it, not a revision.</summary>
public sealed class TransferDocument
{
    public Guid Id { get; set; }
    public string DebitAccountId { get; set; } = "";
    public string CreditAccountId { get; set; } = "";
    public long Amount { get; set; }
    public string Currency { get; set; } = "";
    public string Code { get; set; } = "";
    public bool Pending { get; set; }
    public string State { get; set; } = "";
    public Guid? BatchId { get; set; }
    public string? Reference { get; set; }
    public long CreatedAtMicros { get; set; }
    public long? ResolvedAtMicros { get; set; }

    internal static TransferDocument From(TransferRecord t) => new()
    {
        Id = t.Id,
        DebitAccountId = t.DebitAccountId,
        CreditAccountId = t.CreditAccountId,
        Amount = t.Amount,
        Currency = t.Currency,
        Code = t.Code.ToString(),
        Pending = t.Pending,
        State = t.State.ToString(),
        BatchId = t.BatchId,
        Reference = t.Reference,
        CreatedAtMicros = Time.ToUnixMicroseconds(t.CreatedAt),
        ResolvedAtMicros = t.ResolvedAt is { } resolved ? Time.ToUnixMicroseconds(resolved) : null,
    };

    internal TransferRecord ToRecord() => new(
        Id,
        DebitAccountId,
        CreditAccountId,
        Amount,
        Currency,
        Enum.Parse<TransferCode>(Code),
        Pending,
        Enum.Parse<TransferState>(State),
        BatchId,
        Reference,
        Time.FromUnixMicroseconds(CreatedAtMicros),
        ResolvedAtMicros is { } resolved ? Time.FromUnixMicroseconds(resolved) : null);
}

/// <summary>One seller's totals for one currency and month; guarded by its revision like an account.</summary>
public sealed class SellerStatementDocument
{
    public string Id { get; set; } = "";
    public string Seller { get; set; } = "";
    public string Currency { get; set; } = "";
    public string Period { get; set; } = "";
    public long Earned { get; set; }
    public long Held { get; set; }
    public long Paid { get; set; }

    [Version]
    public long Revision { get; set; }

    /// <summary>Owners never hold ':' (AccountRef refuses it), so the key is unambiguous.</summary>
    internal static string IdOf(StatementKey key) => $"{key.Seller}:{key.Currency}:{key.Period}";

    internal static SellerStatementDocument From(StatementKey key, StatementTotals totals) => new()
    {
        Id = IdOf(key),
        Seller = key.Seller,
        Currency = key.Currency,
        Period = key.Period,
        Earned = totals.Earned,
        Held = totals.Held,
        Paid = totals.Paid,
    };

    internal StatementKey Key => new(Seller, Currency, Period);

    /// <summary>The seller is duplicated into a column of its own (statements are read by seller); set-based writes fill it too.</summary>
    internal static readonly (string Column, Func<SellerStatementDocument, string> Value) DuplicatedSeller = ("seller", s => s.Seller);

    internal StatementTotals Totals => new(Earned, Held, Paid);
}

/// <summary>A consumed message; a second insert of the same id fails the whole session, so a redelivery racing the first is retried and then finds this.</summary>
public sealed class InboxDocument
{
    public string Id { get; set; } = "";
    public string Consumer { get; set; } = "";
    public Guid MessageId { get; set; }
    public long ProcessedAtMicros { get; set; }
    public string? Rejection { get; set; }
    public string? Detail { get; set; }

    /// <summary>The message id has a fixed length at the end, so any consumer name gives a distinct key.</summary>
    internal static string IdOf(InboxReceipt receipt) => $"{receipt.Consumer}/{receipt.MessageId:D}";
}

/// <summary>
/// An integration event waiting for the relay. Dispatched messages are deleted, so the table holds only
/// what is still to send and the relay's ordered read stays short.
/// </summary>
public sealed class OutboxDocument
{
    public Guid Id { get; set; }

    /// <summary>Order of dispatch: increasing within a process, microsecond time across processes (no round trip to draw it).</summary>
    public long Sequence { get; set; }
    public string Type { get; set; } = "";
    public string Payload { get; set; } = "";
    public string? Headers { get; set; }
    public long CreatedAtMicros { get; set; }
    public int Attempts { get; set; }
}

/// <summary>Outbox sequence numbers: the current time in microseconds, or one more than the last if the clock has not moved.</summary>
internal static class OutboxSequence
{
    private static long s_last;

    public static long Next()
    {
        while (true)
        {
            var last = Volatile.Read(ref s_last);
            var next = Math.Max(last + 1, Time.ToUnixMicroseconds(DateTimeOffset.UtcNow));
            if (Interlocked.CompareExchange(ref s_last, next, last) == last)
            {
                return next;
            }
        }
    }
}
