using DataMarket.Valuation.Data;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Valuation.Shapley;

/// <summary>One training dataset (for example a listing) and the group it belongs to (for example its seller).</summary>
public sealed record TrainingPart(string Name, string Group, TabularDataset Data);

/// <summary>Values per part row, per group, and the utility of the whole training set.</summary>
public sealed record DatasetValuationResult(
    IReadOnlyList<ValueEstimate[]> PartValues,
    IReadOnlyDictionary<string, ValueEstimate> GroupValues,
    IReadOnlyList<string> GroupOrder,
    ValueEstimate TotalUtility,
    int TestPoints);

/// <summary>Turns labelled datasets into the integer-coded sets the KNN algorithms run on.</summary>
public static class DatasetValuation
{
    public static DatasetValuationResult KnnShapleyClassification(
        IReadOnlyList<TrainingPart> parts,
        TabularDataset test,
        int k,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var (train, testSet, groupOrder) = Encode(parts, test);
        var result = KnnShapley.Classification(train, testSet, k, progress, cancellationToken);
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

    /// <summary>Concatenates the parts in order; groups are numbered in order of first appearance.</summary>
    public static (TrainingSet Train, TestSet Test, IReadOnlyList<string> GroupOrder) Encode(IReadOnlyList<TrainingPart> parts, TabularDataset test)
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

        var total = parts.Sum(p => p.Data.Rows);
        var features = new float[(long)total * test.FeatureCount];
        var trainClasses = new int[total];
        var groups = new int[total];
        var groupIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var groupOrder = new List<string>();
        var offset = 0;
        foreach (var part in parts)
        {
            if (!groupIndex.TryGetValue(part.Group, out var group))
            {
                group = groupOrder.Count;
                groupIndex[part.Group] = group;
                groupOrder.Add(part.Group);
            }

            part.Data.Features.CopyTo(features, (long)offset * test.FeatureCount);
            for (var i = 0; i < part.Data.Rows; i++)
            {
                trainClasses[offset + i] = Code(part.Data.Labels[i]);
                groups[offset + i] = group;
            }

            offset += part.Data.Rows;
        }

        var testClasses = test.Labels.Select(Code).ToArray();
        return (new TrainingSet(features, test.FeatureCount, trainClasses, groups, groupOrder.Count),
            new TestSet(test.Features, test.FeatureCount, testClasses),
            groupOrder);
    }
}
