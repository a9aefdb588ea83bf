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

    /// <summary>
    /// The one summation order every path must follow, written out plainly: lane l adds the rounded squares of features
    /// l, l + 8, ... in order, then ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
    /// </summary>
    internal static float ReferenceSquaredDistance(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var lane = new float[8];
        for (var f = 0; f < a.Length; f++)
        {
            var difference = a[f] - b[f];
            var square = difference * difference;
            lane[f % 8] = lane[f % 8] + square;
        }

        var left = (lane[0] + lane[1]) + (lane[2] + lane[3]);
        var right = (lane[4] + lane[5]) + (lane[6] + lane[7]);
        return left + right;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(8)]
    [InlineData(13)]
    [InlineData(16)]
    [InlineData(32)]
    [InlineData(33)]
    [InlineData(100)]
    public void every_vector_width_sums_in_the_one_fixed_order_bit_for_bit(int width)
    {
        var random = new Random(width);
        var implementations = new List<(string Name, Func<float[], float[], float> Distance)>
        {
            ("scalar", (x, y) => DistanceRanking.SquaredDistanceScalar(x, y)),
            ("dispatch", (x, y) => DistanceRanking.SquaredDistance(x, y)),
        };
        if (System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated)
        {
            implementations.Add(("128-bit", (x, y) => DistanceRanking.SquaredDistance128(x, y)));
        }

        if (System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated)
        {
            implementations.Add(("256-bit", (x, y) => DistanceRanking.SquaredDistance256(x, y)));
        }

        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
        {
            implementations.Add(("512-bit", (x, y) => DistanceRanking.SquaredDistance512(x, y)));
        }

        var differsFromSequentialSum = false;
        for (var trial = 0; trial < 200; trial++)
        {
            // Values over several orders of magnitude make rounding depend on the order of the additions.
            var a = Enumerable.Range(0, width).Select(_ => (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-3, 4)))).ToArray();
            var b = Enumerable.Range(0, width).Select(_ => (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-3, 4)))).ToArray();
            var expected = ReferenceSquaredDistance(a, b);
            foreach (var (name, distance) in implementations)
            {
                var actual = distance(a, b);
                Assert.True(
                    BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(actual),
                    $"{name}, width {width}, trial {trial}: {actual:R} instead of {expected:R}");
            }

            var sequential = 0f;
            for (var f = 0; f < width; f++)
            {
                sequential += (a[f] - b[f]) * (a[f] - b[f]);
            }

            differsFromSequentialSum |= sequential != expected;
        }

        // The data is rich enough to tell the fixed order from a plain left-to-right sum (with fewer than four features
        // the two orders are the same additions).
        Assert.True(width < 4 || differsFromSequentialSum, "the test data never distinguishes summation orders");
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
