namespace DataMarket.Contracts;

/// <summary>A seller's dataset passed validation and is stored under its content hash.</summary>
public record DatasetListed
{
    public required Guid ListingId { get; init; }
    public required string SellerId { get; init; }
    public required string Name { get; init; }
    public required string BlobId { get; init; }
    public required string Format { get; init; }
    public required int Rows { get; init; }
    public required int Features { get; init; }
    public required DateTimeOffset ListedAt { get; init; }
}

/// <summary>A buyer's test task (their validation data) was accepted.</summary>
public record TestTaskPosted
{
    public required Guid TaskId { get; init; }
    public required string BuyerId { get; init; }
    public required string BlobId { get; init; }
    public required int Rows { get; init; }
    public required int Features { get; init; }
    public required DateTimeOffset PostedAt { get; init; }
}
