using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace DataMarket.Valuation.Gpu;

/// <summary>
/// The GEMM seam of influence scoring: scores = queries x rows^T in float32, the queries (for LoGra, the
/// preconditioned test gradients, computed on the CPU) fixed, the rows (the gradient store) given chunk by chunk.
/// Knows nothing of LoGra beyond the two row-major matrices.
/// </summary>
public interface IScoringGemm : IDisposable
{
    int QueryCount { get; }

    int Dimension { get; }

    /// <summary>What multiplies, for one log line: "cuBLAS (path)" or "tiled ILGPU kernel (why not cuBLAS)".</summary>
    string Engine { get; }

    /// <summary>
    /// Scores one chunk of <paramref name="rowCount"/> rows (row-major, <see cref="Dimension"/> each) against every
    /// query into <paramref name="scores"/>, row-major <see cref="QueryCount"/> x <paramref name="rowCount"/>.
    /// </summary>
    void ScoreChunk(ReadOnlySpan<float> rows, int rowCount, Span<float> scores);
}

/// <summary>
/// <see cref="IScoringGemm"/> on the valuation device: queries resident, rows streamed through in chunks. On an
/// NVIDIA GPU it multiplies with cuBLAS where <see cref="CuBlasLibrary"/> finds it (CUDA 13 or 12), else with our own
/// shared-memory tiled kernel, which is also what ILGPU's CPU accelerator runs. One caller at a time.
/// </summary>
public sealed class GpuScoring : IScoringGemm
{
    private readonly GpuKernels _kernels;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _queries;
    private readonly AcceleratorStream _stream;
    private CuBlas? _cublas;
    private MemoryBuffer1D<float, Stride1D.Dense>? _rows;
    private MemoryBuffer1D<float, Stride1D.Dense>? _scores;

    /// <param name="device">A GPU or GPU-emulated device.</param>
    /// <param name="useCuBlas">False keeps the tiled kernel on a GPU too (the check program times both).</param>
    /// <param name="queries">Row-major <paramref name="queryCount"/> x <paramref name="dimension"/>.</param>
    public GpuScoring(ValuationDevice device, ReadOnlySpan<float> queries, int queryCount, int dimension, bool useCuBlas)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(queryCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dimension);
        if (queries.Length != (long)queryCount * dimension)
        {
            throw new ArgumentException($"queries hold {queries.Length} values, expected {queryCount} x {dimension}", nameof(queries));
        }

        if (device.Accelerator is null)
        {
            throw new ArgumentException("GPU scoring needs a gpu or gpu-emulated device", nameof(device));
        }

        _kernels = device.Kernels;
        _stream = device.Accelerator.CreateStream();
        QueryCount = queryCount;
        Dimension = dimension;
        _queries = device.Accelerator.Allocate1D<float>(queries.Length);
        _queries.View.CopyFromCPU(_stream, queries);
        Engine = "tiled ILGPU kernel (ILGPU's CPU accelerator)";
        if (device.Accelerator is CudaAccelerator cuda)
        {
            var reason = OpenCuBlas(cuda, useCuBlas);
            if (_cublas is null)
            {
                Engine = $"tiled ILGPU kernel ({reason})";
            }
        }
    }

    /// <summary>Scoring with cuBLAS where it is found on a GPU, else the tiled kernel.</summary>
    public GpuScoring(ValuationDevice device, ReadOnlySpan<float> queries, int queryCount, int dimension)
        : this(device, queries, queryCount, dimension, useCuBlas: true)
    {
    }

    /// <summary>
    /// Scoring on <paramref name="device"/> for float64 queries (row-major, <paramref name="queryCount"/> x
    /// <paramref name="dimension"/>), rounded to float32; null for no device or the CPU, which keep their own GEMM.
    /// </summary>
    public static GpuScoring? ForDevice(ValuationDevice? device, ReadOnlySpan<double> queries, int queryCount, int dimension)
    {
        if (device?.Accelerator is null || queryCount == 0)
        {
            return null;
        }

        var single = new float[queries.Length];
        System.Numerics.Tensors.TensorPrimitives.ConvertTruncating<double, float>(queries, single);
        return new GpuScoring(device, single, queryCount, dimension);
    }

    public int QueryCount { get; }

    public int Dimension { get; }

    public string Engine { get; private set; }

    /// <summary>True when cuBLAS multiplies.</summary>
    public bool UsesCuBlas => _cublas is not null;

    private string OpenCuBlas(CudaAccelerator cuda, bool useCuBlas)
    {
        if (!useCuBlas)
        {
            return "cuBLAS not asked for";
        }

        if (!CuBlasLibrary.InstallResolver(out var detail))
        {
            return detail;
        }

        try
        {
            _cublas = new CuBlas(cuda) { Stream = (CudaStream)_stream };
            Engine = $"cuBLAS ({detail})";
            return Engine;
        }
        catch (Exception exception) when (exception is DllNotFoundException or EntryPointNotFoundException or CuBlasException or NotSupportedException or InvalidOperationException)
        {
            return $"{detail}, but it did not open: {exception.GetType().Name}: {exception.Message}";
        }
    }

    public void ScoreChunk(ReadOnlySpan<float> rows, int rowCount, Span<float> scores)
    {
        if (rows.Length != (long)rowCount * Dimension)
        {
            throw new ArgumentException($"rows hold {rows.Length} values, expected {rowCount} x {Dimension}", nameof(rows));
        }

        if (scores.Length != (long)QueryCount * rowCount)
        {
            throw new ArgumentException($"scores hold {scores.Length} values, expected {QueryCount} x {rowCount}", nameof(scores));
        }

        if (rowCount == 0)
        {
            return;
        }

        var rowView = Reserve(ref _rows, rows.Length);
        var scoreView = Reserve(ref _scores, scores.Length);
        rowView.CopyFromCPU(_stream, rows);
        Multiply(rowView, scoreView, rowCount);
        scoreView.CopyToCPU(_stream, scores);
        _stream.Synchronize();
    }

    /// <summary>
    /// <see cref="ScoreChunk(ReadOnlySpan{float}, int, Span{float})"/> for float64 rows (rounded to float32 for the
    /// device) into float64 scores: the form LoGra's scorer reads its store in.
    /// </summary>
    public void ScoreChunk(ReadOnlySpan<double> rows, int rowCount, Span<double> scores)
    {
        var single = new float[rows.Length];
        System.Numerics.Tensors.TensorPrimitives.ConvertTruncating<double, float>(rows, single);
        var result = new float[scores.Length];
        ScoreChunk(single, rowCount, result);
        System.Numerics.Tensors.TensorPrimitives.ConvertChecked<float, double>(result, scores);
    }

    /// <summary>
    /// Multiplies <paramref name="repetitions"/> times against <paramref name="rowCount"/> device-resident rows and
    /// returns the seconds the device took: the GEMM rate that streamed scoring is measured against.
    /// </summary>
    public double TimeResidentMultiply(ReadOnlySpan<float> rows, int rowCount, int repetitions)
    {
        var rowView = Reserve(ref _rows, rows.Length);
        var scoreView = Reserve(ref _scores, (long)QueryCount * rowCount);
        rowView.CopyFromCPU(_stream, rows);
        Multiply(rowView, scoreView, rowCount);
        _stream.Synchronize();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (var r = 0; r < repetitions; r++)
        {
            Multiply(rowView, scoreView, rowCount);
        }

        _stream.Synchronize();
        return watch.Elapsed.TotalSeconds;
    }

    private void Multiply(ArrayView<float> rows, ArrayView<float> scores, int rowCount)
    {
        if (_cublas is not null)
        {
            // cuBLAS is column-major: the row-major scores (queries x rows) are the column-major rows x queries
            // matrix op(R) x Q with R stored d x rows (transposed) and Q stored d x queries.
            _cublas.Gemm(CuBlasOperation.Transpose, CuBlasOperation.NonTranspose, rowCount, QueryCount, Dimension,
                1f, rows, Dimension, _queries.View, Dimension, 0f, scores, rowCount);
            return;
        }

        // 16 x 16 on a GPU; ILGPU's CPU accelerator allows only 16 threads per group, so it gets 4 x 4.
        var tile = Math.Min(GpuGemm.MaxTile, (int)Math.Sqrt(_kernels.Accelerator.MaxNumThreadsPerGroup));
        var grid = new Index2D((rowCount + tile - 1) / tile, (QueryCount + tile - 1) / tile);
        var group = new Index2D(tile, tile);
        var config = new KernelConfig(grid, group, SharedMemoryConfig.RequestDynamic<float>(2 * tile * tile));
        _kernels.Gemm(_stream, config, _queries.View, rows, scores, QueryCount, rowCount, Dimension);
    }

    private ArrayView<float> Reserve(ref MemoryBuffer1D<float, Stride1D.Dense>? buffer, long length)
    {
        if (buffer is null || buffer.Length < length)
        {
            buffer?.Dispose();
            buffer = _kernels.Accelerator.Allocate1D<float>(length);
        }

        return buffer.View.SubView(0, length);
    }

    public void Dispose()
    {
        _cublas?.Dispose();
        _stream.Dispose();
        _queries.Dispose();
        _rows?.Dispose();
        _scores?.Dispose();
    }
}

/// <summary>The tiled float32 kernel behind <see cref="GpuScoring"/>.</summary>
internal static class GpuGemm
{
    public const int MaxTile = 16;

    /// <summary>
    /// c[q, r] = sum over k of a[q, k] * b[r, k], with a (m x dimension), b (n x dimension), c (m x n), all row-major.
    /// Each square group of Tile x Tile threads computes a Tile x Tile block of c, staging Tile-wide slices of a and b
    /// in dynamic shared memory (2 * Tile * Tile floats).
    /// </summary>
    public static void TiledKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, int m, int n, int dimension)
    {
        var tile = Group.DimX;
        var shared = SharedMemory.GetDynamic<float>();
        var aTile = shared.SubView(0, tile * tile);
        var bTile = shared.SubView(tile * tile, tile * tile);
        var x = Group.IdxX;
        var y = Group.IdxY;
        var row = (Grid.IdxY * tile) + y;
        var column = (Grid.IdxX * tile) + x;
        var bRow = (Grid.IdxX * tile) + y;
        var sum = 0f;
        for (var offset = 0; offset < dimension; offset += tile)
        {
            aTile[(y * tile) + x] = row < m && offset + x < dimension ? a[((long)row * dimension) + offset + x] : 0f;

            // bTile[k][j] holds b[block column j, offset + k], loaded so neighbouring threads read neighbouring floats.
            bTile[(x * tile) + y] = bRow < n && offset + x < dimension ? b[((long)bRow * dimension) + offset + x] : 0f;
            Group.Barrier();
            for (var k = 0; k < tile; k++)
            {
                sum += aTile[(y * tile) + k] * bTile[(k * tile) + x];
            }

            Group.Barrier();
        }

        if (row < m && column < n)
        {
            c[((long)row * n) + column] = sum;
        }
    }
}
