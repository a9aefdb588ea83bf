namespace DataMarket.Ledger.Model;

/// <summary>Why money moved; statements are built from these.</summary>
public enum TransferCode
{
    /// <summary>Buyer paid in: debit payment clearing, credit buyer.</summary>
    Charge,
    /// <summary>A purchase allocates a buyer's funds to a seller (usually held first).</summary>
    Allocation,
    /// <summary>A purchase's platform fee.</summary>
    PlatformFee,
    /// <summary>Held earnings become payable.</summary>
    HoldRelease,
    /// <summary>Seller payout: debit seller payable, credit payouts in transit (pending until the processor confirms).</summary>
    Payout,
    /// <summary>The processor settled a payout: debit payouts in transit, credit payment clearing.</summary>
    PayoutSettlement,
    /// <summary>Money returned to a buyer.</summary>
    Refund,
    /// <summary>A correcting transfer; transfers themselves are never changed.</summary>
    Correction,
}

/// <summary>
/// Move <see cref="Amount"/> minor units from <see cref="Debit"/> to <see cref="Credit"/>. The client chooses
/// <see cref="Id"/> and retries with it: the same id with the same content returns the original.
/// </summary>
public sealed record TransferRequest
{
    public required Guid Id { get; init; }
    public required AccountRef Debit { get; init; }
    public required AccountRef Credit { get; init; }
    public required long Amount { get; init; }
    public required TransferCode Code { get; init; }

    /// <summary>Reserve now, post or void later (at most once).</summary>
    public bool Pending { get; init; }

    public string? Reference { get; init; }
}

public enum TransferState
{
    Posted,
    Pending,
    PendingPosted,
    PendingVoided,
}

/// <summary>A transfer as recorded (immutable apart from a pending transfer's resolution).</summary>
public sealed record TransferRecord(
    Guid Id,
    string DebitAccountId,
    string CreditAccountId,
    long Amount,
    string Currency,
    TransferCode Code,
    bool Pending,
    TransferState State,
    Guid? BatchId,
    string? Reference,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ResolvedAt);

public enum LedgerStatus
{
    /// <summary>The command's effects were committed now.</summary>
    Committed,
    /// <summary>An identical command had already been committed; nothing changed.</summary>
    AlreadyCommitted,
    /// <summary>
    /// The inbox had already recorded this (consumer, message); nothing changed. If the first delivery was
    /// rejected, <see cref="LedgerResult.Rejection"/> says why.
    /// </summary>
    DuplicateMessage,
    /// <summary>The command broke a rule; nothing changed.</summary>
    Rejected,
}

public enum LedgerRejection
{
    EmptyBatch,
    InvalidAmount,
    SameAccount,
    CurrencyMismatch,
    DuplicateIdInBatch,
    /// <summary>The id exists with different content (or in a different batch).</summary>
    IdReusedWithDifferentContent,
    /// <summary>An account that may not go negative would have.</summary>
    ExceedsBalance,
    PendingNotFound,
    NotPending,
    PendingAlreadyResolved,
    /// <summary>An account figure (debits or credits, pending or posted, or pending + posted) or a seller statement total would pass <see cref="long.MaxValue"/>.</summary>
    Overflow,
    /// <summary>An account is <c>default(AccountRef)</c>: it names no account.</summary>
    InvalidAccount,
    /// <summary>The transfer code is not one of <see cref="TransferCode"/>'s named values.</summary>
    UndefinedCode,
    /// <summary>The reference holds control characters (NUL, newlines) or broken UTF-16.</summary>
    InvalidReference,
}

public sealed record LedgerResult(LedgerStatus Status, LedgerRejection? Rejection = null, string? Detail = null)
{
    /// <summary>False for a rejection, and for a redelivery of a message whose first delivery was rejected.</summary>
    public bool Succeeded => Status != LedgerStatus.Rejected && Rejection is null;

    internal static LedgerResult Reject(LedgerRejection rejection, string detail) => new(LedgerStatus.Rejected, rejection, detail);
}

/// <summary>Identifies a consumed message, recorded in the same transaction as its effects.</summary>
public sealed record InboxReceipt(string Consumer, Guid MessageId);

/// <summary>Who asks, why, what message caused it, and the integration events to publish once it commits.</summary>
public sealed record LedgerCommandOptions
{
    public string? Actor { get; init; }
    public string? CorrelationId { get; init; }
    public string? CausationId { get; init; }

    /// <summary>When set, the command runs at most once per (consumer, message id).</summary>
    public InboxReceipt? Inbox { get; init; }

    /// <summary>Integration events (records from DataMarket.Contracts) written to the outbox in the same transaction.</summary>
    public IReadOnlyList<object> Publish { get; init; } = [];
}

/// <summary>A seller's earnings for one period (UTC month, "2026-11"), per currency.</summary>
public sealed record SellerStatementLine(string Currency, long Earned, long Held, long Paid);

public sealed record SellerStatement(string SellerId, string Period, IReadOnlyList<SellerStatementLine> Lines);
