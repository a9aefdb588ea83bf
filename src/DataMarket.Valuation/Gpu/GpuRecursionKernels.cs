using ILGPU;
using ILGPU.Runtime;

namespace DataMarket.Valuation.Gpu;

/// <summary>
/// The kernels that turn sorted (distance, index) keys into exact KNN-Shapley values and their moments on the device.
/// Layout: a launch holds W test points; every per-test-point array is W x N, test-major, indexed w * N + r where r is
/// a rank (for keys and the scans) or a training index (for values). The recursions of
/// <see cref="Shapley.KnnShapley"/> are sums over ranks from the far end, so each becomes per-rank terms written in
/// reversed rank order, one inclusive scan, and a scatter back to training order; the arithmetic of each term is the
/// CPU path's, written in the same order. Compiled once per device, on first use.
/// </summary>
internal sealed class GpuRecursionKernels
{
    public GpuRecursionKernels(Accelerator accelerator)
    {
        Accelerator = accelerator;
        ClassificationTerms = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<ulong>, ArrayView<int>, ArrayView<int>, int, int, ArrayView<double>>(ClassificationTermsKernel);
        ClassificationUtility = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<ulong>, ArrayView<int>, ArrayView<int>, int, int, ArrayView<double>>(ClassificationUtilityKernel);
        TargetsByRank = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<ulong>, ArrayView<double>, ArrayView<double>>(TargetsByRankKernel);
        RegressionSuffixTerms = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<ulong>, ArrayView<double>, int, int, ArrayView<double>>(RegressionSuffixTermsKernel);
        RegressionTerms = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<ulong>, ArrayView<double>, ArrayView<double>, ArrayView<double>, ArrayView<double>, int, int, ArrayView<double>, ArrayView<double>>(RegressionTermsKernel);
        ScatterReversed = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<ulong>, ArrayView<double>, int, ArrayView<double>>(ScatterReversedKernel);
        GroupSums = accelerator.LoadAutoGroupedKernel<Index2D, ArrayView<double>, ArrayView<int>, ArrayView<int>, int, ArrayView<double>>(GroupSumsKernel);
        BlockMoments = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<double>, int, int, long, ArrayView<double>, ArrayView<double>>(BlockMomentsKernel);
        Asymmetric = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<ulong>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int, int, ArrayView<double>, ArrayView<double>>(AsymmetricKernel);
        SellerExact = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<ulong>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<double>, ArrayView<int>, ArrayView<double>, int, int, ArrayView<double>, ArrayView<double>>(SellerExactKernel);
        TileSums = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<double>, int, int, ArrayView<double>>(TileSumsKernel);
        TileOffsets = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<double>, int>(TileOffsetsKernel);
        TileScan = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<double>, ArrayView<double>, int, int, ArrayView<double>>(TileScanKernel);
    }

    /// <summary>Ranks one thread of the scan adds in sequence; fixed, so the scan's association never depends on the device.</summary>
    private const int ScanTile = 256;

    public Accelerator Accelerator { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<ulong>, ArrayView<int>, ArrayView<int>, int, int, ArrayView<double>> ClassificationTerms { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<ulong>, ArrayView<int>, ArrayView<int>, int, int, ArrayView<double>> ClassificationUtility { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<ulong>, ArrayView<double>, ArrayView<double>> TargetsByRank { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<ulong>, ArrayView<double>, int, int, ArrayView<double>> RegressionSuffixTerms { get; }

    /// <summary>
    /// (keys, targets, test targets, prefix, suffix, N, K, reversed terms out, utility out), with prefix[w * N + j] =
    /// y_1 + ... + y_(j+1) (targets in rank order) and suffix[w * N + N - 1 - j] = the suffix terms of ranks j and beyond.
    /// </summary>
    public Action<AcceleratorStream, Index1D, ArrayView<ulong>, ArrayView<double>, ArrayView<double>, ArrayView<double>, ArrayView<double>, int, int, ArrayView<double>, ArrayView<double>> RegressionTerms { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<ulong>, ArrayView<double>, int, ArrayView<double>> ScatterReversed { get; }

    public Action<AcceleratorStream, Index2D, ArrayView<double>, ArrayView<int>, ArrayView<int>, int, ArrayView<double>> GroupSums { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<double>, int, int, long, ArrayView<double>, ArrayView<double>> BlockMoments { get; }

    /// <summary>
    /// (keys, classes, recursion groups, their starts, test classes, int scratch, scratch stride, N, K, values out,
    /// utility out): one thread per test point; scratch per test point: <see cref="AsymmetricScratch"/> ints.
    /// </summary>
    public Action<AcceleratorStream, Index1D, ArrayView<ulong>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int, int, ArrayView<double>, ArrayView<double>> Asymmetric { get; }

    /// <summary>
    /// (keys, classes, owners, test classes, coalition weights, int scratch (G per test point), double scratch
    /// (2 G (K + 1) per test point), N, K, seller values out (G per test point), utility out): one thread per test point.
    /// </summary>
    public Action<AcceleratorStream, Index1D, ArrayView<ulong>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<double>, ArrayView<int>, ArrayView<double>, int, int, ArrayView<double>, ArrayView<double>> SellerExact { get; }

    private Action<AcceleratorStream, Index1D, ArrayView<double>, int, int, ArrayView<double>> TileSums { get; }

    private Action<AcceleratorStream, Index1D, ArrayView<double>, int> TileOffsets { get; }

    private Action<AcceleratorStream, Index1D, ArrayView<double>, ArrayView<double>, int, int, ArrayView<double>> TileScan { get; }

    /// <summary>Ints of scratch one test point of <see cref="Asymmetric"/> needs: by-group ranks and beta (N each), cursors (G), two top-K lists and K + 1 prefix counts.</summary>
    public static long AsymmetricScratch(int n, int groupCount, int k) => (2L * n) + groupCount + (3L * k) + 1;

    /// <summary>Doubles of scratch <see cref="InclusiveSums"/> needs for <paramref name="tests"/> segments of <paramref name="n"/>.</summary>
    public static long ScanTempLength(int tests, int n) => (long)tests * Tiles(n);

    private static int Tiles(int n) => Math.Max(1, (n + ScanTile - 1) / ScanTile);

    /// <summary>
    /// output[w * N + r] = input[w * N] + ... + input[w * N + r] for each of <paramref name="tests"/> segments of N.
    /// Every sum has one fixed association: each tile of <see cref="ScanTile"/> ranks is added left to right onto the
    /// sum of the tiles before it, which is itself added tile by tile. A library scan (ILGPU's single-pass scan) splits
    /// the work by the grid it launches, so its last bits could change with the device, the launch or the run; the
    /// GPU check caught streamed and resident runs differing in the last bits on an H200.
    /// </summary>
    public void InclusiveSums(AcceleratorStream stream, ArrayView<double> input, ArrayView<double> output, int tests, int n, ArrayView<double> temp)
    {
        var tiles = Tiles(n);
        TileSums(stream, tests * tiles, input, n, tiles, temp);
        TileOffsets(stream, tests, temp, tiles);
        TileScan(stream, tests * tiles, input, temp, n, tiles, output);
    }

    private static int Index(ulong key) => (int)(uint)key;

    /// <summary>
    /// reversed[w * N + N - 1 - r] = the classification recursion's step at rank r + 1: s_N's closed form at the
    /// farthest rank, (c_r - c_(r+1)) / K * min(K, r + 1) / (r + 1) elsewhere; the scan of them is s by rank.
    /// </summary>
    private static void ClassificationTermsKernel(Index1D index, ArrayView<ulong> keys, ArrayView<int> classes, ArrayView<int> testClasses, int n, int k, ArrayView<double> reversed)
    {
        var w = index.X / n;
        var r = index.X - (w * n);
        var testClass = testClasses[w];
        var match = classes[Index(keys[index])] == testClass ? 1.0 : 0.0;
        double term;
        if (r == n - 1)
        {
            term = match * Math.Min(k, n) / ((double)n * k);
        }
        else
        {
            var matchNext = classes[Index(keys[index + 1])] == testClass ? 1.0 : 0.0;
            var rank = r + 1;
            term = (match - matchNext) / k * Math.Min(k, rank) / rank;
        }

        reversed[((long)w * n) + n - 1 - r] = term;
    }

    /// <summary>utility[w] = label matches among the K nearest / K.</summary>
    private static void ClassificationUtilityKernel(Index1D w, ArrayView<ulong> keys, ArrayView<int> classes, ArrayView<int> testClasses, int n, int k, ArrayView<double> utility)
    {
        var matches = 0;
        var top = Math.Min(k, n);
        for (var r = 0; r < top; r++)
        {
            if (classes[Index(keys[((long)w.X * n) + r])] == testClasses[w])
            {
                matches++;
            }
        }

        utility[w] = (double)matches / k;
    }

    /// <summary>byRank[w * N + r] = the target of the training point at rank r + 1 (y_(r+1) in the notes).</summary>
    private static void TargetsByRankKernel(Index1D index, ArrayView<ulong> keys, ArrayView<double> targets, ArrayView<double> byRank) =>
        byRank[index] = targets[Index(keys[index])];

    /// <summary>
    /// reversed[w * N + N - 1 - i] = y_(i+1) * L (L + 1) / (2 (i - 1) i), L = min(K - 1, i - 1), for 2 &lt;= i &lt;= N - 1
    /// (0 elsewhere): the terms the CPU adds to its running suffix after step i.
    /// </summary>
    private static void RegressionSuffixTermsKernel(Index1D index, ArrayView<ulong> keys, ArrayView<double> targets, int n, int k, ArrayView<double> reversed)
    {
        var w = index.X / n;
        var i = index.X - (w * n);
        var term = 0.0;
        if (i >= 2 && i <= n - 1)
        {
            double l = Math.Min(k - 1, i - 1);
            term = targets[Index(keys[index])] * l * (l + 1) / (2.0 * (i - 1) * i);
        }

        reversed[((long)w * n) + n - 1 - i] = term;
    }

    /// <summary>
    /// reversed[w * N + N - 1 - r] = the regression recursion's step at rank r + 1 (its closed form at the farthest
    /// rank), with the CPU path's expressions; the test point's utility U(all) - U(empty) from the thread of rank 0.
    /// </summary>
    private static void RegressionTermsKernel(
        Index1D index,
        ArrayView<ulong> keys,
        ArrayView<double> targets,
        ArrayView<double> testTargets,
        ArrayView<double> prefix,
        ArrayView<double> suffixSums,
        int n,
        int k,
        ArrayView<double> reversed,
        ArrayView<double> utility)
    {
        var w = index.X / n;
        var r = index.X - (w * n);
        var row = (long)w * n;
        var testTarget = testTargets[w];
        double kd = k;
        double term;
        if (r == n - 1)
        {
            double q = Math.Min(k, n);
            var yn = targets[Index(keys[index])];
            var meanOfRest = n > 1 ? prefix[row + n - 2] / (n - 1) : 0;
            term = -(yn * q / (n * kd)) * ((((q - 1) * meanOfRest) + yn) / kd - (2 * testTarget));
        }
        else
        {
            // Step i = r + 1 (1-based) of the CPU loop, which runs i = N - 1 down to 1.
            var i = r + 1;
            var yi = targets[Index(keys[index])];
            var yNext = targets[Index(keys[index + 1])];
            double m = Math.Min(k - 1, i - 1);
            var earlier = i > 1 ? prefix[row + i - 2] * m * (m + 1) / (2.0 * i * (i - 1)) : 0;
            var suffix = i <= n - 2 ? suffixSums[row + n - 2 - i] : 0;
            var e = earlier + suffix;
            term = (yNext - yi) / kd * ((((yi + yNext) / kd) - (2 * testTarget)) * Math.Min(k, i) / i + (2 / kd * e));
        }

        reversed[row + n - 1 - r] = term;
        if (r == 0)
        {
            var prediction = prefix[row + Math.Min(k, n) - 1] / kd;
            var error = prediction - testTarget;
            utility[w] = (testTarget * testTarget) - (error * error);
        }
    }

    /// <summary>values[w * N + order[r]] = scanned[w * N + N - 1 - r]: values by rank back in training order.</summary>
    private static void ScatterReversedKernel(Index1D index, ArrayView<ulong> keys, ArrayView<double> scanned, int n, ArrayView<double> values)
    {
        var w = index.X / n;
        var r = index.X - (w * n);
        var row = (long)w * n;
        values[row + Index(keys[index])] = scanned[row + n - 1 - r];
    }

    /// <summary>
    /// groupValues[w * G + g] = the sum of test point w's values over group g's members (training order), summed as
    /// the CPU path's SumByGroup does: each run of consecutive training indices in a register, runs added in order.
    /// </summary>
    private static void GroupSumsKernel(Index2D index, ArrayView<double> values, ArrayView<int> members, ArrayView<int> groupStart, int n, ArrayView<double> groupValues)
    {
        var g = index.X;
        var w = index.Y;
        var groupCount = (int)(groupStart.Length - 1);
        var row = (long)w * n;
        var total = 0.0;
        var run = 0.0;
        var previous = -2;
        for (var j = groupStart[g]; j < groupStart[g + 1]; j++)
        {
            var member = members[j];
            if (member != previous + 1 && previous >= 0)
            {
                total += run;
                run = 0.0;
            }

            run += values[row + member];
            previous = member;
        }

        groupValues[((long)w * groupCount) + g] = total + run;
    }

    /// <summary>
    /// Asymmetric KNN-Shapley of one test point per thread: <see cref="Shapley.KnnShapley"/>'s AsymmetricValues line by
    /// line (groups in precedence order, each group's recursion over its points in rank order with the K nearest
    /// earlier-group points), on the device's sorted keys. A group's pass depends on the groups before it, so the
    /// parallelism is across the launch's test points.
    /// </summary>
    private static void AsymmetricKernel(
        Index1D w,
        ArrayView<ulong> keys,
        ArrayView<int> classes,
        ArrayView<int> groups,
        ArrayView<int> groupStart,
        ArrayView<int> testClasses,
        ArrayView<int> scratch,
        int stride,
        int n,
        int k,
        ArrayView<double> values,
        ArrayView<double> utility)
    {
        var groupCount = (int)(groupStart.Length - 1);
        var testClass = testClasses[w];
        var row = (long)w.X * n;
        var s0 = (long)w.X * stride;
        var byGroup = scratch.SubView(s0, n);
        var beta = scratch.SubView(s0 + n, n);
        var cursor = scratch.SubView(s0 + (2L * n), Math.Max(1, groupCount));
        var earlier = scratch.SubView(s0 + (2L * n) + groupCount, k);
        var merged = scratch.SubView(s0 + (2L * n) + groupCount + k, k);
        var prefix = scratch.SubView(s0 + (2L * n) + groupCount + (2L * k), k + 1);
        for (var g = 0; g < groupCount; g++)
        {
            cursor[g] = groupStart[g];
        }

        for (var r = 0; r < n; r++)
        {
            var group = groups[Index(keys[row + r])];
            byGroup[cursor[group]] = r;
            cursor[group] += 1;
        }

        var earlierCount = 0;
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
                var match = r <= earlierCount && classes[Index(keys[row + earlier[r - 1]])] == testClass ? 1 : 0;
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
            var matchNext = classes[Index(keys[row + byGroup[start + last]])] == testClass ? 1.0 : 0.0;
            var farthestSubsets = Math.Min(last, k - beta[last] - 1);
            var current = farthestSubsets < 0
                ? 0.0
                : (((farthestSubsets + 1) * matchNext) - (prefix[k] - prefix[k - farthestSubsets - 1])) / (size * kd);
            values[row + Index(keys[row + byGroup[start + last]])] = current;
            for (var l = last - 1; l >= 0; l--)
            {
                var match = classes[Index(keys[row + byGroup[start + l]])] == testClass ? 1.0 : 0.0;
                var room = k - beta[l + 1];
                if (room > 0)
                {
                    current += (match - matchNext) * Math.Min(room, l + 1) / (kd * (l + 1));
                }

                var low = Math.Max(0, room);
                var high = Math.Min(k - beta[l] - 1, l);
                if (high >= low)
                {
                    current += (((high - low + 1) * match) - (prefix[k - low] - prefix[k - high - 1])) / (kd * (l + 1));
                }

                values[row + Index(keys[row + byGroup[start + l]])] = current;
                matchNext = match;
            }

            // Fold this group's nearest K into the earlier-group list for the groups after it.
            int x = 0, y = 0, count = 0;
            var take = Math.Min(k, size);
            while (count < k && (x < earlierCount || y < take))
            {
                if (y >= take || (x < earlierCount && earlier[x] < byGroup[start + y]))
                {
                    merged[count] = earlier[x];
                    x++;
                }
                else
                {
                    merged[count] = byGroup[start + y];
                    y++;
                }

                count++;
            }

            var swap = earlier;
            earlier = merged;
            merged = swap;
            earlierCount = count;
        }

        var matches = 0;
        var top = Math.Min(k, n);
        for (var r = 0; r < top; r++)
        {
            if (classes[Index(keys[row + r])] == testClass)
            {
                matches++;
            }
        }

        utility[w] = (double)matches / k;
    }

    /// <summary>
    /// Exact seller-level Shapley values of one test point per thread: <see cref="Shapley.SellerShapley"/>'s
    /// ExactForTestPoint line by line (each matching candidate among every seller's K nearest adds a
    /// weighted-threshold game counted by a knapsack over coalition sizes, with one leave-one-out pass per seller).
    /// </summary>
    private static void SellerExactKernel(
        Index1D w,
        ArrayView<ulong> keys,
        ArrayView<int> classes,
        ArrayView<int> owners,
        ArrayView<int> testClasses,
        ArrayView<double> weights,
        ArrayView<int> intScratch,
        ArrayView<double> doubleScratch,
        int n,
        int k,
        ArrayView<double> sellerValues,
        ArrayView<double> utility)
    {
        var m = (int)(weights.Length - 1);
        var capacity = k + 1;
        var testClass = testClasses[w];
        var row = (long)w.X * n;
        var seen = intScratch.SubView((long)w.X * m, m);
        var values = sellerValues.SubView((long)w.X * m, m);
        var counts = doubleScratch.SubView(2L * w.X * m * capacity, (long)m * capacity);
        var without = doubleScratch.SubView((2L * w.X * m * capacity) + ((long)m * capacity), (long)m * capacity);
        for (var p = 0; p < m; p++)
        {
            seen[p] = 0;
            values[p] = 0;
        }

        var saturated = 0;
        var topMatches = 0;
        for (var r = 0; r < n && saturated < m; r++)
        {
            var point = Index(keys[row + r]);
            var owner = owners[point];
            if (seen[owner] >= k)
            {
                continue;
            }

            if (classes[point] == testClass)
            {
                if (r < k)
                {
                    topMatches++;
                }

                var room = k - seen[owner];
                for (var c = 0; c < m * capacity; c++)
                {
                    counts[c] = 0;
                }

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

            seen[owner] += 1;
            if (seen[owner] == k)
            {
                saturated++;
            }
        }

        utility[w] = (double)topMatches / k;
    }

    /// <summary>
    /// For quantity i (a training point or a group) over the launch's <paramref name="tests"/> samples
    /// (values[t * length + i]): Welford moments of each fixed block of <see cref="Statistics.TestPointBlocks.Size"/>
    /// test points in test-point order, each merged into the running totals in block order with the update of
    /// <see cref="Statistics.RunningMoments.Merge"/>. <paramref name="totalCount"/> is the totals' count before the launch.
    /// </summary>
    private static void BlockMomentsKernel(Index1D i, ArrayView<double> values, int length, int tests, long totalCount, ArrayView<double> mean, ArrayView<double> m2)
    {
        var totalMean = mean[i];
        var totalM2 = m2[i];
        var count = totalCount;
        for (var first = 0; first < tests; first += Statistics.TestPointBlocks.Size)
        {
            var blockMean = 0.0;
            var blockM2 = 0.0;
            var blockCount = 0;
            var end = Math.Min(tests, first + Statistics.TestPointBlocks.Size);
            for (var t = first; t < end; t++)
            {
                var sample = values[((long)t * length) + i.X];
                blockCount++;
                var reciprocal = 1.0 / blockCount;
                var delta = sample - blockMean;
                blockMean += delta * reciprocal;
                blockM2 += delta * (sample - blockMean);
            }

            if (count == 0)
            {
                totalMean = blockMean;
                totalM2 = blockM2;
            }
            else
            {
                double na = count, nb = blockCount, total = na + nb;
                var delta = blockMean - totalMean;
                totalMean += delta * nb / total;
                totalM2 += blockM2 + delta * delta * na * nb / total;
            }

            count += blockCount;
        }

        mean[i] = totalMean;
        m2[i] = totalM2;
    }

    /// <summary>sums[w * tiles + j] = the ranks of tile j of segment w added left to right.</summary>
    private static void TileSumsKernel(Index1D index, ArrayView<double> input, int n, int tiles, ArrayView<double> sums)
    {
        var w = index.X / tiles;
        var j = index.X - (w * tiles);
        var row = (long)w * n;
        var end = row + Math.Min(n, (j + 1) * ScanTile);
        var sum = 0.0;
        for (var p = row + ((long)j * ScanTile); p < end; p++)
        {
            sum += input[p];
        }

        sums[index] = sum;
    }

    /// <summary>Turns segment w's tile sums, in place, into the sum of the tiles before each (tile 0 starts at 0).</summary>
    private static void TileOffsetsKernel(Index1D w, ArrayView<double> sums, int tiles)
    {
        var row = (long)w.X * tiles;
        var before = 0.0;
        for (var j = 0; j < tiles; j++)
        {
            var sum = sums[row + j];
            sums[row + j] = before;
            before += sum;
        }
    }

    /// <summary>The inclusive sums of tile j of segment w, starting from the sum of the tiles before it.</summary>
    private static void TileScanKernel(Index1D index, ArrayView<double> input, ArrayView<double> offsets, int n, int tiles, ArrayView<double> output)
    {
        var w = index.X / tiles;
        var j = index.X - (w * tiles);
        var row = (long)w * n;
        var end = row + Math.Min(n, (j + 1) * ScanTile);
        var running = offsets[index];
        for (var p = row + ((long)j * ScanTile); p < end; p++)
        {
            running += input[p];
            output[p] = running;
        }
    }
}
