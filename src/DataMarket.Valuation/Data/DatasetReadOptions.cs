namespace DataMarket.Valuation.Data;

public sealed record DatasetReadOptions
{
    public const string DefaultLabelColumn = "label";

    /// <summary>Name used in error messages (a file path or an upload's name).</summary>
    public required string SourceName { get; init; }

    public DatasetFormat Format { get; init; } = DatasetFormat.Csv;

    /// <summary>CSV header name of the label column, or the JSON field holding the label.</summary>
    public string LabelColumn { get; init; } = DefaultLabelColumn;

    /// <summary>Optional CSV column (or JSON field) holding a group name per row, for example the seller; kept as text, not a feature.</summary>
    public string? GroupColumn { get; init; }

    /// <summary>Longest accepted line in characters; checked while streaming, so a file without newlines costs no more memory than this.</summary>
    public int MaxLineLength { get; init; } = 1 << 20;

    /// <summary>Longest accepted CSV field (numbers, labels, column names) in characters.</summary>
    public int MaxFieldLength { get; init; } = 1024;

    /// <summary>When set, every row must have exactly this many features (the buyer's task's width).</summary>
    public int? ExpectedFeatures { get; init; }
}
