using DataMarket.Valuation.Data;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Valuation.Shapley;

/// <summary>
/// A valuation prepared once (datasets encoded, groups ordered; the KNN family here, LoGra through <see cref="FromEngine"/>) and computed shard by shard: by one worker
/// after another, by many workers at once, or by <see cref="RunAll"/> in one process. Whoever computes the shards,
/// <see cref="Merge"/> folds them in shard order, so the result has the same bits.
/// </summary>
public sealed class ShardedValuation
{
    private readonly IReadOnlyList<TrainingPart> _parts;
    private readonly IReadOnlyList<string> _groupOrder;
    private readonly Func<TestPointRange, IProgress<int>?, CancellationToken, ShardMoments> _shard;

    /// <summary>Where each valued part came from in the request, when the parts are valued in another order (tiers).</summary>
    private readonly int[]? _requestIndex;

    /// <summary>Whether points are valued (false for seller Shapley, where the sellers are the players).</summary>
    private readonly bool _valuesPoints;

    /// <summary>Whether shards cut the training rows (each shard holds its rows' values) instead of the test points.</summary>
    private readonly bool _overTrainingRows;

    /// <summary>
    /// For an engine's valuation: its blocks of units; shards hold 2^j blocks and merge pairwise
    /// (<see cref="KnnShapley.ReducePairwise"/>), so the bits do not depend on the shard size. 0 for the KNN family.
    /// </summary>
    private readonly int _block;

    /// <summary>The work of one shard unit, in (training point, test point) pairs; sets how many units a shard holds.</summary>
    private readonly long _unitCost;

    private ShardedValuation(
        IReadOnlyList<TrainingPart> parts, IReadOnlyList<string> groupOrder, int trainingPoints, int testPoints,
        Func<TestPointRange, IProgress<int>?, CancellationToken, ShardMoments> shard, int[]? requestIndex = null, bool valuesPoints = true)
    {
        _parts = parts;
        _groupOrder = groupOrder;
        TrainingPoints = trainingPoints;
        TestPoints = testPoints;
        _shard = shard;
        _requestIndex = requestIndex;
        _valuesPoints = valuesPoints;
        _unitCost = trainingPoints;
    }

    private ShardedValuation(
        IReadOnlyList<TrainingPart> parts, IReadOnlyList<string> groupOrder, int testPoints, Func<TestPointRange, IProgress<int>?, CancellationToken, ShardMoments> shard,
        bool overTrainingRows, int block, long unitCost)
        : this(parts, groupOrder, parts.Sum(p => p.Data.Rows), testPoints, shard)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(block, 1);
        _overTrainingRows = overTrainingRows;
        _block = block;
        _unitCost = Math.Max(1, unitCost);
    }

    /// <summary>
    /// A valuation whose shards another engine computes (LoGra on torch, in the valuation worker). Over test points, a
    /// shard's moments are per training point (in the order of <paramref name="parts"/>), per group (in
    /// <paramref name="groupOrder"/>) and for the total, reduced from its blocks of <paramref name="block"/> test points
    /// with <see cref="KnnShapley.ReducePairwise"/>; shards hold 2^j blocks and merge the same way, so the merged
    /// bits are the single shard's whatever the shard size. Over training rows
    /// (<paramref name="overTrainingRows"/>: a value per row that no test point averages, such as self-influence), a
    /// shard holds one sample per row of its range; <see cref="Merge"/> puts the rows side by side and sums each group
    /// and the total in row order, so the sums do not depend on the plan either. One unit (test point or training row)
    /// costs about <paramref name="unitCost"/> pairs.
    /// </summary>
    public static ShardedValuation FromEngine(
        IReadOnlyList<TrainingPart> parts, IReadOnlyList<string> groupOrder, int testPoints,
        Func<TestPointRange, IProgress<int>?, CancellationToken, ShardMoments> shard, bool overTrainingRows, int block, long unitCost)
    {
        ArgumentNullException.ThrowIfNull(parts);
        ArgumentNullException.ThrowIfNull(groupOrder);
        return new ShardedValuation(parts, groupOrder, testPoints, shard, overTrainingRows, block, unitCost);
    }

    /// <summary>What the plan cuts: the test points, or the training rows for a valuation over training rows.</summary>
    public int ShardUnits => _overTrainingRows ? TrainingPoints : TestPoints;

    /// <summary>The shards for about <paramref name="pairsPerShard"/> pairs each, from the job size only (<see cref="ShardPlan"/>).</summary>
    public IReadOnlyList<TestPointRange> Plan(long pairsPerShard = ShardPlan.DefaultPairsPerShard) => _block > 0
        ? ShardPlan.ForPairwise(_unitCost, ShardUnits, pairsPerShard, _block)
        : ShardPlan.For(TrainingPoints, TestPoints, pairsPerShard);

    /// <summary>The training parts in the order they were valued.</summary>
    public IReadOnlyList<TrainingPart> Parts => _parts;

    public int TrainingPoints { get; }

    public int TestPoints { get; }

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

            case ValuationMethods.AsymmetricKnnShapley or ValuationMethods.TieredKnnShapley or ValuationMethods.SellerShapley
                when taskType == ValuationMethods.Regression:
                throw new ArgumentException($"method '{method}' values classification tasks only", nameof(taskType));

            case ValuationMethods.AsymmetricKnnShapley:
            {
                var (train, testSet, groupsInData) = DatasetValuation.Encode(parts, test);
                var precedenceOrder = groupOrder ?? groupsInData;
                var precedence = GroupOrder.Resolve(groupsInData, precedenceOrder);
                var ordered = new TrainingSet(train.Features, train.FeatureCount, train.Classes, train.Groups.Select(g => precedence[g]).ToArray(), train.GroupCount);
                return new(parts, precedenceOrder.ToArray(), trainingPoints, testSet.Count, (range, progress, ct) => KnnShapley.AsymmetricShard(ordered, testSet, k, range, progress, ct, device));
            }

            case ValuationMethods.TieredKnnShapley:
            {
                // Tiers follow listing order: the group order when there is one (the catalog sends sellers by their
                // earliest listing), else the order of the parts; parts are valued in that order and put back in Merge.
                var order = groupOrder ?? parts.Select(p => p.Group).Distinct().ToList();
                var groups = parts.Select(p => p.Group).Distinct().ToList();
                var precedence = GroupOrder.Resolve(groups, order);
                var rank = groups.Select((group, g) => (group, g)).ToDictionary(x => x.group, x => precedence[x.g], StringComparer.Ordinal);
                var listed = Enumerable.Range(0, parts.Count).OrderBy(i => rank[parts[i].Group]).ThenBy(i => i).ToArray();
                var listedParts = listed.Select(i => parts[i]).ToList();
                var (train, testSet, groupsInData) = DatasetValuation.Encode(listedParts, test);
                var tiers = ReplicationTiers.Assign(train);
                return new(listedParts, groupsInData, trainingPoints, testSet.Count, (range, progress, ct) => KnnShapley.TieredShard(train, tiers.TierOfGroup, testSet, k, range, progress, ct, device), listed);
            }

            case ValuationMethods.SellerShapley:
            {
                // Exact up to MaxExactGroups sellers, else the sampled estimate with the default permutations and seed.
                var (train, testSet, groupsInData) = DatasetValuation.Encode(parts, test);
                var permutations = train.GroupCount <= SellerShapley.MaxExactGroups ? 0 : SellerShapley.DefaultPermutationsPerTestPoint;
                return new(parts, groupsInData, trainingPoints, testSet.Count, (range, progress, ct) => SellerShapley.Shard(train, testSet, k, range, permutations, seed: 0, progress, ct, device), valuesPoints: false);
            }

            default:
                throw new ArgumentException($"method '{method}' does not shard over test points", nameof(method));
        }
    }

    public ShardMoments RunShard(TestPointRange range, IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        _shard(range, progress, cancellationToken);

    /// <summary>Folds the shards in shard order; part values come back in the request's order of parts.</summary>
    public DatasetValuationResult Merge(IReadOnlyList<ShardMoments> shardsInOrder)
    {
        if (_overTrainingRows)
        {
            return MergeRows(shardsInOrder);
        }

        var merged = _block > 0 ? KnnShapley.MergeShardsPairwise(shardsInOrder) : KnnShapley.MergeShards(shardsInOrder);
        if (!_valuesPoints)
        {
            return new DatasetValuationResult(
                [], _groupOrder.Select((group, g) => (group, g)).ToDictionary(x => x.group, x => merged.Groups[x.g], StringComparer.Ordinal), _groupOrder, merged.TotalUtility, merged.TestPoints);
        }

        var result = DatasetValuation.ToDatasetResult(_parts, merged, _groupOrder);
        if (_requestIndex is null)
        {
            return result;
        }

        var partValues = new ValueEstimate[_requestIndex.Length][];
        for (var position = 0; position < _requestIndex.Length; position++)
        {
            partValues[_requestIndex[position]] = result.PartValues[position];
        }

        return result with { PartValues = partValues };
    }

    /// <summary>Shards over training rows: each row's value is its shard's one sample (no standard error).</summary>
    private DatasetValuationResult MergeRows(IReadOnlyList<ShardMoments> shardsInOrder)
    {
        var values = new double[TrainingPoints];
        var next = 0;
        foreach (var shard in shardsInOrder)
        {
            if (shard.Range.First != next || shard.Points.Length != shard.Range.Count || shard.Range.First + shard.Range.Count > TrainingPoints)
            {
                throw new InvalidDataException($"shard of rows {shard.Range.First}..{shard.Range.First + shard.Range.Count - 1} does not follow row {next - 1}");
            }

            shard.Points.Means.CopyTo(values.AsSpan(next));
            next += shard.Range.Count;
        }

        if (next != TrainingPoints)
        {
            throw new InvalidDataException($"the shards cover {next} of {TrainingPoints} training rows");
        }

        var groupIndex = _groupOrder.Select((group, g) => (group, g)).ToDictionary(x => x.group, x => x.g, StringComparer.Ordinal);
        var groupSums = new double[_groupOrder.Count];
        var partValues = new List<ValueEstimate[]>(_parts.Count);
        double total = 0;
        var row = 0;
        foreach (var part in _parts)
        {
            var estimates = new ValueEstimate[part.Data.Rows];
            for (var i = 0; i < estimates.Length; i++, row++)
            {
                estimates[i] = new ValueEstimate(values[row], double.NaN);
                groupSums[groupIndex[part.Group]] += values[row];
                total += values[row];
            }

            partValues.Add(estimates);
        }

        var groups = _groupOrder.Select((group, g) => (group, g)).ToDictionary(x => x.group, x => new ValueEstimate(groupSums[x.g], double.NaN), StringComparer.Ordinal);
        return new DatasetValuationResult(partValues, groups, _groupOrder, new ValueEstimate(total, double.NaN), TestPoints);
    }

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
