namespace DataMarket.Valuation.Statistics;

/// <summary>
/// The one way valuations reduce over test points: test points go in fixed blocks of <see cref="Size"/>; inside a
/// block samples are added in test-point order, and blocks are merged into the totals in block order. Floating-point
/// sums depend on their order, so fixing the order (and nothing else) makes a valuation's bits depend only on its
/// inputs and options: never on thread count, core count, or what else the process is doing. Threads only decide how
/// many blocks run at once.
/// </summary>
public static class TestPointBlocks
{
    /// <summary>
    /// Test points per block. Small enough that a handful of test points still spreads over every core, large enough
    /// that the O(N) merge per block is a small cost next to the O(N) ranking per test point.
    /// A shard of a sharded valuation is a whole number of blocks, so merging shards in order gives the same bits.
    /// </summary>
    public const int Size = 8;

    /// <summary>
    /// Runs blocks of the test points [<paramref name="first"/>, first + <paramref name="count"/>) in waves of at most
    /// <paramref name="maxThreads"/> blocks (0: one per core). <paramref name="accumulate"/> gets a slot (created once
    /// per wave position and reused), the block's first test point and its size, and must leave that block's partial
    /// moments in the slot; <paramref name="merge"/> then folds the slot into the totals, one block at a time in
    /// block order.
    /// </summary>
    public static void Run<TSlot>(
        int first,
        int count,
        int maxThreads,
        Func<TSlot> createSlot,
        Action<TSlot, int, int> accumulate,
        Action<TSlot> merge,
        CancellationToken cancellationToken)
        where TSlot : class
    {
        ArgumentOutOfRangeException.ThrowIfNegative(first);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegative(maxThreads);
        var blocks = (count + Size - 1) / Size;
        var width = Math.Max(1, Math.Min(maxThreads == 0 ? Environment.ProcessorCount : maxThreads, blocks));
        var slots = new TSlot[width];
        for (var wave = 0; wave < blocks; wave += width)
        {
            var inWave = Math.Min(width, blocks - wave);
            void RunBlock(int position)
            {
                var blockFirst = first + ((wave + position) * Size);
                var slot = slots[position] ??= createSlot();
                accumulate(slot, blockFirst, Math.Min(Size, first + count - blockFirst));
            }

            if (inWave == 1)
            {
                cancellationToken.ThrowIfCancellationRequested();
                RunBlock(0);
            }
            else
            {
                Parallel.For(0, inWave, new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = inWave }, RunBlock);
            }

            for (var position = 0; position < inWave; position++)
            {
                merge(slots[position]);
            }
        }
    }
}
