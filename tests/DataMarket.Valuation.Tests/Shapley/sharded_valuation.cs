using DataMarket.Valuation;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Shapley;

namespace DataMarket.Valuation.Tests.Shapley;

public sealed class sharded_valuation
{
    [Theory]
    [InlineData(ValuationMethods.KnnShapley, ValuationMethods.Classification)]
    [InlineData(ValuationMethods.KnnShapley, ValuationMethods.Regression)]
    [InlineData(ValuationMethods.AsymmetricKnnShapley, ValuationMethods.Classification)]
    [InlineData(ValuationMethods.TieredKnnShapley, ValuationMethods.Classification)]
    [InlineData(ValuationMethods.SellerShapley, ValuationMethods.Classification)]
    public void Should_give_the_same_bits_whether_shards_run_in_order_side_by_side_or_through_storage(string method, string taskType)
    {
        var (parts, test) = Data(taskType, trainRows: 300, testRows: 37);
        var valuation = ShardedValuation.Prepare(method, taskType, parts, test, k: 3, groupOrder: ["b", "a"]);
        var plan = ShardPlan.For(valuation.TrainingPoints, valuation.TestPoints, pairsPerShard: 300 * 5);
        Assert.Equal(8, plan.Count);
        Assert.Equal(37, plan.Sum(r => r.Count));

        var parallel = valuation.RunAll(plan);
        // One worker after another, each shard written and read back as a worker would store it, merged in shard order.
        var stored = plan.Reverse().Select(range =>
        {
            using var buffer = new MemoryStream();
            valuation.RunShard(range).Write(buffer);
            buffer.Position = 0;
            return ShardMoments.Read(buffer);
        }).Reverse().ToList();
        var sequential = valuation.Merge(stored);

        Assert.Equal(Bits(parallel), Bits(sequential));
        Assert.Equal(parallel.TotalUtility.Value, sequential.TotalUtility.Value);
        Assert.Equal(37, parallel.TestPoints);
    }

    [Fact]
    public void Should_agree_with_the_unsharded_valuation_and_keep_efficiency()
    {
        var (parts, test) = Data(ValuationMethods.Classification, trainRows: 200, testRows: 25);
        var sharded = ShardedValuation.Prepare(ValuationMethods.KnnShapley, ValuationMethods.Classification, parts, test, k: 5);
        var result = sharded.RunAll(ShardPlan.For(200, 25, pairsPerShard: 200 * 4));
        var whole = DatasetValuation.KnnShapleyClassification(parts, test, 5);

        var a = result.PartValues.SelectMany(v => v).ToArray();
        var b = whole.PartValues.SelectMany(v => v).ToArray();
        for (var i = 0; i < a.Length; i++)
        {
            Assert.Equal(b[i].Value, a[i].Value, 12);
            Assert.Equal(b[i].StandardError, a[i].StandardError, 12);
        }

        Assert.Equal(result.TotalUtility.Value, a.Sum(v => v.Value), 10);
        Assert.Equal(whole.GroupValues["a"].Value, result.GroupValues["a"].Value, 12);
    }

    [Fact]
    public void Should_give_tiered_values_of_the_unsharded_tiered_valuation_in_the_requests_order_of_parts()
    {
        var (parts, test) = Data(ValuationMethods.Classification, trainRows: 300, testRows: 37);
        // A copy of seller a's data by seller c, who listed last but comes first in the request.
        var copy = new TrainingPart("p3", "c", parts[0].Data);
        var valuation = ShardedValuation.Prepare(
            ValuationMethods.TieredKnnShapley, ValuationMethods.Classification, [copy, parts[0], parts[1]], test, k: 3, groupOrder: ["a", "b", "c"]);
        var sharded = valuation.RunAll(ShardPlan.For(valuation.TrainingPoints, valuation.TestPoints, pairsPerShard: 450 * 5));

        // Shards merge their moments at other boundaries than the unsharded run's fixed blocks: equal to rounding.
        var whole = DatasetValuation.TieredKnnShapley([parts[0], parts[1], copy], test, 3);
        Assert.Equal([0, 0, 1], whole.Tiers.TierOfGroup);
        foreach (var (request, valued) in new[] { (0, 2), (1, 0), (2, 1) })
        {
            Assert.Equal(whole.Values.PartValues[valued].Length, sharded.PartValues[request].Length);
            for (var i = 0; i < sharded.PartValues[request].Length; i++)
            {
                Assert.Equal(whole.Values.PartValues[valued][i].Value, sharded.PartValues[request][i].Value, 12);
                Assert.Equal(whole.Values.PartValues[valued][i].StandardError, sharded.PartValues[request][i].StandardError, 12);
            }
        }

        foreach (var seller in new[] { "a", "b", "c" })
        {
            Assert.Equal(whole.Values.GroupValues[seller].Value, sharded.GroupValues[seller].Value, 12);
        }

        Assert.True(sharded.GroupValues["c"].Value < sharded.GroupValues["a"].Value, "the copy earns less than the original");
        Assert.Equal(whole.Values.TotalUtility.Value, sharded.TotalUtility.Value, 12);
    }

    [Fact]
    public void Should_give_seller_values_of_the_unsharded_seller_valuation()
    {
        var (parts, test) = Data(ValuationMethods.Classification, trainRows: 300, testRows: 37);
        var valuation = ShardedValuation.Prepare(ValuationMethods.SellerShapley, ValuationMethods.Classification, parts, test, k: 3);
        var sharded = valuation.RunAll(ShardPlan.For(valuation.TrainingPoints, valuation.TestPoints, pairsPerShard: 300 * 5));
        var whole = DatasetValuation.SellerShapleyClassification(parts, test, 3);

        Assert.True(whole.Exact);
        Assert.Empty(sharded.PartValues);
        Assert.Equal(whole.GroupNames, sharded.GroupOrder);
        for (var g = 0; g < whole.Groups.Length; g++)
        {
            Assert.Equal(whole.Groups[g].Value, sharded.GroupValues[whole.GroupNames![g]].Value, 12);
            Assert.Equal(whole.Groups[g].StandardError, sharded.GroupValues[whole.GroupNames![g]].StandardError, 12);
        }

        Assert.Equal(whole.TotalUtility.Value, sharded.TotalUtility.Value, 12);
        // Efficiency: the sellers' values add up to the utility of all of them.
        Assert.Equal(sharded.TotalUtility.Value, sharded.GroupValues.Values.Sum(v => v.Value), 10);
    }

    [Fact]
    public void Should_draw_the_same_permutations_per_test_point_whether_sampled_seller_values_run_whole_or_in_shards()
    {
        var (parts, test) = Data(ValuationMethods.Classification, trainRows: 200, testRows: 23);
        var (train, testSet, _) = DatasetValuation.Encode(parts, test);
        var whole = SellerShapley.Sampled(train, testSet, 3, permutationsPerTestPoint: 7, seed: 5);
        var shards = ShardPlan.For(200, 23, pairsPerShard: 200 * 4)
            .Select(range => SellerShapley.Shard(train, testSet, 3, range, permutationsPerTestPoint: 7, seed: 5))
            .ToList();
        var merged = KnnShapley.MergeShards(shards);

        for (var g = 0; g < whole.Groups.Length; g++)
        {
            Assert.Equal(whole.Groups[g].Value, merged.Groups[g].Value, 12);
        }

        // A different seed draws other permutations: the comparison above is not vacuous.
        var other = KnnShapley.MergeShards([SellerShapley.Shard(train, testSet, 3, new TestPointRange(0, 23), permutationsPerTestPoint: 7, seed: 6)]);
        Assert.NotEqual(whole.Groups[0].Value, other.Groups[0].Value);
    }

    [Theory]
    [InlineData(ValuationMethods.AsymmetricKnnShapley)]
    [InlineData(ValuationMethods.TieredKnnShapley)]
    [InlineData(ValuationMethods.SellerShapley)]
    public void Should_refuse_a_regression_task_for_the_methods_that_value_classification_only(string method)
    {
        var (parts, test) = Data(ValuationMethods.Regression, trainRows: 10, testRows: 3);
        var error = Assert.Throws<ArgumentException>(() => ShardedValuation.Prepare(method, ValuationMethods.Regression, parts, test, k: 3));
        Assert.Contains("classification tasks only", error.Message);
    }

    [Fact]
    public void Should_cut_shards_from_the_job_size_only()
    {
        Assert.Equal([new TestPointRange(0, 100), new TestPointRange(100, 100), new TestPointRange(200, 50)], ShardPlan.For(200_000, 250));
        Assert.Equal([new TestPointRange(0, 3)], ShardPlan.For(10, 3));
        Assert.Empty(ShardPlan.For(10, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ShardedValuation.Prepare(ValuationMethods.KnnShapley, ValuationMethods.Classification, Data("classification", 5, 2).Parts, Data("classification", 5, 2).Test, 2)
            .RunShard(new TestPointRange(1, 2)));
    }

    [Fact]
    public void Should_reduce_blocks_pairwise_to_the_same_bits_whatever_the_shards_of_2_to_the_j_blocks()
    {
        // 13 blocks of 8 samples of 5 quantities with very different scales: a left fold over shards would round differently.
        var random = new Random(3);
        var samples = Enumerable.Range(0, 100).Select(_ => Enumerable.Range(0, 5).Select(i => random.NextDouble() * Math.Pow(10, i * 3)).ToArray()).ToArray();
        ShardMoments Block(int first, int count)
        {
            var points = new DataMarket.Valuation.Statistics.RunningMoments(5);
            for (var j = first; j < first + count; j++)
            {
                points.Add(samples[j]);
            }

            return new ShardMoments(new TestPointRange(first, count), points, new DataMarket.Valuation.Statistics.RunningMoments(0), new DataMarket.Valuation.Statistics.RunningMoments(1));
        }

        ShardMoments Shard(TestPointRange range) => KnnShapley.ReducePairwise(
            Enumerable.Range(0, (range.Count + 7) / 8).Select(b => Block(range.First + (b * 8), Math.Min(8, range.First + range.Count - (range.First + (b * 8))))));
        long[] Bits(ShapleyResult result) => result.Points.SelectMany(e => new[] { BitConverter.DoubleToInt64Bits(e.Value), BitConverter.DoubleToInt64Bits(e.StandardError) }).ToArray();

        var single = Bits(KnnShapley.MergeShardsPairwise([Shard(new TestPointRange(0, 100))]));
        foreach (var pairs in new long[] { 8, 16, 32, 64 })
        {
            var plan = ShardPlan.ForPairwise(1, 100, pairs, 8);
            Assert.All(plan.SkipLast(1), r => Assert.Equal(pairs, r.Count));
            Assert.Equal(single, Bits(KnnShapley.MergeShardsPairwise(plan.Select(Shard).ToList())));
        }

        // A size that is not 2^j blocks is rounded up to one: 3 blocks' worth of pairs gives shards of 4 blocks.
        Assert.Equal([new TestPointRange(0, 32), new TestPointRange(32, 32), new TestPointRange(64, 32), new TestPointRange(96, 4)], ShardPlan.ForPairwise(1, 100, 24, 8));
        // The left fold over the same 16-point shards is not the same tree: this test would see the difference.
        var leftFold = KnnShapley.MergeShards(ShardPlan.ForPairwise(1, 100, 16, 8).Select(Shard).ToList());
        Assert.NotEqual(single, Bits(leftFold));
    }

    private static long[] Bits(DatasetValuationResult result) =>
        result.PartValues.SelectMany(v => v).SelectMany(e => new[] { BitConverter.DoubleToInt64Bits(e.Value), BitConverter.DoubleToInt64Bits(e.StandardError) })
            .Concat(result.GroupOrder.Select(g => BitConverter.DoubleToInt64Bits(result.GroupValues[g].Value)))
            .ToArray();

    private static (IReadOnlyList<TrainingPart> Parts, TabularDataset Test) Data(string taskType, int trainRows, int testRows)
    {
        var random = new Random(7);
        TabularDataset Make(int rows) => new(
            Enumerable.Range(0, rows * 2).Select(_ => (float)random.NextDouble()).ToArray(),
            2,
            Enumerable.Range(0, rows).Select(_ => taskType == ValuationMethods.Regression
                ? random.NextDouble().ToString("R", System.Globalization.CultureInfo.InvariantCulture)
                : random.Next(3).ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        var half = trainRows / 2;
        return ([new TrainingPart("p1", "a", Make(half)), new TrainingPart("p2", "b", Make(trainRows - half))], Make(testRows));
    }
}
