namespace DataMarket.Contracts;

/// <summary>A seller payout was reserved in the ledger (pending transfer); the payments service should send it.</summary>
public record PayoutRequested
{
    public required Guid TransferId { get; init; }
    public required string SellerId { get; init; }
    public required long Amount { get; init; }
    public required string Currency { get; init; }
    public required DateTimeOffset RequestedAt { get; init; }
}

/// <summary>A purchase was settled in the ledger: the buyer's funds were allocated to the seller and the platform fee.</summary>
public record PurchaseSettled
{
    public required Guid PurchaseId { get; init; }
    public required string BuyerId { get; init; }
    public required string SellerId { get; init; }
    public required long SellerAmount { get; init; }
    public required long FeeAmount { get; init; }
    public required string Currency { get; init; }
    public required DateTimeOffset SettledAt { get; init; }
}

/// <summary>
/// Asks the ledger to commit a linked batch of transfers, all or nothing. Accounts are ledger account ids
/// ("buyer:alice:USD", "seller_held:bob:USD", "platform_fees:platform:USD"); amounts are minor units (cents).
/// The ledger's inbox is keyed by the message id, so a redelivery changes nothing; transfer ids make a
/// resend under a new message id safe too. The ledger answers with <see cref="TransfersCommitted"/> or
/// <see cref="TransfersRejected"/>, carrying <see cref="CommandId"/>.
/// </summary>
public record CommitTransfers
{
    public required Guid CommandId { get; init; }
    public required IReadOnlyList<TransferLine> Transfers { get; init; }

    /// <summary>Who asked (a service or operator id), kept in the events' metadata.</summary>
    public string? Actor { get; init; }
}

/// <summary>One transfer of a <see cref="CommitTransfers"/> command.</summary>
public record TransferLine
{
    /// <summary>Chosen by the sender; the same id with the same content is committed once.</summary>
    public required Guid TransferId { get; init; }
    public required string DebitAccount { get; init; }
    public required string CreditAccount { get; init; }
    public required long Amount { get; init; }

    /// <summary>charge, allocation, platform_fee, hold_release, payout, payout_settlement, refund or correction.</summary>
    public required string Code { get; init; }

    /// <summary>Reserve now; post or void later.</summary>
    public bool Pending { get; init; }

    public string? Reference { get; init; }
}

/// <summary>The ledger committed a <see cref="CommitTransfers"/> command (or had already committed the same transfers).</summary>
public record TransfersCommitted
{
    public required Guid CommandId { get; init; }
    public required IReadOnlyList<Guid> TransferIds { get; init; }

    /// <summary>True when the same transfers had been committed before, under another message.</summary>
    public bool AlreadyCommitted { get; init; }
    public required DateTimeOffset CommittedAt { get; init; }
}

/// <summary>The ledger refused a <see cref="CommitTransfers"/> command; nothing moved.</summary>
public record TransfersRejected
{
    public required Guid CommandId { get; init; }

    /// <summary>invalid_command, or a ledger rule such as exceeds_balance or id_reused_with_different_content.</summary>
    public required string Reason { get; init; }
    public required string Detail { get; init; }
}
