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
    public void Should_cut_shards_from_the_job_size_only()
    {
        Assert.Equal([new TestPointRange(0, 100), new TestPointRange(100, 100), new TestPointRange(200, 50)], ShardPlan.For(200_000, 250));
        Assert.Equal([new TestPointRange(0, 3)], ShardPlan.For(10, 3));
        Assert.Empty(ShardPlan.For(10, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ShardedValuation.Prepare(ValuationMethods.KnnShapley, ValuationMethods.Classification, Data("classification", 5, 2).Parts, Data("classification", 5, 2).Test, 2)
            .RunShard(new TestPointRange(1, 2)));
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
