using DataMarket.Compute.Interop;

namespace DataMarket.Compute.OpenBlas;

/// <summary>GEMM through cblas and factorisations through LAPACK from the system OpenBLAS.</summary>
public sealed unsafe class OpenBlasBackend : ComputeBackend
{
    // Products are cut into tiles of C of at most this many rows (or, for short wide products, columns). The cut
    // depends only on the shapes, and each tile is one single-threaded OpenBLAS call, so the bits of C never
    // depend on how many threads ran the tiles or what else the process was doing.
    private const int TileRows = 128;
    private const int TileColumns = 512;

    // Below this many multiply-adds per tile a second thread costs more than it saves.
    private const long ParallelMultiplyAdds = 1L << 21;

    private readonly int _maxThreads;

    private OpenBlasBackend(string library, int maxThreads)
    {
        Library = library;
        _maxThreads = maxThreads;
    }

    public override string Name => "openblas";

    /// <summary>Which library file was loaded and how it was built, for logs.</summary>
    public string Library { get; }

    /// <summary>Loads OpenBLAS; returns null with the reason when it is not installed.</summary>
    /// <param name="detail">The library loaded, or why none could be.</param>
    /// <param name="maxThreads">How many threads may run tiles of one product at once (0: one per core); results do not depend on it.</param>
    public static OpenBlasBackend? TryCreate(out string detail, int maxThreads = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxThreads);
        return OpenBlasNative.TryLoad(out detail)
            ? new OpenBlasBackend(detail, maxThreads == 0 ? Environment.ProcessorCount : maxThreads)
            : null;
    }

    public static bool IsAvailable => OpenBlasNative.TryLoad(out _);

    public override void Gemm(Transpose transposeA, Transpose transposeB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int leadingDimensionA, ReadOnlySpan<float> b, int leadingDimensionB,
        float beta, Span<float> c, int leadingDimensionC)
    {
        ValidateGemm(transposeA, transposeB, m, n, k, a, leadingDimensionA, b, leadingDimensionB, c, leadingDimensionC);
        if (m == 0 || n == 0)
        {
            return;
        }
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            var (ta, tb) = (Code(transposeA), Code(transposeB));
            var (aPointer, bPointer, cPointer) = ((nint)pa, (nint)pb, (nint)pc);
            int lda = leadingDimensionA, ldb = leadingDimensionB, ldc = leadingDimensionC;
            // cblas checks lda >= max(1, k) even when k = 0, which our validation already guarantees.
            RunTiles(new Tiling(transposeA, transposeB, m, n, k, lda, ldb, ldc), (tile, aOffset, bOffset, cOffset) =>
                OpenBlasNative.cblas_sgemm(OpenBlasNative.CblasRowMajor, ta, tb, tile.Rows, tile.Columns, k, alpha,
                    (float*)aPointer + aOffset, lda, (float*)bPointer + bOffset, ldb, beta, (float*)cPointer + cOffset, ldc));
        }
    }

    public override void Gemm(Transpose transposeA, Transpose transposeB, int m, int n, int k,
        double alpha, ReadOnlySpan<double> a, int leadingDimensionA, ReadOnlySpan<double> b, int leadingDimensionB,
        double beta, Span<double> c, int leadingDimensionC)
    {
        ValidateGemm(transposeA, transposeB, m, n, k, a, leadingDimensionA, b, leadingDimensionB, c, leadingDimensionC);
        if (m == 0 || n == 0)
        {
            return;
        }
        fixed (double* pa = a)
        fixed (double* pb = b)
        fixed (double* pc = c)
        {
            var (ta, tb) = (Code(transposeA), Code(transposeB));
            var (aPointer, bPointer, cPointer) = ((nint)pa, (nint)pb, (nint)pc);
            int lda = leadingDimensionA, ldb = leadingDimensionB, ldc = leadingDimensionC;
            RunTiles(new Tiling(transposeA, transposeB, m, n, k, lda, ldb, ldc), (tile, aOffset, bOffset, cOffset) =>
                OpenBlasNative.cblas_dgemm(OpenBlasNative.CblasRowMajor, ta, tb, tile.Rows, tile.Columns, k, alpha,
                    (double*)aPointer + aOffset, lda, (double*)bPointer + bOffset, ldb, beta, (double*)cPointer + cOffset, ldc));
        }
    }

    /// <summary>A rows x columns block of C starting at (Row, Column).</summary>
    internal readonly record struct Tile(int Row, int Column, int Rows, int Columns);

    /// <summary>How one product is cut into tiles of C, and where each tile's operands start (in elements).</summary>
    internal readonly record struct Tiling(Transpose TransposeA, Transpose TransposeB, int M, int N, int K, int Lda, int Ldb, int Ldc)
    {
        public bool ByRows => M > TileRows || N <= TileColumns;

        public int Count => ByRows ? (M + TileRows - 1) / TileRows : (N + TileColumns - 1) / TileColumns;

        public Tile this[int index] => ByRows
            ? new Tile(index * TileRows, 0, Math.Min(TileRows, M - (index * TileRows)), N)
            : new Tile(0, index * TileColumns, M, Math.Min(TileColumns, N - (index * TileColumns)));

        public long AOffset(Tile tile) => TransposeA == Transpose.None ? (long)tile.Row * Lda : tile.Row;

        public long BOffset(Tile tile) => TransposeB == Transpose.None ? tile.Column : (long)tile.Column * Ldb;

        public long COffset(Tile tile) => ((long)tile.Row * Ldc) + tile.Column;
    }

    private void RunTiles(Tiling tiling, Action<Tile, long, long, long> multiply)
    {
        void Run(int index)
        {
            var tile = tiling[index];
            multiply(tile, tiling.AOffset(tile), tiling.BOffset(tile), tiling.COffset(tile));
        }

        var tileWork = (long)Math.Min(tiling.M, TileRows) * Math.Min(tiling.N, TileColumns) * tiling.K;
        if (_maxThreads == 1 || tiling.Count == 1 || tileWork < ParallelMultiplyAdds)
        {
            for (var index = 0; index < tiling.Count; index++)
            {
                Run(index);
            }
        }
        else
        {
            Parallel.For(0, tiling.Count, new ParallelOptions { MaxDegreeOfParallelism = _maxThreads }, Run);
        }
    }

    private static int Code(Transpose transpose) => transpose == Transpose.None ? OpenBlasNative.CblasNoTrans : OpenBlasNative.CblasTrans;

    // A row-major lower factor is a column-major upper factor of the same (symmetric) matrix, so
    // LAPACK is called with uplo = 'U' on the row-major buffer.
    public override void CholeskyFactor(Span<double> matrix, int n)
    {
        Managed.DenseLinearAlgebra.CheckSquare(matrix.Length, n, nameof(matrix));
        if (n == 0)
        {
            return;
        }
        fixed (double* pa = matrix)
        {
            OpenBlasNative.Dpotrf((byte)'U', n, pa, n);
        }
        for (int i = 0; i < n; i++)
        {
            matrix.Slice(i * n + i + 1, n - i - 1).Clear(); // LAPACK leaves the other triangle untouched
        }
    }

    public override void CholeskySolve(ReadOnlySpan<double> factor, int n, Span<double> rightHandSides, int rightHandSideCount)
    {
        Managed.DenseLinearAlgebra.CheckSquare(factor.Length, n, nameof(factor));
        ArgumentOutOfRangeException.ThrowIfNegative(rightHandSideCount);
        if (rightHandSides.Length < (long)n * rightHandSideCount)
        {
            throw new ArgumentException($"Right-hand sides need {n * rightHandSideCount} elements.", nameof(rightHandSides));
        }
        if (n == 0 || rightHandSideCount == 0)
        {
            return;
        }
        // LAPACK wants B column-major; a row-major n x r block is its transpose, so transpose through a buffer.
        var columnMajor = new double[n * rightHandSideCount];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < rightHandSideCount; j++)
            {
                columnMajor[j * n + i] = rightHandSides[i * rightHandSideCount + j];
            }
        }
        fixed (double* pa = factor)
        fixed (double* pb = columnMajor)
        {
            OpenBlasNative.Dpotrs((byte)'U', n, rightHandSideCount, pa, n, pb, n);
        }
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < rightHandSideCount; j++)
            {
                rightHandSides[i * rightHandSideCount + j] = columnMajor[j * n + i];
            }
        }
    }

    public override void SymmetricEigen(ReadOnlySpan<double> matrix, int n, Span<double> eigenvalues, Span<double> eigenvectors)
    {
        Managed.DenseLinearAlgebra.CheckSquare(matrix.Length, n, nameof(matrix));
        Managed.DenseLinearAlgebra.CheckSquare(eigenvectors.Length, n, nameof(eigenvectors));
        if (eigenvalues.Length < n)
        {
            throw new ArgumentException($"Eigenvalues need {n} elements.", nameof(eigenvalues));
        }
        if (n == 0)
        {
            return;
        }
        var work = matrix[..(n * n)].ToArray(); // symmetric, so row- and column-major agree on input
        fixed (double* pa = work)
        fixed (double* pw = eigenvalues)
        {
            OpenBlasNative.Dsyevd((byte)'V', (byte)'U', n, pa, n, pw);
        }
        // Column-major output: eigenvector j is work[j*n .. j*n+n]; store it as column j of the row-major result.
        for (int j = 0; j < n; j++)
        {
            for (int r = 0; r < n; r++)
            {
                eigenvectors[r * n + j] = work[j * n + r];
            }
        }
    }
}
