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

    Task<TransferRecord?> GetTransferAsync(Guid transferId, CancellationToken cancellationToken = default);

    /// <summary>Balances of all accounts, or of those whose id starts with <paramref name="accountIdPrefix"/> (e.g. "seller_payable:" or "buyer:b-1:USD").</summary>
    Task<IReadOnlyList<AccountBalance>> GetBalancesAsync(string? accountIdPrefix = null, CancellationToken cancellationToken = default);

    /// <summary>A seller's statement for a UTC month written "2026-11".</summary>
    Task<SellerStatement> GetSellerStatementAsync(string sellerId, string period, CancellationToken cancellationToken = default);
}

public static class LedgerExtensions
{
    public static Task<LedgerResult> CommitAsync(this ILedger ledger, TransferRequest transfer, LedgerCommandOptions? options = null, CancellationToken cancellationToken = default) =>
        ledger.CommitAsync([transfer], options, cancellationToken);
}
