using DataMarket.Valuation.Gpu;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Valuation.Shapley;

/// <summary>
/// Per-point and per-group values with standard errors over the test points.
/// <see cref="TotalUtility"/> is U(all training data) - U(no data), which the point values (and the group values) sum to;
/// for classification U(no data) = 0, so it is the utility of the whole training set.
/// </summary>
public sealed record ShapleyResult(
    ValueEstimate[] Points,
    ValueEstimate[] Groups,
    ValueEstimate TotalUtility,
    int TestPoints);

/// <summary>
/// Exact KNN-Shapley values (Jia et al., PVLDB 2019) and their asymmetric, structure-aware variant
/// (Zheng et al., arXiv 2411.00388). Training points are ranked by squared Euclidean float32 distance to each
/// test point, ties broken by the lower training index. Every method computes one exact value per training point and
/// test point; a point's value is the mean over test points and its standard error the spread of those samples.
/// Work runs in parallel over fixed blocks of test points with O(N) memory per block in flight; blocks merge in block
/// order, so results never depend on the thread or core count.
/// </summary>
public static partial class KnnShapley
{
    // Four test points per pass over the training data already make distances a minor cost next to the sort.
    // (A reduction block of TestPointBlocks.Size is a whole number of these, though results would not depend on it.)
    private const int DistanceBlock = 4;

    /// <summary>
    /// Classification utility U(S) = (1/K) * number of label matches among the min(K, |S|) nearest points of S,
    /// U(empty) = 0. With c_i the match indicator at rank i (1 = nearest):
    /// s_N = c_N * min(K, N) / (N * K) and s_i = s_{i+1} + (c_i - c_{i+1}) / K * min(K, i) / i.
    /// </summary>
    public static ShapleyResult Classification(
        TrainingSet train,
        TestSet test,
        int k,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default,
        int maxThreads = 0,
        ValuationDevice? device = null)
    {
        CheckArguments(train, test, k);
        return Run(
            train,
            test.Features,
            test.Count,
            (workspace, j) => ClassificationValues(train.Classes, test.Classes[j], k, workspace),
            progress,
            cancellationToken,
            maxThreads,
            device,
            new GpuKnnJob(k, Classes: train.Classes, TestClasses: test.Classes));
    }

    /// <summary>
    /// Regression utility U(S) = -((1/K) * sum of the targets of the min(K, |S|) nearest points of S - y_test)^2,
    /// U(empty) = -y_test^2, so values sum to U(all) + y_test^2 per test point. Exact in O(N) per test point after
    /// the sort through prefix and suffix sums (closed form in /work/shared/notes/shapley.md, checked against brute force).
    /// </summary>
    public static ShapleyResult Regression(
        RegressionTrainingSet train,
        RegressionTestSet test,
        int k,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default,
        int maxThreads = 0,
        ValuationDevice? device = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        CheckK(k);
        CheckWidths(train.FeatureCount, test.FeatureCount);
        return Run(
            train.Points,
            test.Features,
            test.Count,
            (workspace, j) => RegressionValues(train.Targets, test.Targets[j], k, workspace),
            progress,
            cancellationToken,
            maxThreads,
            device,
            new GpuKnnJob(k, Targets: train.Targets, TestTargets: test.Targets));
    }

    /// <summary>
    /// Asymmetric KNN-Shapley for the classification utility. Groups are an ordered partition: group index 0 precedes
    /// group 1 precedes group 2 and so on, and only permutations in which every earlier group entirely precedes every
    /// later group count. A point in group a gets its Shapley value in the game v(S) = U(B_a + S) - U(B_a) on the
    /// players of group a, where B_a is the union of all earlier groups; each group's value is therefore
    /// U(B_a + G_a) - U(B_a). Per test point: one sort, then a linear pass per group using prefix sums of the label
    /// matches of the K nearest earlier-group points. No binomial coefficients, so nothing overflows.
    /// </summary>
    public static ShapleyResult Asymmetric(
        TrainingSet train,
        TestSet test,
        int k,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default,
        int maxThreads = 0,
        ValuationDevice? device = null)
    {
        CheckArguments(train, test, k);
        var groupStart = GroupStarts(train.Groups, train.GroupCount);

        return Run(
            train,
            test.Features,
            test.Count,
            (workspace, j) => AsymmetricValues(train, test.Classes[j], k, groupStart, workspace),
            progress,
            cancellationToken,
            maxThreads,
            device,
            new GpuKnnJob(k, Classes: train.Classes, TestClasses: test.Classes, PrecedenceGroups: train.Groups, PrecedenceStart: groupStart));
    }

    /// <summary>
    /// Asymmetric KNN-Shapley over tiers of groups (classification utility): <paramref name="tierOfGroup"/> puts each
    /// group (seller) of <paramref name="train"/> in a tier, tier 0 first. Within a tier the points are the players and
    /// mix freely; a point of tier t is valued in v(S) = U(tiers before t + S) - U(tiers before t). Group values (and
    /// their standard errors) are reported per group, not per tier, so sellers who share a tier keep separate values.
    /// </summary>
    public static ShapleyResult Tiered(
        TrainingSet train,
        IReadOnlyList<int> tierOfGroup,
        TestSet test,
        int k,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default,
        int maxThreads = 0,
        ValuationDevice? device = null)
    {
        CheckArguments(train, test, k);
        var (tiers, tierStart) = TierPartition(train, tierOfGroup);

        return Run(
            train,
            test.Features,
            test.Count,
            (workspace, j) => AsymmetricValues(tiers, test.Classes[j], k, tierStart, workspace),
            progress,
            cancellationToken,
            maxThreads,
            device,
            new GpuKnnJob(k, Classes: train.Classes, TestClasses: test.Classes, PrecedenceGroups: tiers.Groups, PrecedenceStart: tierStart));
    }

    /// <summary>The training points regrouped by tier (the precedence the recursion uses) and where each tier starts.</summary>
    private static (TrainingSet Tiers, int[] TierStart) TierPartition(TrainingSet train, IReadOnlyList<int> tierOfGroup)
    {
        ArgumentNullException.ThrowIfNull(tierOfGroup);
        if (tierOfGroup.Count != train.GroupCount)
        {
            throw new ArgumentException($"one tier per group is needed: {train.GroupCount} groups, {tierOfGroup.Count} tiers given", nameof(tierOfGroup));
        }

        // Tiers index the workspace's per-group buffers, so there can be no more of them than groups.
        foreach (var tier in tierOfGroup)
        {
            if ((uint)tier >= (uint)train.GroupCount)
            {
                throw new ArgumentOutOfRangeException(nameof(tierOfGroup), $"tier {tier} is outside 0..{train.GroupCount - 1}");
            }
        }

        var tierCount = train.GroupCount == 0 ? 1 : tierOfGroup.Max() + 1;
        var tiers = new TrainingSet(train.Features, train.FeatureCount, train.Classes, train.Groups.Select(g => tierOfGroup[g]).ToArray(), tierCount);
        return (tiers, GroupStarts(tiers.Groups, tierCount));
    }

    /// <summary>Where each group's points start when points are bucketed by group: start[g] = points in groups before g.</summary>
    private static int[] GroupStarts(int[] groups, int groupCount)
    {
        var start = new int[groupCount + 1];
        foreach (var group in groups)
        {
            start[group + 1]++;
        }

        for (var g = 0; g < groupCount; g++)
        {
            start[g + 1] += start[g];
        }

        return start;
    }

    internal static void CheckK(int k)
    {
        if (k < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(k), k, $"K (the number of neighbours) must be at least 1, got {k}");
        }
    }

    private static void CheckArguments(TrainingSet train, TestSet test, int k)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        CheckK(k);
        CheckWidths(train.FeatureCount, test.FeatureCount);
    }

    private static void CheckWidths(int trainFeatures, int testFeatures)
    {
        if (trainFeatures != testFeatures)
        {
            throw new ArgumentException($"training data has {trainFeatures} features, test data {testFeatures}");
        }
    }

    /// <summary>
    /// Runs one exact valuation per test point and aggregates the samples over fixed blocks of test points merged in
    /// block order (<see cref="TestPointBlocks"/>), so the result has the same bits however many threads ran it.
    /// <paramref name="valueTestPoint"/> sees the workspace with <c>Order</c> ranked for that test point, fills
    /// <c>Values</c> in training order and returns U(all) - U(empty).
    /// </summary>
    internal static ShapleyResult Run(
        TrainingSet train,
        float[] testFeatures,
        int testCount,
        Func<Workspace, int, double> valueTestPoint,
        IProgress<int>? progress,
        CancellationToken cancellationToken,
        int maxThreads = 0,
        ValuationDevice? device = null,
        GpuKnnJob? gpuJob = null) =>
        Accumulate(train, testFeatures, 0, testCount, valueTestPoint, progress, cancellationToken, maxThreads, device, gpuJob).ToResult(testCount);

    /// <summary>
    /// The moments of the test points [<paramref name="first"/>, first + <paramref name="count"/>), reduced in fixed
    /// blocks merged in block order; progress counts finished test points of the range.
    /// </summary>
    internal static ShapleyMoments Accumulate(
        TrainingSet train,
        float[] testFeatures,
        int first,
        int count,
        Func<Workspace, int, double> valueTestPoint,
        IProgress<int>? progress,
        CancellationToken cancellationToken,
        int maxThreads,
        ValuationDevice? device = null,
        GpuKnnJob? gpuJob = null)
    {
        // Methods whose recursion has a device kernel (classification, regression) run there end to end; the others
        // rank on the device and run their recursions below on the CPU.
        if (gpuJob is not null && device?.Accelerator is not null)
        {
            return GpuKnnValuation.Accumulate(device, gpuJob, train, testFeatures, first, count, progress, cancellationToken);
        }

        var totals = new ShapleyMoments(train.Count, train.GroupCount);
        var completed = 0;

        // On a GPU device the training matrix is uploaded once and a whole block of test points is ranked there per
        // call; the values, the block moments and their merge order stay as on the CPU, and the ordering is the same
        // (one distance definition, (distance, index) keys), so the results are too.
        using var deviceRanking = device?.CreateRanking(train.Features, train.FeatureCount, TestPointBlocks.Size);
        var rankBlock = deviceRanking is null ? DistanceBlock : TestPointBlocks.Size;
        TestPointBlocks.Run(
            first,
            count,
            maxThreads,
            () => new Workspace(train.Count, train.GroupCount, rankBlock, deviceRanking),
            (workspace, blockFirst, blockCount) =>
            {
                workspace.Moments.Clear();
                for (var start = blockFirst; start < blockFirst + blockCount; start += rankBlock)
                {
                    var rows = Math.Min(rankBlock, blockFirst + blockCount - start);
                    workspace.ComputeDistances(train.Features, train.FeatureCount, testFeatures.AsSpan(start * train.FeatureCount, rows * train.FeatureCount));
                    for (var t = 0; t < rows; t++)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        workspace.RankTestPoint(t);
                        var utility = valueTestPoint(workspace, start + t);
                        Array.Clear(workspace.GroupValues);
                        SumByGroup(train.Groups, workspace.Values, workspace.GroupValues);
                        workspace.Moments.Add(workspace.Values, workspace.GroupValues, utility);
                        progress?.Report(Interlocked.Increment(ref completed));
                    }
                }
            },
            workspace => totals.Merge(workspace.Moments),
            cancellationToken);

        return totals;
    }

    /// <summary>
    /// Adds each value to its group's total. Groups usually come in long runs (one listing after another), so a run is
    /// summed in a register: adding into memory element by element would wait on the previous store every time.
    /// </summary>
    private static void SumByGroup(int[] groups, double[] values, double[] totals)
    {
        var i = 0;
        while (i < groups.Length)
        {
            var group = groups[i];
            var sum = 0.0;
            for (; i < groups.Length && groups[i] == group; i++)
            {
                sum += values[i];
            }

            totals[group] += sum;
        }
    }

    /// <summary>Fills <c>workspace.Values</c> with one test point's exact values (training order) and returns U(all).</summary>
    internal static double ClassificationValues(int[] classes, int testClass, int k, Workspace workspace)
    {
        var order = workspace.Order;
        var n = order.Length;
        if (n == 0)
        {
            return 0;
        }

        // Gather, recurse and scatter in separate passes: at a million points the fused loop is about twice as slow,
        // because its random reads and writes no longer overlap.
        var byRank = workspace.ByRank;
        var matches = 0;
        for (var r = 0; r < n; r++)
        {
            var match = classes[order[r]] == testClass ? 1 : 0;
            byRank[r] = match;
            if (r < k)
            {
                matches += match;
            }
        }

        // Ranks are 1-based in the formulas; position r in `byRank` is rank r + 1.
        var matchNext = byRank[n - 1];
        var current = matchNext * Math.Min(k, n) / ((double)n * k);
        byRank[n - 1] = current;
        for (var rank = n - 1; rank >= 1; rank--)
        {
            var match = byRank[rank - 1];
            current += (match - matchNext) / k * Math.Min(k, rank) / rank;
            byRank[rank - 1] = current;
            matchNext = match;
        }

        Scatter(byRank, order, workspace.Values);
        return (double)matches / k;
    }

    private static void Scatter(double[] byRank, int[] order, double[] values)
    {
        for (var r = 0; r < order.Length; r++)
        {
            values[order[r]] = byRank[r];
        }
    }

    private static double TopMatches(int[] classes, int testClass, int k, int[] order)
    {
        var top = Math.Min(k, order.Length);
        var matches = 0;
        for (var r = 0; r < top; r++)
        {
            if (classes[order[r]] == testClass)
            {
                matches++;
            }
        }

        return matches;
    }

    private static double RegressionValues(double[] targets, double testTarget, int k, Workspace workspace)
    {
        var order = workspace.Order;
        var values = workspace.Values;
        var n = order.Length;
        if (n == 0)
        {
            return 0;
        }

        // y[i] with 1-based i as in the notes; prefix[i] = y[1] + ... + y[i].
        var y = workspace.SortedTargets;
        var prefix = workspace.Prefix;
        prefix[0] = 0;
        for (var i = 1; i <= n; i++)
        {
            y[i] = targets[order[i - 1]];
            prefix[i] = prefix[i - 1] + y[i];
        }

        double kd = k;
        double q = Math.Min(k, n);
        var meanOfRest = n > 1 ? prefix[n - 1] / (n - 1) : 0;
        var current = -(y[n] * q / (n * kd)) * ((((q - 1) * meanOfRest) + y[n]) / kd - (2 * testTarget));
        var byRank = workspace.ByRank;
        byRank[n - 1] = current;

        // suffix = sum over j >= i + 2 of y_j * w_j, with w_j = L(L + 1) / (2 (j - 2)(j - 1)) and L = min(K - 1, j - 2).
        var suffix = 0.0;
        for (var i = n - 1; i >= 1; i--)
        {
            double m = Math.Min(k - 1, i - 1);
            var earlier = i > 1 ? prefix[i - 1] * m * (m + 1) / (2.0 * i * (i - 1)) : 0;
            var e = earlier + suffix;
            current += (y[i + 1] - y[i]) / kd * ((((y[i] + y[i + 1]) / kd) - (2 * testTarget)) * Math.Min(k, i) / i + (2 / kd * e));
            byRank[i - 1] = current;
            if (i >= 2)
            {
                double l = Math.Min(k - 1, i - 1);
                suffix += y[i + 1] * l * (l + 1) / (2.0 * (i - 1) * i);
            }
        }

        Scatter(byRank, order, values);
        var prediction = prefix[(int)q] / kd;
        var error = prediction - testTarget;
        return (testTarget * testTarget) - (error * error);
    }

    private static double AsymmetricValues(TrainingSet train, int testClass, int k, int[] groupStart, Workspace workspace)
    {
        var order = workspace.Order;
        var values = workspace.Values;
        var n = order.Length;
        if (n == 0)
        {
            return 0;
        }

        var classes = train.Classes;
        var groups = train.Groups;
        var groupCount = train.GroupCount;

        // Rank positions bucketed by group, each bucket in rank order.
        var byGroup = workspace.ByGroup;
        var cursor = workspace.GroupCursor;
        Array.Copy(groupStart, cursor, groupCount);
        for (var r = 0; r < n; r++)
        {
            byGroup[cursor[groups[order[r]]]++] = r;
        }

        // The K nearest points of all earlier groups (rank positions, ascending) are all a later group needs:
        // beta (earlier points ranked before a point) only matters up to K, and so do the prefix sums.
        var earlier = workspace.EarlierTop(k);
        var merged = workspace.MergedTop(k);
        var earlierCount = 0;
        var prefix = workspace.MatchPrefix(k);
        var beta = workspace.Beta;

        for (var a = 0; a < groupCount; a++)
        {
            var start = groupStart[a];
            var size = groupStart[a + 1] - start;
            if (size == 0)
            {
                continue;
            }

            prefix[0] = 0;
            for (var r = 1; r <= k; r++)
            {
                var match = r <= earlierCount && classes[order[earlier[r - 1]]] == testClass ? 1 : 0;
                prefix[r] = prefix[r - 1] + match;
            }

            var pointer = 0;
            for (var l = 0; l < size; l++)
            {
                var rank = byGroup[start + l];
                while (pointer < earlierCount && earlier[pointer] < rank)
                {
                    pointer++;
                }

                beta[l] = pointer;
            }

            double kd = k;
            var last = size - 1;
            var matchNext = classes[order[byGroup[start + last]]] == testClass ? 1.0 : 0.0;
            var farthestSubsets = Math.Min(last, k - beta[last] - 1);
            var current = farthestSubsets < 0
                ? 0.0
                : (((farthestSubsets + 1) * matchNext) - (prefix[k] - prefix[k - farthestSubsets - 1])) / (size * kd);
            values[order[byGroup[start + last]]] = current;
            for (var l = last - 1; l >= 0; l--)
            {
                var match = classes[order[byGroup[start + l]]] == testClass ? 1.0 : 0.0;
                var room = k - beta[l + 1];
                if (room > 0)
                {
                    current += (match - matchNext) * Math.Min(room, l + 1) / (kd * (l + 1));
                }

                // Subsets in which adding this point instead of the next one displaces an earlier-group point.
                var low = Math.Max(0, room);
                var high = Math.Min(k - beta[l] - 1, l);
                if (high >= low)
                {
                    current += (((high - low + 1) * match) - (prefix[k - low] - prefix[k - high - 1])) / (kd * (l + 1));
                }

                values[order[byGroup[start + l]]] = current;
                matchNext = match;
            }

            // Fold this group's nearest K into the earlier-group list for the groups after it.
            int x = 0, y = 0, count = 0;
            var take = Math.Min(k, size);
            while (count < k && (x < earlierCount || y < take))
            {
                merged[count++] = y >= take || (x < earlierCount && earlier[x] < byGroup[start + y])
                    ? earlier[x++]
                    : byGroup[start + y++];
            }

            (earlier, merged) = (merged, earlier);
            earlierCount = count;
        }

        return TopMatches(classes, testClass, k, order) / k;
    }

    /// <summary>
    /// Per-worker buffers for ranking training points against test points: distances for a block of up to
    /// <paramref name="block"/> test points at once, then one ranking at a time into <see cref="Order"/>.
    /// </summary>
    internal class Ranker(int n, int block = 1, GpuRanking? device = null)
    {
        // With a device the keys and the sort live there and only the block's orders come back.
        private readonly ulong[][] _keys = Enumerable.Range(0, device is null ? block : 0).Select(_ => new ulong[n]).ToArray();
        private readonly int[][] _deviceOrders = Enumerable.Range(0, device is null ? 0 : block).Select(_ => new int[n]).ToArray();
        private readonly ulong[] _scratch = new ulong[device is null ? n : 0];
        private readonly int[] _histogram = new int[device is null ? DistanceRanking.HistogramLength : 0];

        public int[] Order { get; } = new int[n];

        protected int PointCount => Order.Length;

        public void Rank(float[] features, int featureCount, ReadOnlySpan<float> testRow)
        {
            ComputeDistances(features, featureCount, testRow);
            RankTestPoint(0);
        }

        /// <summary>Distances from every training point to each of the (at most block) rows in <paramref name="testRows"/>.</summary>
        public void ComputeDistances(float[] features, int featureCount, ReadOnlySpan<float> testRows)
        {
            if (device is null)
            {
                DistanceRanking.ComputeKeys(features, featureCount, testRows, _keys);
            }
            else
            {
                device.RankBlock(testRows, _deviceOrders);
            }
        }

        /// <summary>Ranks the training points for the block's test point <paramref name="indexInBlock"/>.</summary>
        public void RankTestPoint(int indexInBlock)
        {
            if (device is null)
            {
                DistanceRanking.SortIntoOrder(_keys[indexInBlock], _scratch, _histogram, Order);
            }
            else
            {
                _deviceOrders[indexInBlock].CopyTo(Order, 0);
            }
        }
    }

    /// <summary>Per-worker buffers for one valuation run: all O(N), allocated once per worker, reused per test point.</summary>
    internal sealed class Workspace(int n, int groupCount, int block, GpuRanking? device = null) : Ranker(n, block, device)
    {
        private double[]? _byRank;
        private double[]? _sortedTargets;
        private double[]? _prefix;
        private int[]? _byGroup;
        private int[]? _groupCursor;
        private int[]? _beta;
        private int[]? _earlierTop;
        private int[]? _mergedTop;
        private int[]? _matchPrefix;

        public double[] Values { get; } = new double[n];

        public double[] GroupValues { get; } = new double[groupCount];

        /// <summary>The current block's moments.</summary>
        public ShapleyMoments Moments { get; } = new(n, groupCount);

        public double[] ByRank => _byRank ??= new double[PointCount];

        public double[] SortedTargets => _sortedTargets ??= new double[PointCount + 1];

        public double[] Prefix => _prefix ??= new double[PointCount + 1];

        public int[] ByGroup => _byGroup ??= new int[PointCount];

        public int[] GroupCursor => _groupCursor ??= new int[GroupValues.Length];

        public int[] Beta => _beta ??= new int[PointCount];

        public int[] EarlierTop(int k) => _earlierTop ??= new int[k];

        public int[] MergedTop(int k) => _mergedTop ??= new int[k];

        public int[] MatchPrefix(int k) => _matchPrefix ??= new int[k + 1];
    }
}

/// <summary>
/// Running means and spreads of per-test-point samples: one per training point, one per group and the total utility.
/// Partial moments of consecutive test-point ranges merge exactly (Chan et al.); merged in range order they give the
/// same bits as one pass.
/// </summary>
public sealed class ShapleyMoments(int points, int groups)
{
    public RunningMoments Points { get; } = new(points);

    public RunningMoments Groups { get; } = new(groups);

    public RunningMoments Utility { get; } = new(1);

    public void Add(ReadOnlySpan<double> pointValues, ReadOnlySpan<double> groupValues, double utility)
    {
        Points.Add(pointValues);
        Groups.Add(groupValues);
        Utility.Add([utility]);
    }

    public void Merge(ShapleyMoments other)
    {
        ArgumentNullException.ThrowIfNull(other);
        Points.Merge(other.Points);
        Groups.Merge(other.Groups);
        Utility.Merge(other.Utility);
    }

    public void Clear()
    {
        Points.Clear();
        Groups.Clear();
        Utility.Clear();
    }

    public ShapleyResult ToResult(int testPoints) =>
        new(Points.Estimates(), Groups.Estimates(), Utility.Estimate(0), testPoints);
}
