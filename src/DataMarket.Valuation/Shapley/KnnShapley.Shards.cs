using System.Buffers.Binary;
using DataMarket.Valuation.Gpu;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Valuation.Shapley;

/// <summary>A run of consecutive test points: <see cref="First"/> .. First + Count - 1.</summary>
public sealed record TestPointRange(int First, int Count);

/// <summary>
/// The partial moments of one shard (count, mean and sum of squared deviations per training point, per group and for
/// the utility) over a fixed range of test points. Shards merge with the parallel update formula (Chan et al.);
/// merged in shard order they give the same bits wherever and however many at a time the shards were computed.
/// </summary>
public sealed class ShardMoments(TestPointRange range, RunningMoments points, RunningMoments groups, RunningMoments utility)
{
    private static readonly byte[] s_magic = "DMSM0001"u8.ToArray();

    public TestPointRange Range { get; } = range;

    public RunningMoments Points { get; } = points;

    public RunningMoments Groups { get; } = groups;

    public RunningMoments Utility { get; } = utility;

    public void Write(Stream output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var header = new byte[s_magic.Length + 16];
        s_magic.CopyTo(header, 0);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), Range.First);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(12), Range.Count);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(16), Points.Length);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(20), Groups.Length);
        output.Write(header);
        Span<byte> count = stackalloc byte[8];
        foreach (var moments in new[] { Points, Groups, Utility })
        {
            BinaryPrimitives.WriteInt64LittleEndian(count, moments.Count);
            output.Write(count);
            WriteDoubles(output, moments.Means);
            WriteDoubles(output, moments.SquaredDeviations);
        }
    }

    public static ShardMoments Read(Stream input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var header = new byte[s_magic.Length + 16];
        input.ReadExactly(header);
        if (!header.AsSpan(0, s_magic.Length).SequenceEqual(s_magic))
        {
            throw new InvalidDataException("not a shard-moments file (bad magic)");
        }

        var range = new TestPointRange(BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(8)), BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(12)));
        var points = ReadMoments(input, BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(16)));
        var groups = ReadMoments(input, BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(20)));
        var utility = ReadMoments(input, 1);
        return new ShardMoments(range, points, groups, utility);
    }

    private static RunningMoments ReadMoments(Stream input, int length)
    {
        Span<byte> count = stackalloc byte[8];
        input.ReadExactly(count);
        var mean = ReadDoubles(input, length);
        var m2 = ReadDoubles(input, length);
        return RunningMoments.FromState(BinaryPrimitives.ReadInt64LittleEndian(count), mean, m2);
    }

    private static void WriteDoubles(Stream output, ReadOnlySpan<double> values)
    {
        var buffer = new byte[8 * Math.Min(values.Length, 8192)];
        for (var start = 0; start < values.Length; start += 8192)
        {
            var count = Math.Min(8192, values.Length - start);
            for (var i = 0; i < count; i++)
            {
                BinaryPrimitives.WriteDoubleLittleEndian(buffer.AsSpan(i * 8), values[start + i]);
            }

            output.Write(buffer, 0, count * 8);
        }
    }

    private static double[] ReadDoubles(Stream input, int length)
    {
        var values = new double[length];
        var buffer = new byte[8 * Math.Min(Math.Max(length, 1), 8192)];
        for (var start = 0; start < length; start += 8192)
        {
            var count = Math.Min(8192, length - start);
            input.ReadExactly(buffer, 0, count * 8);
            for (var i = 0; i < count; i++)
            {
                values[start + i] = BinaryPrimitives.ReadDoubleLittleEndian(buffer.AsSpan(i * 8));
            }
        }

        return values;
    }
}

/// <summary>How a valuation's test points are cut into shards: from the job's size and configuration only.</summary>
public static class ShardPlan
{
    /// <summary>About this many (training point, test point) pairs per shard: seconds of work on one core.</summary>
    public const long DefaultPairsPerShard = 20_000_000;

    /// <summary>
    /// Consecutive ranges of about <paramref name="pairsPerShard"/> / trainingPoints test points (at least one), in
    /// order. Never depends on how many workers or cores there are, so neither does the result.
    /// </summary>
    public static IReadOnlyList<TestPointRange> For(int trainingPoints, int testPoints, long pairsPerShard = DefaultPairsPerShard)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(testPoints);
        ArgumentOutOfRangeException.ThrowIfLessThan(pairsPerShard, 1);
        var size = (int)Math.Clamp(pairsPerShard / Math.Max(1, trainingPoints), 1, Math.Max(1, testPoints));
        var ranges = new List<TestPointRange>();
        for (var first = 0; first < testPoints; first += size)
        {
            ranges.Add(new TestPointRange(first, Math.Min(size, testPoints - first)));
        }

        return ranges;
    }

    /// <summary>
    /// Shards for a pairwise reduction (<see cref="KnnShapley.ReducePairwise"/>): each holds <paramref name="block"/> x
    /// 2^j units, the smallest such size of at least <paramref name="pairsPerShard"/> / <paramref name="unitCost"/>
    /// units, so every shard is a node of the same reduction tree and the merged bits do not depend on the size.
    /// </summary>
    public static IReadOnlyList<TestPointRange> ForPairwise(long unitCost, int units, long pairsPerShard, int block)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pairsPerShard, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(block, 1);
        var wanted = Math.Clamp(pairsPerShard / Math.Max(1, unitCost), 1, Math.Max(1, units));
        long size = block;
        while (size < wanted)
        {
            size *= 2;
        }

        return For(1, units, Math.Min(size, int.MaxValue));
    }

    /// <summary>Shard <paramref name="index"/> of a plan whose shards hold <paramref name="size"/> test points each (the last may hold fewer).</summary>
    public static TestPointRange Range(int index, int size, int testPoints)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        var first = checked(index * size);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(first, testPoints, nameof(index));
        return new TestPointRange(first, Math.Min(size, testPoints - first));
    }
}

public static partial class KnnShapley
{
    /// <summary>Plain KNN-Shapley (classification) over one range of test points: the shard's partial moments.</summary>
    public static ShardMoments ClassificationShard(
        TrainingSet train, TestSet test, int k, TestPointRange range, IProgress<int>? progress = null, CancellationToken cancellationToken = default, ValuationDevice? device = null)
    {
        CheckArguments(train, test, k);
        CheckRange(range, test.Count);
        return RunRange(train, test.Features, range, (workspace, j) => ClassificationValues(train.Classes, test.Classes[j], k, workspace), progress, cancellationToken,
            device, new GpuKnnJob(k, Classes: train.Classes, TestClasses: test.Classes));
    }

    /// <summary>Plain KNN-Shapley (regression) over one range of test points.</summary>
    public static ShardMoments RegressionShard(
        RegressionTrainingSet train, RegressionTestSet test, int k, TestPointRange range, IProgress<int>? progress = null, CancellationToken cancellationToken = default, ValuationDevice? device = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        CheckK(k);
        CheckWidths(train.FeatureCount, test.FeatureCount);
        CheckRange(range, test.Count);
        return RunRange(train.Points, test.Features, range, (workspace, j) => RegressionValues(train.Targets, test.Targets[j], k, workspace), progress, cancellationToken,
            device, new GpuKnnJob(k, Targets: train.Targets, TestTargets: test.Targets));
    }

    /// <summary>Asymmetric KNN-Shapley over one range of test points (groups in precedence order, as in <see cref="Asymmetric"/>).</summary>
    public static ShardMoments AsymmetricShard(
        TrainingSet train, TestSet test, int k, TestPointRange range, IProgress<int>? progress = null, CancellationToken cancellationToken = default, ValuationDevice? device = null)
    {
        CheckArguments(train, test, k);
        CheckRange(range, test.Count);
        var groupStart = GroupStarts(train.Groups, train.GroupCount);
        return RunRange(train, test.Features, range, (workspace, j) => AsymmetricValues(train, test.Classes[j], k, groupStart, workspace), progress, cancellationToken,
            device, new GpuKnnJob(k, Classes: train.Classes, TestClasses: test.Classes, PrecedenceGroups: train.Groups, PrecedenceStart: groupStart));
    }

    /// <summary>Tiered KNN-Shapley over one range of test points (tiers of groups as in <see cref="Tiered"/>; moments per group).</summary>
    public static ShardMoments TieredShard(
        TrainingSet train, IReadOnlyList<int> tierOfGroup, TestSet test, int k, TestPointRange range, IProgress<int>? progress = null,
        CancellationToken cancellationToken = default, ValuationDevice? device = null)
    {
        CheckArguments(train, test, k);
        CheckRange(range, test.Count);
        var (tiers, tierStart) = TierPartition(train, tierOfGroup);
        return RunRange(train, test.Features, range, (workspace, j) => AsymmetricValues(tiers, test.Classes[j], k, tierStart, workspace), progress, cancellationToken,
            device, new GpuKnnJob(k, Classes: train.Classes, TestClasses: test.Classes, PrecedenceGroups: tiers.Groups, PrecedenceStart: tierStart));
    }

    /// <summary>Merges shards in the order given (shard order) into the final estimates.</summary>
    public static ShapleyResult MergeShards(IReadOnlyList<ShardMoments> shards)
    {
        ArgumentNullException.ThrowIfNull(shards);
        if (shards.Count == 0)
        {
            throw new ArgumentException("no shards to merge", nameof(shards));
        }

        var points = new RunningMoments(shards[0].Points.Length);
        var groups = new RunningMoments(shards[0].Groups.Length);
        var utility = new RunningMoments(1);
        var testPoints = 0;
        foreach (var shard in shards)
        {
            points.Merge(shard.Points);
            groups.Merge(shard.Groups);
            utility.Merge(shard.Utility);
            testPoints += shard.Range.Count;
        }

        return new ShapleyResult(points.Estimates(), groups.Estimates(), utility.Estimate(0), testPoints);
    }

    /// <summary>
    /// Reduces consecutive moments (fixed blocks of test points, or shards that were each reduced this way from
    /// 2^j blocks) along one fixed pairwise tree (<see cref="PairwiseReduction{T}"/>): the result has the same bits
    /// however the blocks were cut into shards. Consumes <paramref name="parts"/> (their accumulators are merged into).
    /// </summary>
    public static ShardMoments ReducePairwise(IEnumerable<ShardMoments> parts)
    {
        var reduction = new PairwiseReduction<ShardMoments>((left, right) =>
        {
            if (left.Range.First + left.Range.Count != right.Range.First)
            {
                throw new ArgumentException($"moments of test points from {right.Range.First} do not follow those ending at {left.Range.First + left.Range.Count - 1}", nameof(parts));
            }

            left.Points.Merge(right.Points);
            left.Groups.Merge(right.Groups);
            left.Utility.Merge(right.Utility);
            return new ShardMoments(new TestPointRange(left.Range.First, left.Range.Count + right.Range.Count), left.Points, left.Groups, left.Utility);
        });
        foreach (var part in parts)
        {
            reduction.Add(part);
        }

        return reduction.Result() ?? throw new ArgumentException("no moments to reduce", nameof(parts));
    }

    /// <summary>Merges shards (in shard order) along the pairwise tree, leaving them as they were: see <see cref="ReducePairwise"/>.</summary>
    public static ShapleyResult MergeShardsPairwise(IReadOnlyList<ShardMoments> shards)
    {
        ArgumentNullException.ThrowIfNull(shards);
        static RunningMoments Copy(RunningMoments m) => RunningMoments.FromState(m.Count, m.Means.ToArray(), m.SquaredDeviations.ToArray());
        var merged = ReducePairwise(shards.Select(s => new ShardMoments(s.Range, Copy(s.Points), Copy(s.Groups), Copy(s.Utility))));
        return new ShapleyResult(merged.Points.Estimates(), merged.Groups.Estimates(), merged.Utility.Estimate(0), merged.Range.Count);
    }

    private static void CheckRange(TestPointRange range, int testCount)
    {
        ArgumentNullException.ThrowIfNull(range);
        if (range.First < 0 || range.Count < 1 || range.First + range.Count > testCount)
        {
            throw new ArgumentOutOfRangeException(nameof(range), range, $"test points {range.First}..{range.First + range.Count - 1} are not within the {testCount} test points");
        }
    }

    /// <summary>
    /// One shard on one thread, reduced like every valuation in fixed blocks of test points merged in block order: its
    /// bits depend only on the data and the range. Parallelism comes from running shards side by side. On a GPU device
    /// the shard runs there (its blocks start at the range's first test point, as here).
    /// </summary>
    private static ShardMoments RunRange(
        TrainingSet train, float[] testFeatures, TestPointRange range, Func<Workspace, int, double> valueTestPoint, IProgress<int>? progress, CancellationToken cancellationToken,
        ValuationDevice? device, GpuKnnJob gpuJob)
    {
        var moments = Accumulate(train, testFeatures, range.First, range.Count, valueTestPoint, progress, cancellationToken, maxThreads: 1, device, gpuJob);
        return new ShardMoments(range, moments.Points, moments.Groups, moments.Utility);
    }
}
