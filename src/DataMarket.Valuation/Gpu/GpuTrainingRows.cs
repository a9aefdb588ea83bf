using ILGPU;
using ILGPU.Runtime;

namespace DataMarket.Valuation.Gpu;

/// <summary>
/// The training matrix as the distance kernel sees it: resident on the device when it fits in
/// <paramref name="rowsPerPass"/> rows, otherwise streamed through one block-sized device buffer for every batch of
/// test rows, block after block in row order. Each block's keys land at their rows' places, so the keys (and every
/// order and value built on them) are the same bits however the matrix was cut.
/// </summary>
internal sealed class GpuTrainingRows : IDisposable
{
    private readonly GpuKernels _kernels;
    private readonly float[] _features;
    private readonly int _featureCount;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _block;

    public GpuTrainingRows(GpuKernels kernels, AcceleratorStream stream, float[] features, int featureCount, int rowsPerPass)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(featureCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rowsPerPass);
        _kernels = kernels;
        _features = features;
        _featureCount = featureCount;
        Count = features.Length / featureCount;
        RowsPerPass = Math.Min(rowsPerPass, Math.Max(1, Count));

        // ILGPU refuses zero-length buffers; one element stands in for an empty training set.
        _block = kernels.Accelerator.Allocate1D<float>(Math.Max(1L, (long)RowsPerPass * featureCount));
        if (Resident && features.Length > 0)
        {
            _block.View.SubView(0, features.Length).CopyFromCPU(stream, features);
        }
    }

    public int Count { get; }

    /// <summary>Training rows on the device at once.</summary>
    public int RowsPerPass { get; }

    /// <summary>Whether the whole matrix stays on the device (uploaded once) or streams block by block per batch.</summary>
    public bool Resident => RowsPerPass >= Count;

    /// <summary>Blocks the matrix streams in per batch of test rows (1 when resident).</summary>
    public int Passes => Count == 0 ? 0 : (Count + RowsPerPass - 1) / RowsPerPass;

    /// <summary>
    /// The default block: the whole matrix when it takes at most a quarter of the device's memory (the keys and
    /// values per test point need the rest), else as many rows as a quarter holds.
    /// </summary>
    public static int DefaultRowsPerPass(Accelerator accelerator, int featureCount, int count)
    {
        var quarter = accelerator.MemorySize / 4;
        var rows = quarter / Math.Max(1, 4L * featureCount);
        return (int)Math.Clamp(rows, 1, Math.Max(1, count));
    }

    /// <summary>keys[t * Count + i] for every training row i and each of the <paramref name="testCount"/> rows in <paramref name="tests"/>.</summary>
    public void ComputeKeys(AcceleratorStream stream, ArrayView<float> tests, int testCount, ArrayView<ulong> keys)
    {
        for (var offset = 0; offset < Count; offset += RowsPerPass)
        {
            var rows = Math.Min(RowsPerPass, Count - offset);
            var block = _block.View.SubView(0, (long)rows * _featureCount);
            if (!Resident)
            {
                // The copy waits for the previous block's kernel on the same stream before it overwrites the buffer.
                block.CopyFromCPU(stream, _features.AsSpan(offset * _featureCount, rows * _featureCount));
            }

            _kernels.DistanceKeys(stream, new Index2D(rows, testCount), block, tests, _featureCount, offset, Count, keys);
        }
    }

    public void Dispose() => _block.Dispose();
}
