using DataMarket.Compute.Interop;

namespace DataMarket.Compute.OpenBlas;

/// <summary>GEMM through cblas and factorisations through LAPACK from the system OpenBLAS.</summary>
public sealed unsafe class OpenBlasBackend : ComputeBackend
{
    private OpenBlasBackend(string library)
    {
        Library = library;
    }

    public override string Name => "openblas";

    /// <summary>Which library file was loaded and how it was built, for logs.</summary>
    public string Library { get; }

    /// <summary>Loads OpenBLAS; returns null with the reason when it is not installed.</summary>
    public static OpenBlasBackend? TryCreate(out string detail) =>
        OpenBlasNative.TryLoad(out detail) ? new OpenBlasBackend(detail) : null;

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
            // cblas checks lda >= max(1, k) even when k = 0, which our validation already guarantees.
            OpenBlasNative.cblas_sgemm(OpenBlasNative.CblasRowMajor, Code(transposeA), Code(transposeB), m, n, k,
                alpha, pa, leadingDimensionA, pb, leadingDimensionB, beta, pc, leadingDimensionC);
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
            OpenBlasNative.cblas_dgemm(OpenBlasNative.CblasRowMajor, Code(transposeA), Code(transposeB), m, n, k,
                alpha, pa, leadingDimensionA, pb, leadingDimensionB, beta, pc, leadingDimensionC);
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
