namespace DataMarket.Catalog.Model;

public enum ListingStatus
{
    /// <summary>Created; no data uploaded yet.</summary>
    Draft,
    /// <summary>Data validated and stored; buyers can value it.</summary>
    Listed,
    /// <summary>Its seller's account was deleted: hidden from everyone, kept only so past purchases still download.</summary>
    Withdrawn,
}

/// <summary>A valuation's life: Pending -> Running -> one of the terminal states (see <see cref="ValuationStateMachine"/>).</summary>
public enum ValuationStatus
{
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

public sealed class Listing
{
    public Guid Id { get; set; }
    public required string SellerId { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public ListingStatus Status { get; set; }
    public string? BlobId { get; set; }
    public string? Format { get; set; }
    public string? LabelColumn { get; set; }
    public int Rows { get; set; }
    public int Features { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? ListedAt { get; set; }
}

public sealed class TestTask
{
    public Guid Id { get; set; }
    public required string BuyerId { get; set; }
    public required string Name { get; set; }
    public required string BlobId { get; set; }
    public required string Format { get; set; }
    public required string LabelColumn { get; set; }
    public int Rows { get; set; }
    public int Features { get; set; }
    public DateTime PostedAt { get; set; }
}

/// <summary>A buyer's proxy-model checkpoint for LoGra (a safetensors tabular MLP, checked on upload), in the blob store.</summary>
public sealed class ProxyModel
{
    public Guid Id { get; set; }
    public required string BuyerId { get; set; }
    public required string Name { get; set; }
    public required string BlobId { get; set; }
    public int InputWidth { get; set; }
    /// <summary>Hidden layer widths, comma-separated (empty for a single Linear layer).</summary>
    public required string HiddenWidths { get; set; }
    public int OutputWidth { get; set; }
    public long Bytes { get; set; }
    public DateTime UploadedAt { get; set; }
}

public sealed class ValuationRun
{
    public Guid Id { get; set; }
    public required string BuyerId { get; set; }
    public Guid TaskId { get; set; }
    public required string Method { get; set; }
    public string TaskType { get; set; } = "classification";
    public int K { get; set; }
    /// <summary>The listings in the order they were valued, comma-separated.</summary>
    public required string ListingIds { get; set; }
    public ValuationStatus Status { get; set; }
    public string? Error { get; set; }
    public int? TrainingPoints { get; set; }
    public int? TestPoints { get; set; }
    /// <summary>Test points done so far, while running.</summary>
    public int CompletedTestPoints { get; set; }
    public double? TotalUtility { get; set; }
    /// <summary>The blob holding the point values (<c>PointValueBlob</c>), once completed; null for seller-level methods.</summary>
    public string? PointsBlobId { get; set; }
    public DateTime RequestedAt { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public List<ValuationSellerValue> Sellers { get; set; } = [];
    /// <summary>Where a signed notice goes when the valuation ends (the buyer's own endpoint), if anywhere.</summary>
    public string? CallbackUrl { get; set; }
    /// <summary>The key the notice is signed with; given to the buyer once, in the answer to the request.</summary>
    public string? CallbackSecret { get; set; }
    /// <summary>The buyer's proxy model a LoGra valuation uses, if one was named.</summary>
    public Guid? ModelId { get; set; }
}

/// <summary>
/// A finished valuation's notice to its callback URL, written in the same transaction as the move to a final status
/// (so none is lost) and delivered by <c>CallbackDispatcher</c> with retries until it is taken or given up on.
/// </summary>
public sealed class CallbackNotice
{
    public Guid ValuationId { get; set; }
    public DateTime DueAt { get; set; }
    public int Attempts { get; set; }
    public DateTime? DeliveredAt { get; set; }
    public DateTime? GaveUpAt { get; set; }
    public string? LastError { get; set; }
}

public sealed class ValuationSellerValue
{
    public Guid ValuationId { get; set; }
    public required string SellerId { get; set; }
    public int Points { get; set; }
    public double Value { get; set; }
    /// <summary>Null when it cannot be estimated (a task with a single test point).</summary>
    public double? StandardError { get; set; }
}

/// <summary>
/// A creating request remembered by its <c>Idempotency-Key</c>: a retry with the same key from the same caller gets
/// the resource the first request created instead of a second one.
/// </summary>
public sealed class IdempotencyRecord
{
    public required string ActorId { get; set; }
    public required string Key { get; set; }
    /// <summary>Which kind of request used the key, so reusing it for another kind is refused rather than answered wrongly.</summary>
    public required string Operation { get; set; }
    public Guid ResourceId { get; set; }
    public DateTime CreatedAt { get; set; }
}

/// <summary>An integration event written in the same transaction as the state change that caused it.</summary>
public sealed class OutboxMessage
{
    public long Id { get; set; }
    /// <summary>The bus message id, so a re-sent row is recognisable downstream.</summary>
    public Guid MessageId { get; set; }
    public required string MessageType { get; set; }
    public required string Body { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? DispatchedAt { get; set; }
    public int Attempts { get; set; }
    public string? LastError { get; set; }
    /// <summary>The W3C trace context of the request that wrote the row, so the publish joins that request's trace.</summary>
    public string? TraceParent { get; set; }
}
