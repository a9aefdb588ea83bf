using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DataMarket.Valuation.Shapley;

/// <summary>
/// Orders training points by squared Euclidean float32 distance to one test point, ties broken by the lower
/// training index. Squared distances order like distances and skip a square root per point.
/// </summary>
internal static class DistanceRanking
{
    // Three 11-bit digits cover the 31 bits of a non-negative float; the sign bit is always clear.
    private const int DigitBits = 11;
    private const int Buckets = 1 << DigitBits;
    private const int Passes = 3;

    // Below this a comparison sort of the packed keys beats three counting passes over 2^11 buckets.
    private const int RadixThreshold = 2048;

    /// <summary>
    /// Writes the training indices sorted by (distance, index) into <paramref name="order"/>.
    /// <paramref name="keys"/> and <paramref name="scratch"/> need room for every point; <paramref name="histogram"/>
    /// needs <see cref="HistogramLength"/> entries.
    /// </summary>
    public static void Rank(ReadOnlySpan<float> features, int featureCount, ReadOnlySpan<float> testRow, Span<ulong> keys, Span<ulong> scratch, Span<int> histogram, Span<int> order)
    {
        var n = order.Length;
        for (var i = 0; i < n; i++)
        {
            keys[i] = Key(SquaredDistance(features.Slice(i * featureCount, featureCount), testRow), i);
        }

        SortIntoOrder(keys[..n], scratch, histogram, order);
    }

    /// <summary>
    /// Fills one key array per test row. Each training row is read once for the whole block of test rows, which cuts
    /// the memory traffic of streaming a large training matrix per test point.
    /// </summary>
    public static void ComputeKeys(ReadOnlySpan<float> features, int featureCount, ReadOnlySpan<float> testRows, ulong[][] keys)
    {
        var testCount = testRows.Length / featureCount;
        var n = features.Length / featureCount;
        for (var i = 0; i < n; i++)
        {
            var row = features.Slice(i * featureCount, featureCount);
            for (var t = 0; t < testCount; t++)
            {
                keys[t][i] = Key(SquaredDistance(row, testRows.Slice(t * featureCount, featureCount)), i);
            }
        }
    }

    /// <summary>Sorts keys made by <see cref="ComputeKeys"/> and writes the training indices in rank order.</summary>
    public static void SortIntoOrder(Span<ulong> keys, Span<ulong> scratch, Span<int> histogram, Span<int> order)
    {
        var n = keys.Length;
        SortKeys(keys, scratch[..n], histogram);
        for (var i = 0; i < n; i++)
        {
            order[i] = (int)(uint)keys[i];
        }
    }

    // The distance's bits order like the non-negative float; the index below them breaks ties towards the lower index.
    private static ulong Key(float squaredDistance, int index) =>
        ((ulong)BitConverter.SingleToUInt32Bits(squaredDistance) << 32) | (uint)index;

    public const int HistogramLength = Passes * Buckets;

    /// <summary>
    /// Sorts packed (distance bits, index) keys ascending. Keys arrive in index order, so a stable LSD radix sort
    /// on the distance half alone leaves equal distances in index order: the same result as sorting whole keys.
    /// </summary>
    public static void SortKeys(Span<ulong> keys, Span<ulong> scratch, Span<int> histogram)
    {
        var n = keys.Length;
        if (n < RadixThreshold)
        {
            keys.Sort();
            return;
        }

        histogram = histogram[..HistogramLength];
        histogram.Clear();
        ref var key0 = ref MemoryMarshal.GetReference(keys);
        for (var i = 0; i < n; i++)
        {
            var high = (uint)(Unsafe.Add(ref key0, i) >> 32);
            histogram[(int)(high & (Buckets - 1))]++;
            histogram[Buckets + (int)((high >> DigitBits) & (Buckets - 1))]++;
            histogram[(2 * Buckets) + (int)(high >> (2 * DigitBits))]++;
        }

        var source = keys;
        var target = scratch;
        for (var pass = 0; pass < Passes; pass++)
        {
            var counts = histogram.Slice(pass * Buckets, Buckets);
            var shift = 32 + (pass * DigitBits);

            // A digit every key shares would only copy the keys; skipping it is common for the top digit.
            var sharedDigit = (int)((source[0] >> shift) & (Buckets - 1));
            if (counts[sharedDigit] == n)
            {
                continue;
            }

            var offset = 0;
            for (var b = 0; b < Buckets; b++)
            {
                var count = counts[b];
                counts[b] = offset;
                offset += count;
            }

            ref var sourceRef = ref MemoryMarshal.GetReference(source);
            ref var targetRef = ref MemoryMarshal.GetReference(target);
            ref var countRef = ref MemoryMarshal.GetReference(counts);
            for (var i = 0; i < n; i++)
            {
                var key = Unsafe.Add(ref sourceRef, i);
                ref var slot = ref Unsafe.Add(ref countRef, (int)((key >> shift) & (Buckets - 1)));
                Unsafe.Add(ref targetRef, slot) = key;
                slot++;
            }

            var swap = source;
            source = target;
            target = swap;
        }

        if (source != keys)
        {
            source.CopyTo(keys);
        }
    }

    /// <summary>Number of partial sums in <see cref="SquaredDistance"/>: lane l adds the features l, l + 8, l + 16, ...</summary>
    public const int Lanes = 8;

    /// <summary>
    /// Squared Euclidean distance in float32, summed in one fixed order on every host and every device, so the ranking
    /// (and with it every value) has the same bits everywhere: lane l (0..7) adds (a[f] - b[f])^2 for f = l, l + 8,
    /// l + 16, ... in feature order, each square rounded before it is added (no fused multiply-add); then the lanes are
    /// summed pairwise as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). The 256-bit, 128-bit and scalar
    /// implementations below and the GPU kernel all follow this order; a wider vector would pair different features.
    /// </summary>
    public static float SquaredDistance(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            return SquaredDistance512(a, b);
        }

        if (Vector256.IsHardwareAccelerated)
        {
            return SquaredDistance256(a, b);
        }

        return Vector128.IsHardwareAccelerated ? SquaredDistance128(a, b) : SquaredDistanceScalar(a, b);
    }

    /// <summary>
    /// The fixed order with 512-bit loads: 16 features give lane l the squares of features l and l + 8, added in that
    /// order to one 8-lane accumulator, which is the same sequence of additions as two 8-feature steps.
    /// </summary>
    internal static float SquaredDistance512(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var length = a.Length;
        ref var aRef = ref MemoryMarshal.GetReference(a);
        ref var bRef = ref MemoryMarshal.GetReference(b);
        var accumulator = Vector256<float>.Zero;
        var i = 0;
        for (; i <= length - (2 * Lanes); i += 2 * Lanes)
        {
            var difference = Vector512.LoadUnsafe(ref aRef, (nuint)i) - Vector512.LoadUnsafe(ref bRef, (nuint)i);
            var square = difference * difference;
            accumulator += square.GetLower();
            accumulator += square.GetUpper();
        }

        return Finish256(accumulator, ref aRef, ref bRef, i, length);
    }

    /// <summary>The fixed order with one 8-lane vector accumulator.</summary>
    internal static float SquaredDistance256(ReadOnlySpan<float> a, ReadOnlySpan<float> b) =>
        Finish256(Vector256<float>.Zero, ref MemoryMarshal.GetReference(a), ref MemoryMarshal.GetReference(b), 0, a.Length);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Finish256(Vector256<float> accumulator, ref float aRef, ref float bRef, int i, int length)
    {
        for (; i <= length - Lanes; i += Lanes)
        {
            var difference = Vector256.LoadUnsafe(ref aRef, (nuint)i) - Vector256.LoadUnsafe(ref bRef, (nuint)i);
            accumulator += difference * difference;
        }

        return i == length ? SumLanes(accumulator) : SumWithTail(accumulator, ref aRef, ref bRef, i, length);
    }

    /// <summary>((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)) in registers; float addition is commutative, so l1 + l0 is l0 + l1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float SumLanes(Vector256<float> lanes)
    {
        var pairs = lanes + Vector256.Shuffle(lanes, Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6));
        var quads = pairs + Vector256.Shuffle(pairs, Vector256.Create(2, 3, 0, 1, 6, 7, 4, 5));
        return quads.GetElement(0) + quads.GetElement(4);
    }

    // The remaining features go to lanes 0.. in order; a lane with nothing left keeps its sum (adding 0 would too).
    // Kept out of line: a stack buffer in the hot method would stop it being inlined.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float SumWithTail(Vector256<float> accumulator, ref float aRef, ref float bRef, int from, int length)
    {
        Span<float> lanes = stackalloc float[Lanes];
        accumulator.CopyTo(lanes);
        AddTail(ref aRef, ref bRef, from, length, lanes);
        return SumLanes(lanes);
    }

    /// <summary>The fixed order with two 4-lane vector accumulators (lanes 0..3 and 4..7), for hosts without 256-bit vectors.</summary>
    internal static float SquaredDistance128(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var length = a.Length;
        ref var aRef = ref MemoryMarshal.GetReference(a);
        ref var bRef = ref MemoryMarshal.GetReference(b);
        var low = Vector128<float>.Zero;
        var high = Vector128<float>.Zero;
        var i = 0;
        for (; i <= length - Lanes; i += Lanes)
        {
            var lowDifference = Vector128.LoadUnsafe(ref aRef, (nuint)i) - Vector128.LoadUnsafe(ref bRef, (nuint)i);
            var highDifference = Vector128.LoadUnsafe(ref aRef, (nuint)(i + 4)) - Vector128.LoadUnsafe(ref bRef, (nuint)(i + 4));
            low += lowDifference * lowDifference;
            high += highDifference * highDifference;
        }

        Span<float> lanes = stackalloc float[Lanes];
        low.CopyTo(lanes);
        high.CopyTo(lanes[4..]);
        AddTail(ref aRef, ref bRef, i, length, lanes);
        return SumLanes(lanes);
    }

    /// <summary>The fixed order one float at a time.</summary>
    internal static float SquaredDistanceScalar(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Span<float> lanes = stackalloc float[Lanes];
        lanes.Clear();
        AddTail(ref MemoryMarshal.GetReference(a), ref MemoryMarshal.GetReference(b), 0, a.Length, lanes);
        return SumLanes(lanes);
    }

    private static void AddTail(ref float aRef, ref float bRef, int from, int length, Span<float> lanes)
    {
        for (var f = from; f < length; f++)
        {
            var difference = Unsafe.Add(ref aRef, f) - Unsafe.Add(ref bRef, f);
            lanes[f % Lanes] += difference * difference;
        }
    }

    private static float SumLanes(ReadOnlySpan<float> lanes) =>
        ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}
