namespace DataMarket.Ledger.Model;

/// <summary>The double-entry ledger: transfers in integer minor units, idempotent by client-chosen id.</summary>
public interface ILedger
{
    /// <summary>
    /// Commits the transfers as one linked, all-or-nothing batch. Retrying with the same ids and
    /// content returns <see cref="LedgerStatus.AlreadyCommitted"/>; the same id with different
    /// content is rejected.
    /// </summary>
    Task<LedgerResult> CommitAsync(IReadOnlyList<TransferRequest> transfers, LedgerCommandOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Posts a pending transfer in full. Posting twice is idempotent; posting a voided transfer is rejected.</summary>
    Task<LedgerResult> PostPendingAsync(Guid pendingTransferId, LedgerCommandOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Voids a pending transfer, releasing its reservation exactly. Voiding twice is idempotent.</summary>
    Task<LedgerResult> VoidPendingAsync(Guid pendingTransferId, LedgerCommandOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Posts or voids many pending transfers at once: each is its own all-or-nothing command, answered as
    /// <see cref="PostPendingAsync"/> or <see cref="VoidPendingAsync"/> would answer it (results in the order given), but
    /// they are read together and share group commits, so a settlement run's thousands of payouts into one account
    /// cost a few transactions instead of one each. <paramref name="options"/> may not carry an inbox receipt (one
    /// message, one command: use the single calls).
    /// </summary>
    Task<IReadOnlyList<LedgerResult>> ResolvePendingAsync(IReadOnlyList<PendingTransferAction> actions, LedgerCommandOptions? options = null, CancellationToken cancellationToken = default);

    Task<TransferRecord?> GetTransferAsync(Guid transferId, CancellationToken cancellationToken = default);

    /// <summary>The transfers with these ids that exist, read a few thousand per query (a reconciliation's every payout).</summary>
    Task<IReadOnlyDictionary<Guid, TransferRecord>> GetTransfersAsync(IReadOnlyCollection<Guid> transferIds, CancellationToken cancellationToken = default);

    /// <summary>Balances of all accounts, or of those whose id starts with <paramref name="accountIdPrefix"/> (e.g. "seller_payable:" or "buyer:b-1:USD").</summary>
    Task<IReadOnlyList<AccountBalance>> GetBalancesAsync(string? accountIdPrefix = null, CancellationToken cancellationToken = default);

    /// <summary>A seller's statement for a UTC month written "2026-11".</summary>
    Task<SellerStatement> GetSellerStatementAsync(string sellerId, string period, CancellationToken cancellationToken = default);
}

/// <summary>Post (<paramref name="Post"/> true) or void a pending transfer, for <see cref="ILedger.ResolvePendingAsync"/>.</summary>
public sealed record PendingTransferAction(Guid PendingTransferId, bool Post)
{
    public static PendingTransferAction PostOf(Guid pendingTransferId) => new(pendingTransferId, Post: true);

    public static PendingTransferAction VoidOf(Guid pendingTransferId) => new(pendingTransferId, Post: false);
}

public static class LedgerExtensions
{
    public static Task<LedgerResult> CommitAsync(this ILedger ledger, TransferRequest transfer, LedgerCommandOptions? options = null, CancellationToken cancellationToken = default) =>
        ledger.CommitAsync([transfer], options, cancellationToken);
}
