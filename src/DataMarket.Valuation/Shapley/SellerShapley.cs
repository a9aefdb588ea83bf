using DataMarket.Valuation.Gpu;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Valuation.Shapley;

/// <summary>
/// Shapley values with whole groups (sellers) as the players, for the KNN classification utility, with standard
/// errors over the test points. <see cref="GroupNames"/> is filled in by <see cref="DatasetValuation"/>.
/// <see cref="PermutationsPerTestPoint"/> is 0 for exact values.
/// </summary>
public sealed record GroupShapleyResult(
    ValueEstimate[] Groups,
    ValueEstimate TotalUtility,
    int TestPoints,
    bool Exact,
    int PermutationsPerTestPoint,
    IReadOnlyList<string>? GroupNames = null);

/// <summary>
/// Seller-as-player Shapley values: phi_s = sum over coalitions T without s of |T|! (m - |T| - 1)! / m! *
/// (U(D_T + D_s) - U(D_T)), with U the KNN classification utility of the union of the coalition's points.
/// Only each seller's K nearest points to a test point can be among a coalition's K nearest, so everything below
/// works on those at most m * K candidates.
/// </summary>
public static class SellerShapley
{
    /// <summary>
    /// Largest number of groups <see cref="Exact"/> accepts: its coalition counts are integers below 2^(m-1), exact in
    /// a double up to here.
    /// </summary>
    public const int MaxExactGroups = 50;

    public const int DefaultPermutationsPerTestPoint = 200;

    /// <summary>
    /// Exact values in O(m^3 K^2) per test point after the sort. The utility is a sum over candidate points c of
    /// 1[c matches] / K * [c's seller is in T and fewer than K points of T rank before c], and the Shapley value is
    /// linear, so each matching candidate contributes a small weighted-threshold game: a knapsack count of coalitions
    /// by size and by how many of their points rank before c (capped at K), with one leave-one-out pass per seller.
    /// </summary>
    public static GroupShapleyResult Exact(
        TrainingSet train,
        TestSet test,
        int k,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default,
        int maxThreads = 0,
        ValuationDevice? device = null)
    {
        CheckArguments(train, test, k);
        var valuer = ExactValuer(train, test, k);
        if (device?.Accelerator is not null && train.GroupCount > 0)
        {
            var (groups, utility) = OnDevice(device, train, test, k, 0, test.Count, progress, cancellationToken);
            return new GroupShapleyResult(groups.Estimates(), utility.Estimate(0), test.Count, true, 0);
        }

        return Run(train, test, k, 0, progress, cancellationToken, maxThreads, device, valuer);
    }

    /// <summary>
    /// Permutation-sampling estimate: for each test point, <paramref name="permutationsPerTestPoint"/> random seller
    /// orders, each costing O(m K). Every test point draws its own permutations (seeded from <paramref name="seed"/>
    /// and the test point's index, so results do not depend on threading), which makes the per-test-point estimates
    /// independent samples: their standard error covers both the choice of test points and the sampling noise.
    /// </summary>
    public static GroupShapleyResult Sampled(
        TrainingSet train,
        TestSet test,
        int k,
        int permutationsPerTestPoint = DefaultPermutationsPerTestPoint,
        int seed = 0,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default,
        int maxThreads = 0,
        ValuationDevice? device = null)
    {
        CheckArguments(train, test, k);
        return Run(train, test, k, permutationsPerTestPoint, progress, cancellationToken, maxThreads, device, SampledValuer(train, test, k, permutationsPerTestPoint, seed));
    }

    /// <summary>
    /// One shard of a seller valuation: the group and utility moments over <paramref name="range"/>'s test points, on one
    /// thread in the same fixed blocks, exact when <paramref name="permutationsPerTestPoint"/> is 0 and sampled
    /// otherwise (each test point's permutations are seeded by its index, so a shard draws what a whole run draws).
    /// Merged in shard order with <see cref="KnnShapley.MergeShards"/>; the points' moments are empty.
    /// </summary>
    public static ShardMoments Shard(
        TrainingSet train, TestSet test, int k, TestPointRange range, int permutationsPerTestPoint = 0, int seed = 0,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default, ValuationDevice? device = null)
    {
        CheckArguments(train, test, k);
        ArgumentNullException.ThrowIfNull(range);
        if (range.First < 0 || range.Count < 1 || range.First + range.Count > test.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(range), range, $"test points {range.First}..{range.First + range.Count - 1} are not within the {test.Count} test points");
        }

        var valuer = permutationsPerTestPoint == 0 ? ExactValuer(train, test, k) : SampledValuer(train, test, k, permutationsPerTestPoint, seed);
        var (groups, utility) = permutationsPerTestPoint == 0 && device?.Accelerator is not null && train.GroupCount > 0
            ? OnDevice(device, train, test, k, range.First, range.Count, progress, cancellationToken)
            : Accumulate(train, test, k, range.First, range.Count, progress, cancellationToken, maxThreads: 1, device, valuer);
        return new ShardMoments(range, new RunningMoments(0), groups, utility);
    }

    /// <summary>Exact values with the ranking, the knapsack counts per test point and the seller moments over the fixed blocks on the device.</summary>
    private static (RunningMoments Groups, RunningMoments Utility) OnDevice(
        ValuationDevice device, TrainingSet train, TestSet test, int k, int first, int count, IProgress<int>? progress, CancellationToken cancellationToken)
    {
        var job = new GpuKnnJob(k, Classes: train.Classes, TestClasses: test.Classes, SellerWeights: CoalitionWeights(train.GroupCount));
        var moments = GpuKnnValuation.Accumulate(device, job, train, test.Features, first, count, progress, cancellationToken);
        return (moments.Groups, moments.Utility);
    }

    private static Func<Workspace, int, double> ExactValuer(TrainingSet train, TestSet test, int k)
    {
        if (train.GroupCount > MaxExactGroups)
        {
            throw new ValuationInputException(
                $"exact seller Shapley handles at most {MaxExactGroups} sellers, the data has {train.GroupCount}; use the sampled estimate");
        }

        var weights = CoalitionWeights(train.GroupCount);
        return (workspace, j) => ExactForTestPoint(train, test.Classes[j], k, weights, workspace);
    }

    private static Func<Workspace, int, double> SampledValuer(TrainingSet train, TestSet test, int k, int permutationsPerTestPoint, int seed)
    {
        if (permutationsPerTestPoint < 1)
        {
            throw new ValuationInputException($"permutations per test point must be at least 1, got {permutationsPerTestPoint}");
        }

        return (workspace, j) => SampledForTestPoint(train, test.Classes[j], k, permutationsPerTestPoint, new Random(TestPointSeed(seed, j)), workspace);
    }

    private static void CheckArguments(TrainingSet train, TestSet test, int k)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        KnnShapley.CheckK(k);
        if (train.FeatureCount != test.FeatureCount)
        {
            throw new ArgumentException($"training data has {train.FeatureCount} features, test data {test.FeatureCount}");
        }
    }

    private static GroupShapleyResult Run(
        TrainingSet train,
        TestSet test,
        int k,
        int permutations,
        IProgress<int>? progress,
        CancellationToken cancellationToken,
        int maxThreads,
        ValuationDevice? device,
        Func<Workspace, int, double> valueTestPoint)
    {
        var (groups, utility) = Accumulate(train, test, k, 0, test.Count, progress, cancellationToken, maxThreads, device, valueTestPoint);
        return new GroupShapleyResult(groups.Estimates(), utility.Estimate(0), test.Count, permutations == 0, permutations);
    }

    private static (RunningMoments Groups, RunningMoments Utility) Accumulate(
        TrainingSet train,
        TestSet test,
        int k,
        int first,
        int count,
        IProgress<int>? progress,
        CancellationToken cancellationToken,
        int maxThreads,
        ValuationDevice? device,
        Func<Workspace, int, double> valueTestPoint)
    {
        // Fixed blocks of test points merged in block order: the same inputs and seed give bit-identical results
        // however many threads ran them.
        var m = train.GroupCount;
        var groupMoments = new RunningMoments(m);
        var utilityMoments = new RunningMoments(1);
        var completed = 0;
        using var deviceRanking = device?.CreateRanking(train.Features, train.FeatureCount, maxBlock: 1);
        TestPointBlocks.Run(
            first,
            count,
            maxThreads,
            () => new Workspace(train.Count, m, k, deviceRanking),
            (workspace, blockFirst, blockCount) =>
            {
                workspace.GroupMoments.Clear();
                workspace.UtilityMoments.Clear();
                for (var j = blockFirst; j < blockFirst + blockCount; j++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    workspace.Ranking.Rank(train.Features, train.FeatureCount, test.Row(j));
                    Array.Clear(workspace.Values);
                    var utility = valueTestPoint(workspace, j);
                    workspace.GroupMoments.Add(workspace.Values);
                    workspace.UtilityMoments.Add([utility]);
                    progress?.Report(Interlocked.Increment(ref completed));
                }
            },
            workspace =>
            {
                groupMoments.Merge(workspace.GroupMoments);
                utilityMoments.Merge(workspace.UtilityMoments);
            },
            cancellationToken);

        return (groupMoments, utilityMoments);
    }

    /// <summary>
    /// The seed of one test point's permutations: a fixed mix (SplitMix64's finaliser) of the valuation's seed and the
    /// test point's index, the same in every process. (HashCode.Combine is salted per process, so it is not used.)
    /// </summary>
    internal static int TestPointSeed(int seed, int testPoint)
    {
        var state = ((ulong)(uint)seed << 32) | (uint)testPoint;
        return (int)(Statistics.SplitMix64.Next(ref state) & int.MaxValue);
    }

    /// <summary>weight[t] = t! (m - t - 1)! / m!, the Shapley weight of a coalition of t other players.</summary>
    private static double[] CoalitionWeights(int m)
    {
        var weights = new double[m + 1];
        if (m > 0)
        {
            weights[0] = 1.0 / m;
            for (var t = 1; t < m; t++)
            {
                weights[t] = weights[t - 1] * t / (m - t);
            }
        }

        return weights;
    }

    private static double ExactForTestPoint(TrainingSet train, int testClass, int k, double[] weights, Workspace workspace)
    {
        var m = train.GroupCount;
        var order = workspace.Ranking.Order;
        var seen = workspace.Seen;
        Array.Clear(seen);
        var values = workspace.Values;
        var saturated = 0;
        var topMatches = 0;
        var capacity = k + 1;

        // counts[t * capacity + x]: coalitions of t other sellers with x of their points ranked before the candidate.
        var counts = workspace.Counts;
        var without = workspace.Without;
        for (var r = 0; r < order.Length && saturated < m; r++)
        {
            var point = order[r];
            var owner = train.Groups[point];
            if (seen[owner] >= k)
            {
                continue;
            }

            if (train.Classes[point] == testClass)
            {
                if (r < k)
                {
                    topMatches++;
                }

                var room = k - seen[owner];
                Array.Clear(counts, 0, m * capacity);
                counts[0] = 1;
                var players = 0;
                for (var p = 0; p < m; p++)
                {
                    if (p == owner)
                    {
                        continue;
                    }

                    var weight = Math.Min(seen[p], room);
                    for (var t = players; t >= 0; t--)
                    {
                        for (var x = room - 1 - weight; x >= 0; x--)
                        {
                            counts[((t + 1) * capacity) + x + weight] += counts[(t * capacity) + x];
                        }
                    }

                    players++;
                }

                var ownerGain = 0.0;
                for (var t = 0; t < m; t++)
                {
                    for (var x = 0; x < room; x++)
                    {
                        ownerGain += weights[t] * counts[(t * capacity) + x];
                    }
                }

                values[owner] += ownerGain / k;

                for (var p = 0; p < m; p++)
                {
                    var weight = Math.Min(seen[p], room);
                    if (p == owner || weight == 0)
                    {
                        continue;
                    }

                    // Coalitions without p, undoing p's step of the knapsack; exact because the counts are integers.
                    var loss = 0.0;
                    for (var t = 0; t < m - 1; t++)
                    {
                        var blocked = 0.0;
                        for (var x = 0; x < room; x++)
                        {
                            var count = counts[(t * capacity) + x];
                            if (t > 0 && x >= weight)
                            {
                                count -= without[((t - 1) * capacity) + x - weight];
                            }

                            without[(t * capacity) + x] = count;
                            if (x + weight >= room)
                            {
                                blocked += count;
                            }
                        }

                        loss += weights[t + 1] * blocked;
                    }

                    values[p] -= loss / k;
                }
            }

            if (++seen[owner] == k)
            {
                saturated++;
            }
        }

        return (double)topMatches / k;
    }

    private static double SampledForTestPoint(TrainingSet train, int testClass, int k, int permutations, Random random, Workspace workspace)
    {
        var m = train.GroupCount;
        var order = workspace.Ranking.Order;
        var seen = workspace.Seen;
        Array.Clear(seen);

        // Each seller's K nearest points as rank positions (ascending), stored in seller-sized slots of K.
        var candidates = workspace.Candidates;
        var saturated = 0;
        var topMatches = 0;
        for (var r = 0; r < order.Length && saturated < m; r++)
        {
            var point = order[r];
            var owner = train.Groups[point];
            if (seen[owner] >= k)
            {
                continue;
            }

            if (r < k && train.Classes[point] == testClass)
            {
                topMatches++;
            }

            candidates[(owner * k) + seen[owner]] = r;
            if (++seen[owner] == k)
            {
                saturated++;
            }
        }

        var sellers = workspace.Permutation;
        for (var p = 0; p < m; p++)
        {
            sellers[p] = p;
        }

        var values = workspace.Values;
        var current = workspace.CurrentTop;
        var next = workspace.NextTop;
        for (var s = 0; s < permutations; s++)
        {
            random.Shuffle(sellers);
            var currentCount = 0;
            var before = 0;
            foreach (var seller in sellers)
            {
                int x = 0, y = 0, count = 0, matches = 0;
                var offered = seen[seller];
                while (count < k && (x < currentCount || y < offered))
                {
                    var rank = y >= offered || (x < currentCount && current[x] < candidates[(seller * k) + y])
                        ? current[x++]
                        : candidates[(seller * k) + y++];
                    next[count++] = rank;
                    if (train.Classes[order[rank]] == testClass)
                    {
                        matches++;
                    }
                }

                (current, next) = (next, current);
                currentCount = count;
                values[seller] += (double)(matches - before) / k;
                before = matches;
            }
        }

        for (var p = 0; p < m; p++)
        {
            values[p] /= permutations;
        }

        return (double)topMatches / k;
    }

    private sealed class Workspace(int n, int m, int k, GpuRanking? device)
    {
        public KnnShapley.Ranker Ranking { get; } = new(n, 1, device);

        public double[] Values { get; } = new double[m];

        /// <summary>The current block's moments.</summary>
        public RunningMoments GroupMoments { get; } = new(m);

        public RunningMoments UtilityMoments { get; } = new(1);

        public int[] Seen { get; } = new int[m];

        public double[] Counts { get; } = new double[m * (k + 1)];

        public double[] Without { get; } = new double[m * (k + 1)];

        public int[] Candidates { get; } = new int[m * k];

        public int[] Permutation { get; } = new int[m];

        public int[] CurrentTop { get; } = new int[k];

        public int[] NextTop { get; } = new int[k];
    }
}
