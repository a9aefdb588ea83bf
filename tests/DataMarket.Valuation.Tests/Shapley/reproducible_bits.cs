using DataMarket.Valuation.Shapley;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Valuation.Tests.Shapley;

/// <summary>
/// The reproducibility promise of every KNN-family method: output depends only on the inputs, the options (seed
/// included) and the fixed test-point block size; never on thread count or on other work in the process.
/// </summary>
public sealed class reproducible_bits
{
    // 29 test points: three full blocks and a short one, so wave and block edges are both exercised.
    private static readonly Problem Data = Problem.Make(seed: 17, n: 1500, testPoints: 29, features: 6, groups: 5);

    public static TheoryData<string> Methods => new("classification", "regression", "asymmetric", "seller-exact", "seller-sampled");

    [Theory]
    [MemberData(nameof(Methods))]
    public void one_thread_and_four_threads_give_the_same_bits(string method)
    {
        var single = Values(method, maxThreads: 1);
        foreach (var threads in new[] { 2, 3, 4 })
        {
            AssertSameBits(single, Values(method, threads));
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task other_work_in_the_process_does_not_change_the_bits(string method)
    {
        var alone = Values(method, maxThreads: 1);

        // Other valuations compete for the cores and the thread pool while the one under test runs. The noise runs on
        // its own threads (not the pool's) so that it cannot starve the pool the valuation under test draws on.
        using var stop = new CancellationTokenSource();
        var noise = Enumerable.Range(0, 2).Select(i => Task.Factory.StartNew(
            () =>
            {
                var other = Problem.Make(seed: 100 + i, n: 2000, testPoints: 16, features: 6, groups: 3);
                while (!stop.IsCancellationRequested)
                {
                    KnnShapley.Classification(other.Train, other.Test, 3, maxThreads: 2);
                }
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default)).ToArray();
        try
        {
            AssertSameBits(alone, Values(method, maxThreads: 0));
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(noise);
        }
    }

    [Fact]
    public void the_result_is_per_test_point_samples_folded_in_fixed_blocks_in_block_order()
    {
        // An independent fold of the same samples: one valuation per test point (a mean of one sample is the sample
        // itself), added in test-point order inside each block of TestPointBlocks.Size, blocks merged in order.
        var whole = KnnShapley.Classification(Data.Train, Data.Test, 5, maxThreads: 4);
        var total = new RunningMoments(Data.Train.Count);
        for (var first = 0; first < Data.Test.Count; first += TestPointBlocks.Size)
        {
            var block = new RunningMoments(Data.Train.Count);
            for (var j = first; j < Math.Min(first + TestPointBlocks.Size, Data.Test.Count); j++)
            {
                var one = KnnShapley.Classification(Data.Train, new TestSet(Data.Test.Row(j).ToArray(), Data.Test.FeatureCount, [Data.Test.Classes[j]]), 5);
                block.Add(one.Points.Select(p => p.Value).ToArray());
            }

            total.Merge(block);
        }

        AssertSameBits(
            new Snapshot(whole.Points, [], whole.TotalUtility),
            new Snapshot(total.Estimates(), [], whole.TotalUtility));
    }

    [Fact]
    public void sampled_seller_seeds_are_the_same_in_every_process()
    {
        // The per-test-point seed is a fixed function of the valuation seed and the index (HashCode.Combine, which
        // is salted per process, gave other permutations in every process). Pinned against SplitMix64's published
        // first output for state 0 + golden gamma: 0xE220A8397B1DCDAF.
        Assert.Equal((int)(0xE220A8397B1DCDAFUL & int.MaxValue), SellerShapley.TestPointSeed(0, 0));
        Assert.NotEqual(SellerShapley.TestPointSeed(0, 1), SellerShapley.TestPointSeed(1, 0));
    }

    private static Snapshot Values(string method, int maxThreads) => method switch
    {
        "classification" => Snapshot.Of(KnnShapley.Classification(Data.Train, Data.Test, 5, maxThreads: maxThreads)),
        "regression" => Snapshot.Of(KnnShapley.Regression(Data.RegressionTrain, Data.RegressionTest, 5, maxThreads: maxThreads)),
        "asymmetric" => Snapshot.Of(KnnShapley.Asymmetric(Data.Train, Data.Test, 5, maxThreads: maxThreads)),
        "seller-exact" => Snapshot.Of(SellerShapley.Exact(Data.Train, Data.Test, 5, maxThreads: maxThreads)),
        "seller-sampled" => Snapshot.Of(SellerShapley.Sampled(Data.Train, Data.Test, 5, permutationsPerTestPoint: 20, seed: 9, maxThreads: maxThreads)),
        _ => throw new ArgumentOutOfRangeException(nameof(method)),
    };

    private static void AssertSameBits(Snapshot expected, Snapshot actual)
    {
        Assert.Equal(Bits(expected.Points), Bits(actual.Points));
        Assert.Equal(Bits(expected.Groups), Bits(actual.Groups));
        Assert.Equal(Bits([expected.Total]), Bits([actual.Total]));
    }

    private static long[] Bits(ValueEstimate[] values) =>
        values.SelectMany(v => new[] { BitConverter.DoubleToInt64Bits(v.Value), BitConverter.DoubleToInt64Bits(v.StandardError) }).ToArray();

    private sealed record Snapshot(ValueEstimate[] Points, ValueEstimate[] Groups, ValueEstimate Total)
    {
        public static Snapshot Of(ShapleyResult result) => new(result.Points, result.Groups, result.TotalUtility);

        public static Snapshot Of(GroupShapleyResult result) => new([], result.Groups, result.TotalUtility);
    }

    private sealed record Problem(TrainingSet Train, TestSet Test, RegressionTrainingSet RegressionTrain, RegressionTestSet RegressionTest)
    {
        public static Problem Make(int seed, int n, int testPoints, int features, int groups)
        {
            var random = new Random(seed);
            float[] Rows(int count) => Enumerable.Range(0, count * features).Select(_ => (float)random.Next(8)).ToArray();
            var train = Rows(n);
            var test = Rows(testPoints);
            var classes = Enumerable.Range(0, n).Select(_ => random.Next(3)).ToArray();
            var testClasses = Enumerable.Range(0, testPoints).Select(_ => random.Next(3)).ToArray();
            var owners = Enumerable.Range(0, n).Select(i => i * groups / n).ToArray();
            var targets = Enumerable.Range(0, n).Select(_ => random.NextDouble() * 10).ToArray();
            var testTargets = Enumerable.Range(0, testPoints).Select(_ => random.NextDouble() * 10).ToArray();
            return new Problem(
                new TrainingSet(train, features, classes, owners, groups),
                new TestSet(test, features, testClasses),
                new RegressionTrainingSet(train, features, targets, owners, groups),
                new RegressionTestSet(test, features, testTargets));
        }
    }
}
