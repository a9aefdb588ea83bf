using System.Numerics.Tensors;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Valuation.Shapley;

/// <summary>Per-point and per-group values with standard errors over the test points.</summary>
public sealed record ShapleyResult(
    ValueEstimate[] Points,
    ValueEstimate[] Groups,
    ValueEstimate TotalUtility,
    int TestPoints);

/// <summary>
/// Exact KNN-Shapley for the unweighted KNN classifier utility (Jia et al., PVLDB 2019):
/// U(S) = (1/K) * number of label matches among the min(K, |S|) nearest points of S, U(empty) = 0.
/// Training points are ranked by Euclidean distance to each test point (float32), ties broken by the lower
/// training index. With c_i the match indicator at rank i (1 = nearest):
/// s_N = c_N * min(K, N) / (N * K) and s_i = s_{i+1} + (c_i - c_{i+1}) / K * min(K, i) / i.
/// The value of a point is the mean of s over test points; its standard error is the spread of those samples.
/// </summary>
public static class KnnShapley
{
    public static ShapleyResult Classification(
        TrainingSet train,
        TestSet test,
        int k,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        if (train.FeatureCount != test.FeatureCount)
        {
            throw new ArgumentException($"training data has {train.FeatureCount} features, test data {test.FeatureCount}");
        }

        var n = train.Count;
        var groupCount = train.GroupCount;
        var pointMoments = new RunningMoments(n);
        var groupMoments = new RunningMoments(groupCount);
        var utilityMoments = new RunningMoments(1);
        var completed = 0;
        var gate = new object();

        Parallel.For(
            0,
            test.Count,
            new ParallelOptions { CancellationToken = cancellationToken },
            () => new Workspace(n, groupCount),
            (j, _, workspace) =>
            {
                var utility = ValuesForTestPoint(train, test.Row(j), test.Classes[j], k, workspace);
                workspace.PointMoments.Add(workspace.Values);
                Array.Clear(workspace.GroupValues);
                for (var i = 0; i < n; i++)
                {
                    workspace.GroupValues[train.Groups[i]] += workspace.Values[i];
                }

                workspace.GroupMoments.Add(workspace.GroupValues);
                workspace.UtilityMoments.Add([utility]);
                var done = Interlocked.Increment(ref completed);
                progress?.Report(done);
                return workspace;
            },
            workspace =>
            {
                lock (gate)
                {
                    pointMoments.Merge(workspace.PointMoments);
                    groupMoments.Merge(workspace.GroupMoments);
                    utilityMoments.Merge(workspace.UtilityMoments);
                }
            });

        return new ShapleyResult(pointMoments.Estimates(), groupMoments.Estimates(), utilityMoments.Estimate(0), test.Count);
    }

    /// <summary>Fills <c>workspace.Values</c> with one test point's exact values (training order) and returns U(all).</summary>
    internal static double ValuesForTestPoint(TrainingSet train, ReadOnlySpan<float> testRow, int testClass, int k, Workspace workspace)
    {
        var n = train.Count;
        var order = workspace.Order;
        RankByDistance(train, testRow, workspace.Keys, order);

        var values = workspace.Values;
        if (n == 0)
        {
            return 0;
        }

        // Ranks are 1-based in the formulas; position r in `order` is rank r + 1.
        var matchNext = train.Classes[order[n - 1]] == testClass ? 1.0 : 0.0;
        var current = matchNext * Math.Min(k, n) / ((double)n * k);
        values[order[n - 1]] = current;
        for (var rank = n - 1; rank >= 1; rank--)
        {
            var match = train.Classes[order[rank - 1]] == testClass ? 1.0 : 0.0;
            current += (match - matchNext) / k * Math.Min(k, rank) / rank;
            values[order[rank - 1]] = current;
            matchNext = match;
        }

        var top = Math.Min(k, n);
        var matches = 0;
        for (var r = 0; r < top; r++)
        {
            if (train.Classes[order[r]] == testClass)
            {
                matches++;
            }
        }

        return (double)matches / k;
    }

    /// <summary>
    /// Writes the training indices sorted by (distance, index) into <paramref name="order"/>. The key packs the
    /// non-negative float32 distance's bits (which order like the floats) above the index, so one primitive sort
    /// of 64-bit integers gives the tie-break for free.
    /// </summary>
    internal static void RankByDistance(TrainingSet train, ReadOnlySpan<float> testRow, ulong[] keys, int[] order)
    {
        var n = train.Count;
        for (var i = 0; i < n; i++)
        {
            var distance = TensorPrimitives.Distance(train.Row(i), testRow);
            keys[i] = ((ulong)BitConverter.SingleToUInt32Bits(distance) << 32) | (uint)i;
        }

        Array.Sort(keys, 0, n);
        for (var i = 0; i < n; i++)
        {
            order[i] = (int)(uint)keys[i];
        }
    }

    internal sealed class Workspace(int n, int groupCount)
    {
        public ulong[] Keys { get; } = new ulong[n];

        public int[] Order { get; } = new int[n];

        public double[] Values { get; } = new double[n];

        public double[] GroupValues { get; } = new double[groupCount];

        public RunningMoments PointMoments { get; } = new(n);

        public RunningMoments GroupMoments { get; } = new(groupCount);

        public RunningMoments UtilityMoments { get; } = new(1);
    }
}
