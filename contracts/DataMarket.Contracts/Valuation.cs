namespace DataMarket.Contracts;

/// <summary>Where a dataset's bytes live and how to read them.</summary>
public record DatasetReference
{
    public required string BlobId { get; init; }
    public required string Format { get; init; }
    public required string LabelColumn { get; init; }
}

/// <summary>One listing taking part in a valuation; its rows are the players.</summary>
public record ValuationListing
{
    public required Guid ListingId { get; init; }
    public required string SellerId { get; init; }
    public required DatasetReference Data { get; init; }
}

/// <summary>Ask the valuation worker to value the listings' points for the buyer's test task.</summary>
public record RequestValuation
{
    public required Guid ValuationId { get; init; }
    public required string BuyerId { get; init; }
    public required Guid TaskId { get; init; }
    public required DatasetReference Task { get; init; }
    public required IReadOnlyList<ValuationListing> Listings { get; init; }
    /// <summary>Valuation method, e.g. <c>knn-shapley</c> or <c>asymmetric-knn-shapley</c>.</summary>
    public required string Method { get; init; }
    public required int K { get; init; }
    /// <summary><c>classification</c> (label agreement) or <c>regression</c> (squared error of numeric labels).</summary>
    public string TaskType { get; init; } = "classification";
    /// <summary>Sellers in precedence order (earliest listing first), for asymmetric valuation.</summary>
    public IReadOnlyList<string>? GroupOrder { get; init; }
    /// <summary><c>auto</c>, <c>cpu</c> or <c>gpu</c>: which worker pool computes the shards.</summary>
    public string Device { get; init; } = "auto";
    /// <summary>The buyer's proxy-model checkpoint (safetensors, checked by the catalog) for <c>logra</c>; null: train one.</summary>
    public ModelReference? Model { get; init; }
    /// <summary>
    /// For <c>logra</c>: <c>dot</c> (value to the test task), <c>cosine</c> (training gradients normalised) or
    /// <c>self</c> (each row's self-influence, high for mislabelled rows; sharded over training rows).
    /// </summary>
    public string LograMode { get; init; } = "dot";
    public required DateTimeOffset RequestedAt { get; init; }
}

/// <summary>Where a proxy-model checkpoint's bytes live.</summary>
public record ModelReference
{
    public required string BlobId { get; init; }
    /// <summary><c>safetensors</c>.</summary>
    public required string Format { get; init; }
}

/// <summary>
/// Compute one shard of a valuation: test points <see cref="FirstTestPoint"/> .. + <see cref="TestPoints"/> - 1. The
/// request travels along (references only, no data), so any worker can take any shard.
/// </summary>
public record ValueShard
{
    public required Guid ValuationId { get; init; }
    public required int ShardIndex { get; init; }
    public required int ShardCount { get; init; }
    public required int FirstTestPoint { get; init; }
    public required int TestPoints { get; init; }
    public required RequestValuation Request { get; init; }
    /// <summary>
    /// How many of the valuation's shards are queued or running at once: the coordinator sends the first this many, and
    /// the worker that finishes shard s sends shard s + ShardsInFlight. 0: every shard was sent at once.
    /// </summary>
    public int ShardsInFlight { get; init; }
}

/// <summary>A shard's partial moments are in the blob store; the coordinator merges once every shard reported.</summary>
public record ValuationShardCompleted
{
    public required Guid ValuationId { get; init; }
    public required int ShardIndex { get; init; }
    public required int ShardCount { get; init; }

    /// <summary>The units the shards split: test points, or training rows where the valuation runs over those (LoGra's self mode).</summary>
    public required int TotalUnits { get; init; }

    /// <summary>The valuation's test points: progress is reported in these whatever the shards split.</summary>
    public required int TestPoints { get; init; }

    public required RequestValuation Request { get; init; }
    public required DateTimeOffset CompletedAt { get; init; }
}

/// <summary>The buyer cancelled: workers drop the valuation's remaining shards.</summary>
public record ValuationCancelled
{
    public required Guid ValuationId { get; init; }
    public required DateTimeOffset CancelledAt { get; init; }
}

/// <summary>The worker picked the request up.</summary>
public record ValuationStarted
{
    public required Guid ValuationId { get; init; }
    public required int TrainingPoints { get; init; }
    public required int TestPoints { get; init; }
    public required DateTimeOffset StartedAt { get; init; }
}

/// <summary>How far a running valuation has got, in test points done.</summary>
public record ValuationProgressed
{
    public required Guid ValuationId { get; init; }
    public required int CompletedTestPoints { get; init; }
    public required int TotalTestPoints { get; init; }
    public required DateTimeOffset At { get; init; }
}

/// <summary>A value with its standard error over the buyer's test points.</summary>
public record SellerValue
{
    public required string SellerId { get; init; }
    public required int Points { get; init; }
    public required double Value { get; init; }
    /// <summary>Null when it cannot be estimated (a task with a single test point).</summary>
    public required double? StandardError { get; init; }
}

/// <summary>The value of one row of one listing (row is 0-based in the listing's file order).</summary>
public record PointValue
{
    public required Guid ListingId { get; init; }
    public required int Row { get; init; }
    public required double Value { get; init; }
    /// <summary>Null when it cannot be estimated (a task with a single test point).</summary>
    public required double? StandardError { get; init; }
}

/// <summary>
/// A valuation's result. It carries everything the catalog shows about a finished run (sizes, start time), so it is
/// complete even when it overtakes the worker's earlier status events. Point values go by blob reference: inline they
/// grow with the data (about 100 MB at a million rows), past what a broker should carry.
/// </summary>
public record ValuationCompleted
{
    public required Guid ValuationId { get; init; }
    public required string Method { get; init; }
    /// <summary>Utility of the whole training set for the task; by efficiency it equals the sum of all point values.</summary>
    public required double TotalUtility { get; init; }
    public required IReadOnlyList<SellerValue> Sellers { get; init; }
    /// <summary>Inline point values; empty when <see cref="PointValues"/> names a blob (always, from the valuation worker).</summary>
    public IReadOnlyList<PointValue> Points { get; init; } = [];
    /// <summary>The blob holding every point value (see <c>PointValueBlob</c> in the service defaults for the layout).</summary>
    public PointValuesReference? PointValues { get; init; }
    public int? TrainingPoints { get; init; }
    public int? TestPoints { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public required DateTimeOffset CompletedAt { get; init; }
}

/// <summary>Where a valuation's point values are stored, and how many there are.</summary>
public record PointValuesReference
{
    public required string BlobId { get; init; }
    public required int Count { get; init; }
}

public record ValuationFailed
{
    public required Guid ValuationId { get; init; }
    public required string Reason { get; init; }
    public required DateTimeOffset FailedAt { get; init; }
}
