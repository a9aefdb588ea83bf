using DataMarket.Valuation.Gpu;
using DataMarket.Valuation.Shapley;
using DataMarket.Valuation.Statistics;
using DataMarket.Valuation.Tests.References;
using DataMarket.Valuation.Tests.Shapley;

namespace DataMarket.Valuation.Tests.Gpu;

/// <summary>One emulated device for the class: each kernel compiles once (about a quarter of a second) on ILGPU's CPU accelerator.</summary>
public sealed class EmulatedDevice : IDisposable
{
    public ValuationDevice Device { get; } = ValuationDevice.Select(DeviceKind.GpuEmulated);

    public void Dispose() => Device.Dispose();
}

/// <summary>
/// The GPU path's kernels run on ILGPU's CPU accelerator (the same C# that becomes PTX on an NVIDIA GPU) and must give
/// the CPU path's values. On a real GPU the same checks run through tests/DataMarket.Gpu.Check.
/// </summary>
public class gpu_kernels_on_the_cpu_accelerator(EmulatedDevice emulated) : IClassFixture<EmulatedDevice>
{
    private const double Tolerance = 1e-9;

    private ValuationDevice Device => emulated.Device;

    [Fact]
    public void the_emulated_device_is_what_was_asked_for()
    {
        Assert.Equal(DeviceKind.GpuEmulated, Device.Kind);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 3)]
    [InlineData(8, 6)]
    public void classification_matches_brute_force_and_the_cpu_path(int n, int k)
    {
        var random = new Random((100 * n) + k);

        // Small integer features: many exact distance ties, decided by the training index on both paths.
        var (train, classes, test, testClasses) = knn_shapley_classification.RandomProblem(random, n, testPoints: 5, features: 2, classCount: 3, span: 3);
        var trainingSet = new TrainingSet(knn_shapley_classification.Flatten(train), 2, classes);
        var testSet = new TestSet(knn_shapley_classification.Flatten(test), 2, testClasses);

        var cpu = KnnShapley.Classification(trainingSet, testSet, k);
        var gpu = KnnShapley.Classification(trainingSet, testSet, k, device: Device);

        AssertSame(cpu, gpu);
        AssertBruteForce(gpu, n, test.Length, (j, s) => BruteForceShapley.KnnUtility(s, train, classes, test[j], testClasses[j], k), digits: 12);
    }

    [Fact]
    public void regression_matches_brute_force_and_the_cpu_path()
    {
        var random = new Random(3);
        const int n = 7, k = 3;
        var (train, _, test, _) = knn_shapley_classification.RandomProblem(random, n, testPoints: 4, features: 3, classCount: 2, span: 3);
        var targets = Enumerable.Range(0, n).Select(_ => random.NextDouble() * 4 - 2).ToArray();
        var testTargets = Enumerable.Range(0, test.Length).Select(_ => random.NextDouble() * 4 - 2).ToArray();
        var trainingSet = new RegressionTrainingSet(knn_shapley_classification.Flatten(train), 3, targets);
        var testSet = new RegressionTestSet(knn_shapley_classification.Flatten(test), 3, testTargets);

        var cpu = KnnShapley.Regression(trainingSet, testSet, k);
        var gpu = KnnShapley.Regression(trainingSet, testSet, k, device: Device);

        AssertSame(cpu, gpu);
        AssertBruteForce(gpu, n, test.Length, (j, s) => BruteForceShapley.KnnRegressionUtility(s, train, targets, test[j], testTargets[j], k), digits: 10);
    }

    [Fact]
    public void asymmetric_values_match_the_cpu_path_on_tied_data()
    {
        var random = new Random(11);
        const int n = 300;
        var (train, classes, test, testClasses) = knn_shapley_classification.RandomProblem(random, n, testPoints: 9, features: 3, classCount: 3, span: 4);
        var groups = Enumerable.Range(0, n).Select(_ => random.Next(4)).ToArray();
        var trainingSet = new TrainingSet(knn_shapley_classification.Flatten(train), 3, classes, groups, 4);
        var testSet = new TestSet(knn_shapley_classification.Flatten(test), 3, testClasses);

        AssertSame(KnnShapley.Asymmetric(trainingSet, testSet, 4), KnnShapley.Asymmetric(trainingSet, testSet, 4, device: Device));
    }

    [Fact]
    public void seller_values_match_the_cpu_path_exact_and_sampled()
    {
        var random = new Random(5);
        const int n = 200, sellers = 6;
        var (train, classes, test, testClasses) = knn_shapley_classification.RandomProblem(random, n, testPoints: 7, features: 2, classCount: 2, span: 5);
        var groups = Enumerable.Range(0, n).Select(_ => random.Next(sellers)).ToArray();
        var trainingSet = new TrainingSet(knn_shapley_classification.Flatten(train), 2, classes, groups, sellers);
        var testSet = new TestSet(knn_shapley_classification.Flatten(test), 2, testClasses);

        AssertSame(SellerShapley.Exact(trainingSet, testSet, 3), SellerShapley.Exact(trainingSet, testSet, 3, device: Device));
        AssertSame(
            SellerShapley.Sampled(trainingSet, testSet, 3, permutationsPerTestPoint: 20, seed: 4),
            SellerShapley.Sampled(trainingSet, testSet, 3, permutationsPerTestPoint: 20, seed: 4, device: Device));
    }

    [Fact]
    public void classification_with_groups_over_several_launches_and_streamed_training_blocks_matches_the_cpu_path()
    {
        // 21 test points: two full launches of 8 and a partial one, so blocks merge across launches; 37-row training
        // blocks cut the 300 rows unevenly. Groups interleave, so group sums add several runs per group.
        var random = new Random(21);
        const int n = 300, k = 4;
        var (train, classes, test, testClasses) = knn_shapley_classification.RandomProblem(random, n, testPoints: 21, features: 3, classCount: 3, span: 4);
        var groups = Enumerable.Range(0, n).Select(i => (i / 7) % 5).ToArray();
        var trainingSet = new TrainingSet(knn_shapley_classification.Flatten(train), 3, classes, groups, 5);
        var testSet = new TestSet(knn_shapley_classification.Flatten(test), 3, testClasses);

        var cpu = KnnShapley.Classification(trainingSet, testSet, k);
        var resident = KnnShapley.Classification(trainingSet, testSet, k, device: Device);
        var streamed = WithBlocks(rowsPerPass: 37, testsPerLaunch: 8, () => KnnShapley.Classification(trainingSet, testSet, k, device: Device));

        AssertSame(cpu, resident);
        AssertSame(cpu, streamed);
        AssertBitIdentical(resident, streamed);
    }

    [Fact]
    public void regression_over_several_launches_and_streamed_training_blocks_matches_the_cpu_path()
    {
        var random = new Random(22);
        const int n = 257, k = 6;
        var (train, _, test, _) = knn_shapley_classification.RandomProblem(random, n, testPoints: 19, features: 2, classCount: 2, span: 4);
        var targets = Enumerable.Range(0, n).Select(_ => random.NextDouble() * 4 - 2).ToArray();
        var testTargets = Enumerable.Range(0, test.Length).Select(_ => random.NextDouble() * 4 - 2).ToArray();
        var trainingSet = new RegressionTrainingSet(knn_shapley_classification.Flatten(train), 2, targets);
        var testSet = new RegressionTestSet(knn_shapley_classification.Flatten(test), 2, testTargets);

        var cpu = KnnShapley.Regression(trainingSet, testSet, k);
        var resident = KnnShapley.Regression(trainingSet, testSet, k, device: Device);
        var streamed = WithBlocks(rowsPerPass: 50, testsPerLaunch: 8, () => KnnShapley.Regression(trainingSet, testSet, k, device: Device));

        AssertSame(cpu, resident);
        AssertSame(cpu, streamed);
        AssertBitIdentical(resident, streamed);
    }

    [Fact]
    public void k_larger_than_the_training_set_and_a_single_training_point_match_the_cpu_path()
    {
        var random = new Random(23);
        foreach (var n in new[] { 1, 2, 3 })
        {
            var (train, classes, test, testClasses) = knn_shapley_classification.RandomProblem(random, n, testPoints: 10, features: 2, classCount: 2, span: 2);
            var trainingSet = new TrainingSet(knn_shapley_classification.Flatten(train), 2, classes);
            var testSet = new TestSet(knn_shapley_classification.Flatten(test), 2, testClasses);
            AssertSame(KnnShapley.Classification(trainingSet, testSet, 5), KnnShapley.Classification(trainingSet, testSet, 5, device: Device));

            var targets = Enumerable.Range(0, n).Select(_ => random.NextDouble()).ToArray();
            var regressionTrain = new RegressionTrainingSet(knn_shapley_classification.Flatten(train), 2, targets);
            var regressionTest = new RegressionTestSet(knn_shapley_classification.Flatten(test), 2, Enumerable.Range(0, test.Length).Select(_ => random.NextDouble()).ToArray());
            AssertSame(KnnShapley.Regression(regressionTrain, regressionTest, 5), KnnShapley.Regression(regressionTrain, regressionTest, 5, device: Device));
        }
    }

    [Fact]
    public void asymmetric_and_seller_values_match_the_cpu_path_with_streamed_training_blocks()
    {
        var random = new Random(24);
        const int n = 120, sellers = 4;
        var (train, classes, test, testClasses) = knn_shapley_classification.RandomProblem(random, n, testPoints: 9, features: 2, classCount: 2, span: 4);
        var groups = Enumerable.Range(0, n).Select(_ => random.Next(sellers)).ToArray();
        var trainingSet = new TrainingSet(knn_shapley_classification.Flatten(train), 2, classes, groups, sellers);
        var testSet = new TestSet(knn_shapley_classification.Flatten(test), 2, testClasses);

        var asymmetric = WithBlocks(rowsPerPass: 17, testsPerLaunch: 0, () => KnnShapley.Asymmetric(trainingSet, testSet, 3, device: Device));
        var sellerValues = WithBlocks(rowsPerPass: 17, testsPerLaunch: 8, () => SellerShapley.Exact(trainingSet, testSet, 3, device: Device));

        AssertSame(KnnShapley.Asymmetric(trainingSet, testSet, 3), asymmetric);
        AssertSame(SellerShapley.Exact(trainingSet, testSet, 3), sellerValues);
    }

    [Fact]
    public void asymmetric_and_tiered_values_on_the_device_match_the_cpu_path_over_several_launches_and_brute_force()
    {
        // Six groups, one empty, with precedence; K above some groups' sizes; 17 test points over three launches of 8.
        var random = new Random(25);
        const int n = 90, k = 5;
        var (train, classes, test, testClasses) = knn_shapley_classification.RandomProblem(random, n, testPoints: 17, features: 2, classCount: 3, span: 4);
        var groups = Enumerable.Range(0, n).Select(_ => random.Next(5) switch { 4 => 5, var g => g }).ToArray();
        var trainingSet = new TrainingSet(knn_shapley_classification.Flatten(train), 2, classes, groups, 6);
        var testSet = new TestSet(knn_shapley_classification.Flatten(test), 2, testClasses);
        int[] tierOfGroup = [1, 0, 1, 2, 0, 2];

        AssertSame(KnnShapley.Asymmetric(trainingSet, testSet, k), WithBlocks(rowsPerPass: 23, testsPerLaunch: 8, () => KnnShapley.Asymmetric(trainingSet, testSet, k, device: Device)));
        AssertSame(KnnShapley.Tiered(trainingSet, tierOfGroup, testSet, k), WithBlocks(rowsPerPass: 0, testsPerLaunch: 8, () => KnnShapley.Tiered(trainingSet, tierOfGroup, testSet, k, device: Device)));

        // A brute-force check on a small case: ordered groups 0 < 1 < 2.
        const int small = 7;
        var (smallTrain, smallClasses, smallTest, smallTestClasses) = knn_shapley_classification.RandomProblem(random, small, testPoints: 3, features: 2, classCount: 2, span: 3);
        var smallGroups = new[] { 0, 1, 0, 2, 1, 2, 2 };
        var smallSet = new TrainingSet(knn_shapley_classification.Flatten(smallTrain), 2, smallClasses, smallGroups, 3);
        var device = KnnShapley.Asymmetric(smallSet, new TestSet(knn_shapley_classification.Flatten(smallTest), 2, smallTestClasses), 2, device: Device);
        for (var i = 0; i < small; i++)
        {
            var expected = Enumerable.Range(0, smallTest.Length).Average(j =>
                AsymmetricBruteForce.OverRestrictedPermutations(smallGroups, 3, s => BruteForceShapley.KnnUtility(s, smallTrain, smallClasses, smallTest[j], smallTestClasses[j], 2))[i]);
            Assert.Equal(expected, device.Points[i].Value, 12);
        }
    }

    [Fact]
    public void shards_on_the_device_merge_to_the_cpu_paths_values()
    {
        var random = new Random(26);
        const int n = 150, k = 3;
        var (train, classes, test, testClasses) = knn_shapley_classification.RandomProblem(random, n, testPoints: 27, features: 2, classCount: 3, span: 4);
        var groups = Enumerable.Range(0, n).Select(_ => random.Next(3)).ToArray();
        var trainingSet = new TrainingSet(knn_shapley_classification.Flatten(train), 2, classes, groups, 3);
        var testSet = new TestSet(knn_shapley_classification.Flatten(test), 2, testClasses);
        var plan = ShardPlan.For(n, testSet.Count, pairsPerShard: 16 * n);

        var classification = KnnShapley.MergeShards(plan.Select(range => KnnShapley.ClassificationShard(trainingSet, testSet, k, range, device: Device)).ToList());
        var asymmetric = KnnShapley.MergeShards(plan.Select(range => KnnShapley.AsymmetricShard(trainingSet, testSet, k, range, device: Device)).ToList());

        Assert.True(plan.Count > 1);
        AssertSame(KnnShapley.Classification(trainingSet, testSet, k), classification);
        AssertSame(KnnShapley.Asymmetric(trainingSet, testSet, k), asymmetric);
    }

    [Fact]
    public void block_sizes_must_be_whole_test_point_blocks()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Device.TestPointsPerLaunch = TestPointBlocks.Size + 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => Device.TrainingRowsPerPass = -1);
    }

    private T WithBlocks<T>(int rowsPerPass, int testsPerLaunch, Func<T> run)
    {
        Device.TrainingRowsPerPass = rowsPerPass;
        Device.TestPointsPerLaunch = testsPerLaunch;
        try
        {
            return run();
        }
        finally
        {
            Device.TrainingRowsPerPass = 0;
            Device.TestPointsPerLaunch = 0;
        }
    }

    private static void AssertBitIdentical(ShapleyResult expected, ShapleyResult actual)
    {
        Assert.Equal(expected.Points, actual.Points);
        Assert.Equal(expected.Groups, actual.Groups);
        Assert.Equal(expected.TotalUtility, actual.TotalUtility);
    }

    [Theory]
    [InlineData(13)]
    [InlineData(32)]
    public void ranking_equals_the_cpu_ranking_with_duplicates_and_rounding_sensitive_distances(int features)
    {
        // Values over several orders of magnitude make the bits of each distance depend on the summation order, and
        // every fifth row repeats an earlier one so exact ties must fall to the lower index.
        var random = new Random(features);
        const int n = 2500, tests = 3;
        var data = new float[n * features];
        for (var i = 0; i < n; i++)
        {
            for (var f = 0; f < features; f++)
            {
                data[(i * features) + f] = i % 5 == 4 && i > 10
                    ? data[((i - 7) * features) + f]
                    : (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-2, 3)));
            }
        }

        var testRows = Enumerable.Range(0, tests * features).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        using var ranking = Device.CreateRanking(data, features, maxBlock: tests)!;
        var orders = Enumerable.Range(0, tests).Select(_ => new int[n]).ToArray();
        ranking.RankBlock(testRows, orders);

        for (var t = 0; t < tests; t++)
        {
            var expected = new int[n];
            DistanceRanking.Rank(data, features, testRows.AsSpan(t * features, features), new ulong[n], new ulong[n], new int[DistanceRanking.HistogramLength], expected);
            Assert.Equal(expected, orders[t]);
        }
    }

    [Fact]
    public void scoring_gemm_matches_a_float32_reference_within_1e_4_relative()
    {
        // Sizes that are not multiples of the 16-wide tile, scored in two chunks.
        const int queries = 19, rows = 37, dimension = 29;
        var random = new Random(9);
        var q = Enumerable.Range(0, queries * dimension).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var r = Enumerable.Range(0, rows * dimension).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        using var scoring = new GpuScoring(Device, q, queries, dimension);
        var firstChunk = 20;
        var first = new float[queries * firstChunk];
        var second = new float[queries * (rows - firstChunk)];
        scoring.ScoreChunk(r.AsSpan(0, firstChunk * dimension), firstChunk, first);
        scoring.ScoreChunk(r.AsSpan(firstChunk * dimension), rows - firstChunk, second);

        for (var a = 0; a < queries; a++)
        {
            for (var b = 0; b < rows; b++)
            {
                var expected = 0f;
                var scale = 0f;
                for (var d = 0; d < dimension; d++)
                {
                    expected += q[(a * dimension) + d] * r[(b * dimension) + d];
                    scale += Math.Abs(q[(a * dimension) + d] * r[(b * dimension) + d]);
                }

                var actual = b < firstChunk ? first[(a * firstChunk) + b] : second[(a * (rows - firstChunk)) + b - firstChunk];
                Assert.True(Math.Abs(actual - expected) <= 1e-4 * scale, $"score ({a}, {b}): {actual} against {expected}");
            }
        }
    }

    /// <summary>Point values against the mean over test points of brute-force subset enumeration.</summary>
    private static void AssertBruteForce(ShapleyResult result, int n, int testPoints, Func<int, IReadOnlyList<int>, double> utility, int digits)
    {
        var perTest = Enumerable.Range(0, testPoints).Select(j => BruteForceShapley.SubsetValues(n, s => utility(j, s))).ToArray();
        for (var i = 0; i < n; i++)
        {
            Assert.Equal(perTest.Average(values => values[i]), result.Points[i].Value, digits);
        }
    }

    private static void AssertSame(ShapleyResult cpu, ShapleyResult gpu)
    {
        AssertSame(cpu.Points, gpu.Points);
        AssertSame(cpu.Groups, gpu.Groups);
        AssertSame([cpu.TotalUtility], [gpu.TotalUtility]);
    }

    private static void AssertSame(GroupShapleyResult cpu, GroupShapleyResult gpu)
    {
        AssertSame(cpu.Groups, gpu.Groups);
        AssertSame([cpu.TotalUtility], [gpu.TotalUtility]);
    }

    private static void AssertSame(ValueEstimate[] cpu, ValueEstimate[] gpu)
    {
        Assert.Equal(cpu.Length, gpu.Length);
        for (var i = 0; i < cpu.Length; i++)
        {
            Assert.True(Math.Abs(cpu[i].Value - gpu[i].Value) <= Tolerance, $"value {i}: {gpu[i].Value:R} on the GPU path, {cpu[i].Value:R} on the CPU");
            Assert.True(
                (double.IsNaN(cpu[i].StandardError) && double.IsNaN(gpu[i].StandardError)) || Math.Abs(cpu[i].StandardError - gpu[i].StandardError) <= Tolerance,
                $"standard error {i}: {gpu[i].StandardError:R} on the GPU path, {cpu[i].StandardError:R} on the CPU");
        }
    }
}
