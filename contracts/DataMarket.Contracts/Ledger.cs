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
