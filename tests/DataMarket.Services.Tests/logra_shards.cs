using DataMarket.Torch.Influence;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Shapley;
using DataMarket.ValuationWorker.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace DataMarket.Services.Tests;

/// <summary>
/// LoGra as the worker runs it: the gradient store logged once, shards scored from it (or from its bytes read back, as
/// another worker would), merged in shard order. Tiny proxy and few rows, so each case takes a second or two.
/// </summary>
public sealed class logra_shards
{
    private static TabularDataset Data(int rows, int seed)
    {
        var random = new Random(seed);
        var labels = Enumerable.Range(0, rows).Select(i => i % 3 == 0 ? "b" : "a").ToArray();
        var features = labels.SelectMany(l => new[] { (float)(random.NextDouble() + (l == "b" ? 2 : 0)), (float)random.NextDouble() }).ToArray();
        return new TabularDataset(features, 2, labels);
    }

    // 70 training rows (three listings, two sellers) and 37 test points: more than one self block, uneven last shards.
    private static readonly TrainingPart[] s_parts = [new("l1", "s1", Data(30, 1)), new("l2", "s2", Data(25, 2)), new("l3", "s1", Data(15, 3))];
    private static readonly TabularDataset s_test = Data(37, 4);

    [Theory]
    [InlineData(LograEngine.Dot)]
    [InlineData(LograEngine.Cosine)]
    [InlineData(LograEngine.Self)]
    public void Should_give_the_single_shard_bits_with_any_shard_size_and_from_a_stored_copy_of_the_gradient_store(string mode)
    {
        var engine = new LograEngine(null, NullLogger<LograEngine>.Instance);
        byte[] stored = [];
        var valuation = engine.Log(s_parts, s_test, mode, checkpoint: null, store =>
        {
            using var buffer = new MemoryStream();
            store.Write(buffer);
            stored = buffer.ToArray();
        }, CancellationToken.None);
        var units = mode == LograEngine.Self ? 70 : 37;
        Assert.Equal(units, valuation.ShardUnits);
        var single = Bits(valuation.RunAll([new TestPointRange(0, units)]));

        // Several plans (shards of 8, 16 and 32 test points; 64 training rows for self), computed side by side.
        foreach (var pairs in new long[] { 1, 70 * 9, 70 * 17 })
        {
            var plan = valuation.Plan(pairs);
            Assert.True(plan.Count > 1, $"{pairs} pairs per shard cut {plan.Count} shard");
            Assert.All(plan.SkipLast(1), r => Assert.Equal(0, r.Count % (mode == LograEngine.Self ? LograEngine.SelfBlock : 8)));
            Assert.Equal(single, Bits(valuation.RunAll(plan)));
        }

        // Another worker: the same shards from the store's bytes, one after another in reverse, merged in shard order.
        var opened = engine.Open(s_parts, s_test, mode, () => GradientStore.Read(new MemoryStream(stored)));
        var plan16 = opened.Plan(70 * 9);
        var shards = plan16.Reverse().Select(range => opened.RunShard(range)).Reverse().ToList();
        Assert.Equal(single, Bits(opened.Merge(shards)));
    }

    [Fact]
    public void Should_agree_with_the_whole_valuation_on_torch_and_keep_seller_sums()
    {
        var engine = new LograEngine(null, NullLogger<LograEngine>.Instance);
        var sharded = engine.Log(s_parts, s_test, LograEngine.Dot, null, _ => { }, CancellationToken.None).RunAll(ShardPlan.ForPairwise(70, 37, 70 * 9, 8));

        // The library's unsharded path (sums of scores and squares over the test points) on the same data.
        var classes = new Dictionary<string, int> { ["a"] = 0, ["b"] = 1 };
        TabularData Torch(IEnumerable<TabularDataset> sets) => new(
            sets.SelectMany(d => d.Features).ToArray(), 2, sets.SelectMany(d => d.Labels).Select(l => classes[l]).ToArray());
        var whole = TabularInfluence.Value(Torch(s_parts.Select(p => p.Data)) with { Groups = [.. Enumerable.Repeat(0, 30), .. Enumerable.Repeat(1, 25), .. Enumerable.Repeat(0, 15)] },
            Torch([s_test]), new TabularInfluenceOptions());

        var values = sharded.PartValues.SelectMany(p => p).ToArray();
        Assert.Equal(70, values.Length);
        for (var i = 0; i < values.Length; i++)
        {
            Close(whole.Values[i], values[i].Value);
            Close(whole.StandardErrors[i], values[i].StandardError);
        }

        Assert.Equal(["s1", "s2"], sharded.GroupOrder);
        Close(whole.GroupValues[0], sharded.GroupValues["s1"].Value);
        Close(whole.GroupStandardErrors[1], sharded.GroupValues["s2"].StandardError);
        Close(whole.Total, sharded.TotalUtility.Value);
        Close(values.Sum(v => v.Value), sharded.TotalUtility.Value);
    }

    [Fact]
    public void Should_value_each_training_row_by_its_self_influence_and_sum_sellers_over_their_rows()
    {
        var engine = new LograEngine(null, NullLogger<LograEngine>.Instance);
        var valuation = engine.Log(s_parts, s_test, LograEngine.Self, null, _ => { }, CancellationToken.None);
        var result = valuation.RunAll(valuation.Plan(1));

        var classes = new Dictionary<string, int> { ["a"] = 0, ["b"] = 1 };
        var train = new TabularData(s_parts.SelectMany(p => p.Data.Features).ToArray(), 2, s_parts.SelectMany(p => p.Data.Labels).Select(l => classes[l]).ToArray());
        var test = new TabularData(s_test.Features, 2, s_test.Labels.Select(l => classes[l]).ToArray());
        var whole = TabularInfluence.Value(train, test, new TabularInfluenceOptions { Mode = InfluenceMode.Self });

        var values = result.PartValues.SelectMany(p => p).ToArray();
        for (var i = 0; i < values.Length; i++)
        {
            Close(whole.Values[i], values[i].Value);
            Assert.True(double.IsNaN(values[i].StandardError));
        }

        Assert.True(values.All(v => v.Value > 0), "self-influence is a positive quadratic form");
        Close(result.PartValues[0].Concat(result.PartValues[2]).Sum(v => v.Value), result.GroupValues["s1"].Value);
        Close(values.Sum(v => v.Value), result.TotalUtility.Value);
    }

    [Fact]
    public void Should_refuse_an_unknown_mode_before_training()
    {
        var engine = new LograEngine(null, NullLogger<LograEngine>.Instance);
        var error = Assert.Throws<ValuationRejectedException>(() => engine.Log(s_parts, s_test, "manhattan", null, _ => { }, CancellationToken.None));
        Assert.Contains("unknown LoGra mode 'manhattan'", error.Message);
    }

    // Equal to rounding: the library sums scores and squares, the shards keep Welford moments.
    private static void Close(double expected, double actual) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-9 * Math.Max(1, Math.Abs(expected)), $"expected {expected:R}, got {actual:R}");

    private static long[] Bits(DatasetValuationResult result) =>
        result.PartValues.SelectMany(v => v).SelectMany(e => new[] { BitConverter.DoubleToInt64Bits(e.Value), BitConverter.DoubleToInt64Bits(e.StandardError) })
            .Concat(result.GroupOrder.SelectMany(g => new[] { BitConverter.DoubleToInt64Bits(result.GroupValues[g].Value), BitConverter.DoubleToInt64Bits(result.GroupValues[g].StandardError) }))
            .Append(BitConverter.DoubleToInt64Bits(result.TotalUtility.Value))
            .Append(BitConverter.DoubleToInt64Bits(result.TotalUtility.StandardError))
            .ToArray();
}
