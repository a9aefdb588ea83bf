using DataMarket.Valuation.Shapley;

namespace DataMarket.Valuation.Tests.Shapley;

public class ranking_by_distance
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(2047)]
    [InlineData(2048)]
    [InlineData(5003)]
    [InlineData(70001)]
    public void radix_sort_orders_keys_like_a_comparison_sort(int n)
    {
        var random = new Random(n);
        var keys = new ulong[n];
        for (var i = 0; i < n; i++)
        {
            // Few distinct distances (many ties) mixed with the full float range, including 0 and infinity.
            var distance = random.Next(4) switch
            {
                0 => random.Next(5),
                1 => 0f,
                2 => float.PositiveInfinity,
                _ => (float)(random.NextDouble() * Math.Pow(10, random.Next(-30, 30))),
            };
            keys[i] = ((ulong)BitConverter.SingleToUInt32Bits(distance) << 32) | (uint)i;
        }

        var expected = keys.ToArray();
        Array.Sort(expected);
        DistanceRanking.SortKeys(keys, new ulong[n], new int[DistanceRanking.HistogramLength]);
        Assert.Equal(expected, keys);
    }

    [Fact]
    public void radix_sort_handles_keys_sharing_their_high_digits()
    {
        var n = 10000;
        var keys = Enumerable.Range(0, n).Select(i => ((ulong)BitConverter.SingleToUInt32Bits(1f + ((n - i) * 1e-7f)) << 32) | (uint)i).ToArray();
        var expected = keys.ToArray();
        Array.Sort(expected);
        DistanceRanking.SortKeys(keys, new ulong[n], new int[DistanceRanking.HistogramLength]);
        Assert.Equal(expected, keys);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    [InlineData(16)]
    [InlineData(32)]
    [InlineData(37)]
    public void squared_distance_matches_the_scalar_sum_for_every_width(int width)
    {
        var random = new Random(width);
        for (var trial = 0; trial < 20; trial++)
        {
            // Small integers keep every partial sum exact, so vector and scalar orders must agree bit for bit.
            var a = Enumerable.Range(0, width).Select(_ => (float)random.Next(-20, 20)).ToArray();
            var b = Enumerable.Range(0, width).Select(_ => (float)random.Next(-20, 20)).ToArray();
            var expected = a.Zip(b, (x, y) => (x - y) * (x - y)).Sum();
            Assert.Equal(expected, DistanceRanking.SquaredDistance(a, b));
        }
    }

    [Fact]
    public void ties_rank_the_lower_training_index_first()
    {
        // Points 0..5 at distances 2, 1, 2, 0, 1, 2 from the origin.
        float[] features = [2, -1, -2, 0, 1, 2];
        var order = new int[6];
        DistanceRanking.Rank(features, 1, [0f], new ulong[6], new ulong[6], new int[DistanceRanking.HistogramLength], order);
        Assert.Equal([3, 1, 4, 0, 2, 5], order);
    }

    [Fact]
    public void ranking_many_points_agrees_with_sorting_by_double_distance_then_index()
    {
        var random = new Random(2);
        const int n = 6000, d = 5;
        var features = Enumerable.Range(0, n * d).Select(_ => (float)random.Next(6)).ToArray();
        float[] test = [1, 2, 3, 2, 1];
        var order = new int[n];
        DistanceRanking.Rank(features, d, test, new ulong[n], new ulong[n], new int[DistanceRanking.HistogramLength], order);

        var expected = Enumerable.Range(0, n)
            .OrderBy(i => Enumerable.Range(0, d).Sum(f => Math.Pow(features[(i * d) + f] - test[f], 2)))
            .ThenBy(i => i)
            .ToArray();
        Assert.Equal(expected, order);
    }
}
