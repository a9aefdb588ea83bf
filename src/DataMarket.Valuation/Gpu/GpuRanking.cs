using ILGPU;
using ILGPU.Runtime;

namespace DataMarket.Valuation.Gpu;

/// <summary>
/// One training matrix on the device (resident, or streamed in blocks, see <see cref="GpuTrainingRows"/>), ranked against blocks of test rows: distance keys for the whole block
/// in one launch, one radix sort of (distance bits, index) keys per test row, and the orders copied back. Gives
/// exactly the order <see cref="Shapley.DistanceRanking"/> gives on the CPU. Callers on several threads share one
/// ranking; calls are serialised because they share the device buffers.
/// </summary>
internal sealed class GpuRanking : IDisposable
{
    private readonly GpuKernels _kernels;
    private readonly GpuTrainingRows _train;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _tests;
    private readonly MemoryBuffer1D<ulong, Stride1D.Dense> _keys;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _orders;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _sortTemp;
    private readonly AcceleratorStream _stream;
    private readonly Lock _lock = new();
    private readonly int _featureCount;
    private readonly int _maxBlock;

    public GpuRanking(GpuKernels kernels, float[] features, int featureCount, int maxBlock, int rowsPerPass)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(featureCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBlock);
        _kernels = kernels;
        _featureCount = featureCount;
        _maxBlock = maxBlock;
        TrainCount = features.Length / featureCount;
        var accelerator = kernels.Accelerator;
        _stream = accelerator.CreateStream();
        _train = new GpuTrainingRows(kernels, _stream, features, featureCount, rowsPerPass);

        // ILGPU refuses zero-length buffers; one element stands in for an empty training set.
        var keyCount = Math.Max(1L, (long)TrainCount * maxBlock);
        _tests = accelerator.Allocate1D<float>((long)maxBlock * featureCount);
        _keys = accelerator.Allocate1D<ulong>(keyCount);
        _orders = accelerator.Allocate1D<int>(keyCount);
        _sortTemp = accelerator.Allocate1D<int>(kernels.SortTempLength(Math.Max(1, TrainCount)));
    }

    public int TrainCount { get; }

    /// <summary>Writes into <c>orders[t]</c> the training indices in (distance, index) order for each test row t.</summary>
    public void RankBlock(ReadOnlySpan<float> testRows, int[][] orders)
    {
        var testCount = testRows.Length / _featureCount;
        if (testCount > _maxBlock)
        {
            throw new ArgumentException($"a block holds at most {_maxBlock} test rows, got {testCount}", nameof(testRows));
        }

        var n = TrainCount;
        if (n == 0 || testCount == 0)
        {
            return;
        }

        lock (_lock)
        {
            var tests = _tests.View.SubView(0, (long)testCount * _featureCount);
            tests.CopyFromCPU(_stream, testRows);
            var keys = _keys.View.SubView(0, (long)testCount * n);
            _train.ComputeKeys(_stream, tests, testCount, keys);
            for (var t = 0; t < testCount; t++)
            {
                _kernels.SortKeys(_stream, keys.SubView((long)t * n, n), _sortTemp.View);
            }

            var ranked = _orders.View.SubView(0, (long)testCount * n);
            _kernels.ExtractOrder(_stream, (int)ranked.Length, keys, ranked);
            for (var t = 0; t < testCount; t++)
            {
                ranked.SubView((long)t * n, n).CopyToCPU(_stream, orders[t]);
            }

            _stream.Synchronize();
        }
    }

    public void Dispose()
    {
        _stream.Dispose();
        _train.Dispose();
        _tests.Dispose();
        _keys.Dispose();
        _orders.Dispose();
        _sortTemp.Dispose();
    }
}
