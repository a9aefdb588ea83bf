using DataMarket.Valuation.Data;

namespace DataMarket.Valuation.Shapley;

/// <summary>
/// A KNN-family valuation prepared once (datasets encoded, groups ordered) and computed shard by shard: by one worker
/// after another, by many workers at once, or by <see cref="RunAll"/> in one process. Whoever computes the shards,
/// <see cref="Merge"/> folds them in shard order, so the result has the same bits.
/// </summary>
public sealed class ShardedValuation
{
    private readonly IReadOnlyList<TrainingPart> _parts;
    private readonly IReadOnlyList<string> _groupOrder;
    private readonly Func<TestPointRange, IProgress<int>?, CancellationToken, ShardMoments> _shard;

    private ShardedValuation(
        IReadOnlyList<TrainingPart> parts, IReadOnlyList<string> groupOrder, int trainingPoints, int testPoints,
        Func<TestPointRange, IProgress<int>?, CancellationToken, ShardMoments> shard)
    {
        _parts = parts;
        _groupOrder = groupOrder;
        TrainingPoints = trainingPoints;
        TestPoints = testPoints;
        _shard = shard;
    }

    public IReadOnlyList<TrainingPart> Parts => _parts;

    public int TrainingPoints { get; }

    public int TestPoints { get; }

    /// <summary>Whether <paramref name="method"/> is a sum over test points that shards (the exact KNN family).</summary>
    public static bool Supports(string method) => method is ValuationMethods.KnnShapley or ValuationMethods.AsymmetricKnnShapley;

    /// <summary>
    /// Prepares a valuation. Bad data (a non-numeric regression label, an unknown group) throws
    /// <see cref="DatasetFormatException"/> or <see cref="ArgumentException"/> here, before any shard runs. Shards run on
    /// <paramref name="device"/> (the CPU when null); the moments are the same either way.
    /// </summary>
    public static ShardedValuation Prepare(
        string method, string taskType, IReadOnlyList<TrainingPart> parts, TabularDataset test, int k,
        IReadOnlyList<string>? groupOrder = null, string testName = "test data", string labelColumn = DatasetReadOptions.DefaultLabelColumn,
        Gpu.ValuationDevice? device = null)
    {
        KnnShapley.CheckK(k);
        var trainingPoints = parts.Sum(p => p.Data.Rows);
        switch (method)
        {
            case ValuationMethods.KnnShapley when taskType == ValuationMethods.Regression:
            {
                var (train, testSet, order) = DatasetValuation.EncodeRegression(parts, test, testName, labelColumn);
                return new(parts, order, trainingPoints, testSet.Count, (range, progress, ct) => KnnShapley.RegressionShard(train, testSet, k, range, progress, ct, device));
            }

            case ValuationMethods.KnnShapley:
            {
                var (train, testSet, order) = DatasetValuation.Encode(parts, test);
                return new(parts, order, trainingPoints, testSet.Count, (range, progress, ct) => KnnShapley.ClassificationShard(train, testSet, k, range, progress, ct, device));
            }

            case ValuationMethods.AsymmetricKnnShapley:
            {
                var (train, testSet, groupsInData) = DatasetValuation.Encode(parts, test);
                var precedenceOrder = groupOrder ?? groupsInData;
                var precedence = GroupOrder.Resolve(groupsInData, precedenceOrder);
                var ordered = new TrainingSet(train.Features, train.FeatureCount, train.Classes, train.Groups.Select(g => precedence[g]).ToArray(), train.GroupCount);
                return new(parts, precedenceOrder.ToArray(), trainingPoints, testSet.Count, (range, progress, ct) => KnnShapley.AsymmetricShard(ordered, testSet, k, range, progress, ct, device));
            }

            default:
                throw new ArgumentException($"method '{method}' does not shard over test points", nameof(method));
        }
    }

    public ShardMoments RunShard(TestPointRange range, IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        _shard(range, progress, cancellationToken);

    public DatasetValuationResult Merge(IReadOnlyList<ShardMoments> shardsInOrder) =>
        DatasetValuation.ToDatasetResult(_parts, KnnShapley.MergeShards(shardsInOrder), _groupOrder);

    /// <summary>Every shard of <paramref name="plan"/> in this process, side by side on the cores, merged in shard order.</summary>
    public DatasetValuationResult RunAll(IReadOnlyList<TestPointRange> plan, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        var shards = new ShardMoments[plan.Count];
        var done = 0;
        Parallel.For(
            0,
            plan.Count,
            new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = Environment.ProcessorCount },
            s =>
            {
                shards[s] = RunShard(plan[s], null, cancellationToken);
                progress?.Report(Interlocked.Add(ref done, plan[s].Count));
            });
        return Merge(shards);
    }
}
