using DataMarket.Catalog.Model;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Catalog.Application;

/// <summary>
/// A listing as callers see it. The content hash (blob id) stays internal: shown to everyone, it would let anyone
/// holding a candidate file confirm that a seller sells exactly that data.
/// </summary>
public sealed record ListingView(
    Guid Id, string SellerId, string Name, string? Description, ListingStatus Status,
    string? Format, int Rows, int Features, DateTime CreatedAt, DateTime? ListedAt)
{
    public static ListingView From(Listing l) =>
        new(l.Id, l.SellerId, l.Name, l.Description, l.Status, l.Format, l.Rows, l.Features, l.CreatedAt, l.ListedAt);
}

public sealed record TestTaskView(Guid Id, string BuyerId, string Name, string Format, int Rows, int Features, DateTime PostedAt)
{
    public static TestTaskView From(TestTask t) => new(t.Id, t.BuyerId, t.Name, t.Format, t.Rows, t.Features, t.PostedAt);
}

/// <summary>A buyer's proxy model as the buyer sees it: what the checkpoint holds, not where it is stored.</summary>
public sealed record ProxyModelView(Guid Id, string Name, int InputWidth, IReadOnlyList<int> HiddenWidths, int OutputWidth, long Bytes, DateTime UploadedAt)
{
    public static ProxyModelView From(ProxyModel m) => new(
        m.Id, m.Name, m.InputWidth,
        m.HiddenWidths.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(w => int.Parse(w, System.Globalization.CultureInfo.InvariantCulture)).ToArray(),
        m.OutputWidth, m.Bytes, m.UploadedAt);
}

/// <summary>A value with its standard error and 95% interval; the error and interval are null when they cannot be estimated.</summary>
public sealed record EstimateView(double Value, double? StandardError, double? Lower95, double? Upper95)
{
    public static EstimateView From(double value, double? standardError) =>
        standardError is { } se
            ? new(value, se, value - ValueEstimate.Z95 * se, value + ValueEstimate.Z95 * se)
            : new(value, null, null, null);
}

public sealed record SellerValueView(string SellerId, int Points, EstimateView Value);

public sealed record ValuationView(
    Guid Id, string BuyerId, Guid TaskId, string Method, string TaskType, int K, IReadOnlyList<Guid> ListingIds, ValuationStatus Status,
    string? Error, int? TrainingPoints, int? TestPoints, int CompletedTestPoints, double? TotalUtility,
    DateTime RequestedAt, DateTime? StartedAt, DateTime? FinishedAt, IReadOnlyList<SellerValueView> Sellers,
    string? CallbackUrl = null, CallbackView? Callback = null, string? CallbackSecret = null);

/// <summary>How the notice to the callback URL went: <c>pending</c> (being tried), <c>delivered</c> or <c>failed</c> (given up).</summary>
public sealed record CallbackView(string Delivery, int Attempts, DateTime? DeliveredAt, string? LastError);

public sealed record PointValueView(int Ordinal, Guid ListingId, int Row, EstimateView Value);

public sealed record PointPage(int Total, int Offset, int Limit, IReadOnlyList<PointValueView> Items);

/// <summary>
/// What one valuation found one seller's data worth, as the seller sees it: the method, its value and interval, and
/// which of the seller's own listings were valued. Never the buyer, the task or other sellers' listings.
/// </summary>
public sealed record ReceivedValueView(Guid ValuationId, string Method, int K, IReadOnlyList<Guid> ListingIds, int Points, EstimateView Value, DateTime? FinishedAt);

/// <summary>What erasing an account's catalog data removed (and which listings were only withdrawn, see the README).</summary>
public sealed record ErasureView(int ListingsDeleted, int ListingsWithdrawn, int TasksDeleted, int ValuationsDeleted, int BlobsDeleted);
