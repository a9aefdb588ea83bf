using System.Globalization;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Gpu;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Valuation.Shapley;

/// <summary>
/// One training dataset (for example a listing) and the group it belongs to (for example its seller). When the data
/// carries a group per row (read with <see cref="DatasetReadOptions.GroupColumn"/>), the row's group wins over
/// <paramref name="Group"/>.
/// </summary>
public sealed record TrainingPart(string Name, string Group, TabularDataset Data);

/// <summary>
/// Values per part row, per group, and U(all) - U(empty) (what the values sum to). <see cref="GroupOrder"/> lists
/// the groups in the order of <see cref="GroupValues"/>'s keys as computed: first appearance, or the precedence
/// order for asymmetric valuation.
/// </summary>
public sealed record DatasetValuationResult(
    IReadOnlyList<ValueEstimate[]> PartValues,
    IReadOnlyDictionary<string, ValueEstimate> GroupValues,
    IReadOnlyList<string> GroupOrder,
    ValueEstimate TotalUtility,
    int TestPoints);

/// <summary>A tiered valuation and the tiers it used (by index into <see cref="DatasetValuationResult.GroupOrder"/>).</summary>
public sealed record TieredDatasetValuation(DatasetValuationResult Values, TierAssignment Tiers)
{
    public int TierOf(string group) => Tiers.TierOfGroup[Values.GroupOrder.ToList().IndexOf(group)];
}

/// <summary>Turns labelled datasets into the integer-coded sets the KNN algorithms run on.</summary>
public static class DatasetValuation
{
    /// <summary>Plain exact KNN-Shapley, classification utility.</summary>
    public static DatasetValuationResult KnnShapleyClassification(
        IReadOnlyList<TrainingPart> parts,
        TabularDataset test,
        int k,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default,
        ValuationDevice? device = null)
    {
        KnnShapley.CheckK(k);
        var (train, testSet, groupOrder) = Encode(parts, test);
        var result = KnnShapley.Classification(train, testSet, k, progress, cancellationToken, device: device);
        return ToDatasetResult(parts, result, groupOrder);
    }

    /// <summary>
    /// Plain exact KNN-Shapley, regression utility; every label must be a number. <paramref name="testName"/> and
    /// <paramref name="labelColumn"/> only shape the error message for a non-numeric test label.
    /// </summary>
    public static DatasetValuationResult KnnShapleyRegression(
        IReadOnlyList<TrainingPart> parts,
        TabularDataset test,
        int k,
        string testName = "test data",
        string labelColumn = DatasetReadOptions.DefaultLabelColumn,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default,
        ValuationDevice? device = null)
    {
        KnnShapley.CheckK(k);
        var (train, testSet, groupOrder) = EncodeRegression(parts, test, testName, labelColumn);
        var result = KnnShapley.Regression(train, testSet, k, progress, cancellationToken, device: device);
        return ToDatasetResult(parts, result, groupOrder);
    }

    /// <summary>
    /// Asymmetric KNN-Shapley (classification utility) with the groups taking precedence in
    /// <paramref name="groupOrder"/>, which must name every group in the training data exactly once.
    /// </summary>
    public static DatasetValuationResult AsymmetricKnnShapley(
        IReadOnlyList<TrainingPart> parts,
        TabularDataset test,
        int k,
        IReadOnlyList<string> groupOrder,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default,
        ValuationDevice? device = null)
    {
        KnnShapley.CheckK(k);
        var (train, testSet, groupsInData) = Encode(parts, test);
        var precedence = GroupOrder.Resolve(groupsInData, groupOrder);
        var ordered = new TrainingSet(train.Features, train.FeatureCount, train.Classes, train.Groups.Select(g => precedence[g]).ToArray(), train.GroupCount);
        var result = KnnShapley.Asymmetric(ordered, testSet, k, progress, cancellationToken, device: device);
        return ToDatasetResult(parts, result, groupOrder.ToArray());
    }

    /// <summary>
    /// The replication-robust valuation behind the revenue split (method <c>tiered-knn-shapley</c>): groups in order of
    /// first appearance stand for sellers in listing order, <see cref="ReplicationTiers"/> puts copiers in later tiers,
    /// and <see cref="KnnShapley.Tiered"/> values the points; group values stay per seller.
    /// </summary>
    public static TieredDatasetValuation TieredKnnShapley(
        IReadOnlyList<TrainingPart> parts,
        TabularDataset test,
        int k,
        DuplicatePolicy? policy = null,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default,
        ValuationDevice? device = null)
    {
        KnnShapley.CheckK(k);
        var (train, testSet, groupOrder) = Encode(parts, test);
        var tiers = ReplicationTiers.Assign(train, policy);
        var result = KnnShapley.Tiered(train, tiers.TierOfGroup, testSet, k, progress, cancellationToken, device: device);
        return new TieredDatasetValuation(ToDatasetResult(parts, result, groupOrder), tiers);
    }

    /// <summary>Groups (sellers) as the players: exact for up to <see cref="SellerShapley.MaxExactGroups"/> groups, else sampled.</summary>
    public static GroupShapleyResult SellerShapleyClassification(
        IReadOnlyList<TrainingPart> parts,
        TabularDataset test,
        int k,
        int permutationsPerTestPoint = SellerShapley.DefaultPermutationsPerTestPoint,
        int seed = 0,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default,
        ValuationDevice? device = null)
    {
        KnnShapley.CheckK(k);
        var (train, testSet, groupOrder) = Encode(parts, test);
        var result = train.GroupCount <= SellerShapley.MaxExactGroups
            ? SellerShapley.Exact(train, testSet, k, progress, cancellationToken, device: device)
            : SellerShapley.Sampled(train, testSet, k, permutationsPerTestPoint, seed, progress, cancellationToken, device: device);
        return result with { GroupNames = groupOrder };
    }

    /// <summary>Concatenates the parts in order; groups are numbered in order of first appearance; labels become classes.</summary>
    public static (TrainingSet Train, TestSet Test, IReadOnlyList<string> GroupOrder) Encode(IReadOnlyList<TrainingPart> parts, TabularDataset test)
    {
        var (features, groups, groupOrder) = EncodePoints(parts, test);
        var classes = new Dictionary<string, int>(StringComparer.Ordinal);
        int Code(string label)
        {
            if (!classes.TryGetValue(label, out var code))
            {
                code = classes.Count;
                classes[label] = code;
            }

            return code;
        }

        var trainClasses = parts.SelectMany(p => p.Data.Labels).Select(Code).ToArray();
        var testClasses = test.Labels.Select(Code).ToArray();
        return (new TrainingSet(features, test.FeatureCount, trainClasses, groups, groupOrder.Count),
            new TestSet(test.Features, test.FeatureCount, testClasses),
            groupOrder);
    }

    /// <summary>
    /// Like <see cref="Encode"/>, but labels are parsed as numbers (invariant culture, as the reader normalises them).
    /// A label that is not a finite number throws <see cref="DatasetFormatException"/> naming the part (or
    /// <paramref name="testName"/>), the 1-based data row and the label column.
    /// </summary>
    public static (RegressionTrainingSet Train, RegressionTestSet Test, IReadOnlyList<string> GroupOrder) EncodeRegression(
        IReadOnlyList<TrainingPart> parts,
        TabularDataset test,
        string testName = "test data",
        string labelColumn = DatasetReadOptions.DefaultLabelColumn)
    {
        var (features, groups, groupOrder) = EncodePoints(parts, test);
        var targets = new double[features.Length / test.FeatureCount];
        var offset = 0;
        foreach (var part in parts)
        {
            ParseTargets(part.Data.Labels, part.Name, labelColumn, targets.AsSpan(offset));
            offset += part.Data.Rows;
        }

        var testTargets = new double[test.Rows];
        ParseTargets(test.Labels, testName, labelColumn, testTargets);
        return (new RegressionTrainingSet(features, test.FeatureCount, targets, groups, groupOrder.Count),
            new RegressionTestSet(test.Features, test.FeatureCount, testTargets),
            groupOrder);
    }

    private static void ParseTargets(string[] labels, string source, string labelColumn, Span<double> targets)
    {
        for (var i = 0; i < labels.Length; i++)
        {
            if (!double.TryParse(labels[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
            {
                throw new DatasetFormatException(source, i + 1, labelColumn, $"regression needs a numeric label, got '{labels[i]}'");
            }

            targets[i] = value;
        }
    }

    private static (float[] Features, int[] Groups, List<string> GroupOrder) EncodePoints(IReadOnlyList<TrainingPart> parts, TabularDataset test)
    {
        ArgumentNullException.ThrowIfNull(parts);
        ArgumentNullException.ThrowIfNull(test);
        if (parts.Count == 0)
        {
            throw new ArgumentException("at least one training dataset is needed", nameof(parts));
        }

        foreach (var part in parts)
        {
            if (part.Data.FeatureCount != test.FeatureCount)
            {
                throw new ArgumentException($"'{part.Name}' has {part.Data.FeatureCount} features but the test task has {test.FeatureCount}");
            }
        }

        var total = parts.Sum(p => p.Data.Rows);
        var features = new float[(long)total * test.FeatureCount];
        var groups = new int[total];
        var groupIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var groupOrder = new List<string>();
        int GroupOf(string name)
        {
            if (!groupIndex.TryGetValue(name, out var group))
            {
                group = groupOrder.Count;
                groupIndex[name] = group;
                groupOrder.Add(name);
            }

            return group;
        }

        var offset = 0;
        foreach (var part in parts)
        {
            part.Data.Features.CopyTo(features, (long)offset * test.FeatureCount);
            var rowGroups = part.Data.Groups;
            for (var i = 0; i < part.Data.Rows; i++)
            {
                groups[offset + i] = GroupOf(rowGroups is null ? part.Group : rowGroups[i]);
            }

            offset += part.Data.Rows;
        }

        return (features, groups, groupOrder);
    }

    internal static DatasetValuationResult ToDatasetResult(IReadOnlyList<TrainingPart> parts, ShapleyResult result, IReadOnlyList<string> groupOrder)
    {
        var partValues = new List<ValueEstimate[]>(parts.Count);
        var offset = 0;
        foreach (var part in parts)
        {
            partValues.Add(result.Points.AsSpan(offset, part.Data.Rows).ToArray());
            offset += part.Data.Rows;
        }

        var groups = new Dictionary<string, ValueEstimate>(StringComparer.Ordinal);
        for (var g = 0; g < groupOrder.Count; g++)
        {
            groups[groupOrder[g]] = result.Groups[g];
        }

        return new DatasetValuationResult(partValues, groups, groupOrder, result.TotalUtility, result.TestPoints);
    }
}
