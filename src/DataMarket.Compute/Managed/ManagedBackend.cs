using System.Numerics.Tensors;

namespace DataMarket.Compute.Managed;

/// <summary>Pure C# backend; always available.</summary>
public sealed unsafe class ManagedBackend : ComputeBackend
{
    private readonly SgemmKernel _kernel;
    private readonly int _maxThreads;

    public ManagedBackend() : this(ManagedSgemm.BestKernel, Environment.ProcessorCount)
    {
    }

    /// <summary>A backend whose products use at most <paramref name="maxThreads"/> threads; results do not depend on it.</summary>
    public ManagedBackend(int maxThreads) : this(ManagedSgemm.BestKernel, maxThreads)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxThreads);
    }

    internal ManagedBackend(SgemmKernel kernel, int maxThreads)
    {
        _kernel = kernel;
        _maxThreads = maxThreads;
    }

    public override string Name => "managed";

    /// <summary>The SIMD kernel in use, for logs: "Vector512", "Vector256" or "Scalar".</summary>
    public string KernelName => _kernel.ToString();

    public override void Gemm(Transpose transposeA, Transpose transposeB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int leadingDimensionA, ReadOnlySpan<float> b, int leadingDimensionB,
        float beta, Span<float> c, int leadingDimensionC)
    {
        ValidateGemm(transposeA, transposeB, m, n, k, a, leadingDimensionA, b, leadingDimensionB, c, leadingDimensionC);
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            ManagedSgemm.Gemm(_kernel, _maxThreads, transposeA, transposeB, m, n, k, alpha,
                pa, leadingDimensionA, pb, leadingDimensionB, beta, pc, leadingDimensionC);
        }
    }

    /// <summary>
    /// Double GEMM serves float64 gradient checks and small solves, not throughput: a row-oriented loop
    /// on TensorPrimitives, with transposed operands read through strided access.
    /// </summary>
    public override void Gemm(Transpose transposeA, Transpose transposeB, int m, int n, int k,
        double alpha, ReadOnlySpan<double> a, int leadingDimensionA, ReadOnlySpan<double> b, int leadingDimensionB,
        double beta, Span<double> c, int leadingDimensionC)
    {
        ValidateGemm(transposeA, transposeB, m, n, k, a, leadingDimensionA, b, leadingDimensionB, c, leadingDimensionC);
        if (m == 0 || n == 0)
        {
            return;
        }
        for (int i = 0; i < m; i++)
        {
            var row = c.Slice(i * leadingDimensionC, n);
            if (beta == 0)
            {
                row.Clear();
            }
            else if (beta != 1)
            {
                TensorPrimitives.Multiply(row, beta, row);
            }
        }
        if (k == 0 || alpha == 0)
        {
            return;
        }
        if (transposeB == Transpose.None)
        {
            for (int i = 0; i < m; i++)
            {
                var row = c.Slice(i * leadingDimensionC, n);
                for (int p = 0; p < k; p++)
                {
                    double aip = alpha * (transposeA == Transpose.None ? a[i * leadingDimensionA + p] : a[p * leadingDimensionA + i]);
                    if (aip != 0)
                    {
                        TensorPrimitives.MultiplyAdd(b.Slice(p * leadingDimensionB, n), aip, row, row);
                    }
                }
            }
        }
        else
        {
            var aRow = new double[k];
            for (int i = 0; i < m; i++)
            {
                for (int p = 0; p < k; p++)
                {
                    aRow[p] = transposeA == Transpose.None ? a[i * leadingDimensionA + p] : a[p * leadingDimensionA + i];
                }
                for (int j = 0; j < n; j++)
                {
                    c[i * leadingDimensionC + j] += alpha * TensorPrimitives.Dot(aRow, b.Slice(j * leadingDimensionB, k));
                }
            }
        }
    }

    public override void CholeskyFactor(Span<double> matrix, int n) => DenseLinearAlgebra.CholeskyFactor(matrix, n);

    public override void CholeskySolve(ReadOnlySpan<double> factor, int n, Span<double> rightHandSides, int rightHandSideCount) =>
        DenseLinearAlgebra.CholeskySolve(factor, n, rightHandSides, rightHandSideCount);

    public override void SymmetricEigen(ReadOnlySpan<double> matrix, int n, Span<double> eigenvalues, Span<double> eigenvectors) =>
        DenseLinearAlgebra.JacobiEigen(matrix, n, eigenvalues, eigenvectors);
}
