namespace DataMarket.Valuation.Data;

/// <summary>One validated row: finite float32 features, the label as text, and an optional group name.</summary>
public sealed record DatasetRow(long Row, float[] Features, string Label, string? Group);

/// <summary>What validating a file found, without keeping its rows.</summary>
public sealed record DatasetSummary(int Rows, int Features, IReadOnlyList<string> FeatureNames);

/// <summary>A dense, row-major float32 feature matrix with one label (and optionally one group) per row.</summary>
public sealed class TabularDataset
{
    public TabularDataset(float[] features, int featureCount, string[] labels, string[]? groups = null, IReadOnlyList<string>? featureNames = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(featureCount);
        if (features.Length != labels.Length * featureCount)
        {
            throw new ArgumentException($"features has {features.Length} values, expected {labels.Length} rows x {featureCount}", nameof(features));
        }

        if (groups is not null && groups.Length != labels.Length)
        {
            throw new ArgumentException("groups must have one entry per row", nameof(groups));
        }

        Features = features;
        FeatureCount = featureCount;
        Labels = labels;
        Groups = groups;
        FeatureNames = featureNames ?? Enumerable.Range(0, featureCount).Select(i => $"x{i}").ToArray();
    }

    public float[] Features { get; }

    public int FeatureCount { get; }

    public string[] Labels { get; }

    public string[]? Groups { get; }

    public IReadOnlyList<string> FeatureNames { get; }

    public int Rows => Labels.Length;

    public ReadOnlySpan<float> Row(int index) => Features.AsSpan(index * FeatureCount, FeatureCount);
}
