namespace DataMarket.Valuation.Shapley;

/// <summary>Training points as a dense float32 matrix with integer classes and a group (seller) index per point.</summary>
public sealed class TrainingSet
{
    public TrainingSet(float[] features, int featureCount, int[] classes, int[]? groups = null, int groupCount = 1)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(classes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(featureCount);
        if (features.Length != classes.Length * featureCount)
        {
            throw new ArgumentException("features must hold featureCount values per class entry", nameof(features));
        }

        groups ??= new int[classes.Length];
        if (groups.Length != classes.Length)
        {
            throw new ArgumentException("groups must have one entry per point", nameof(groups));
        }

        foreach (var group in groups)
        {
            if ((uint)group >= (uint)groupCount)
            {
                throw new ArgumentOutOfRangeException(nameof(groups), $"group index {group} is outside 0..{groupCount - 1}");
            }
        }

        Features = features;
        FeatureCount = featureCount;
        Classes = classes;
        Groups = groups;
        GroupCount = groupCount;
    }

    public float[] Features { get; }

    public int FeatureCount { get; }

    public int[] Classes { get; }

    public int[] Groups { get; }

    public int GroupCount { get; }

    public int Count => Classes.Length;

    public ReadOnlySpan<float> Row(int index) => Features.AsSpan(index * FeatureCount, FeatureCount);
}

/// <summary>The buyer's test points.</summary>
public sealed class TestSet
{
    public TestSet(float[] features, int featureCount, int[] classes)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(classes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(featureCount);
        if (features.Length != classes.Length * featureCount)
        {
            throw new ArgumentException("features must hold featureCount values per class entry", nameof(features));
        }

        Features = features;
        FeatureCount = featureCount;
        Classes = classes;
    }

    public float[] Features { get; }

    public int FeatureCount { get; }

    public int[] Classes { get; }

    public int Count => Classes.Length;

    public ReadOnlySpan<float> Row(int index) => Features.AsSpan(index * FeatureCount, FeatureCount);
}

/// <summary>Training points with a numeric target each, for KNN regression valuation.</summary>
public sealed class RegressionTrainingSet
{
    public RegressionTrainingSet(float[] features, int featureCount, double[] targets, int[]? groups = null, int groupCount = 1)
    {
        ArgumentNullException.ThrowIfNull(targets);
        foreach (var target in targets)
        {
            if (!double.IsFinite(target))
            {
                throw new ArgumentException("targets must be finite numbers", nameof(targets));
            }
        }

        // The classification set validates shapes and groups; its classes are unused placeholders.
        Points = new TrainingSet(features, featureCount, new int[targets.Length], groups, groupCount);
        Targets = targets;
    }

    internal TrainingSet Points { get; }

    public float[] Features => Points.Features;

    public int FeatureCount => Points.FeatureCount;

    public double[] Targets { get; }

    public int[] Groups => Points.Groups;

    public int GroupCount => Points.GroupCount;

    public int Count => Targets.Length;
}

/// <summary>The buyer's test points with numeric targets.</summary>
public sealed class RegressionTestSet
{
    public RegressionTestSet(float[] features, int featureCount, double[] targets)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(featureCount);
        if (features.Length != targets.Length * featureCount)
        {
            throw new ArgumentException("features must hold featureCount values per target", nameof(features));
        }

        foreach (var target in targets)
        {
            if (!double.IsFinite(target))
            {
                throw new ArgumentException("targets must be finite numbers", nameof(targets));
            }
        }

        Features = features;
        FeatureCount = featureCount;
        Targets = targets;
    }

    public float[] Features { get; }

    public int FeatureCount { get; }

    public double[] Targets { get; }

    public int Count => Targets.Length;

    public ReadOnlySpan<float> Row(int index) => Features.AsSpan(index * FeatureCount, FeatureCount);
}
