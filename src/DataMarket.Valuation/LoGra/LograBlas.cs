using System.Numerics;
using System.Runtime.InteropServices;
using DataMarket.Compute;

namespace DataMarket.Valuation.LoGra;

/// <summary>Routes GEMM for an element type to the backend's float or double routine (models run in either).</summary>
internal static class LograBlas
{
    public static void Gemm<T>(ComputeBackend backend, Transpose transposeA, Transpose transposeB, int m, int n, int k,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, double beta, Span<T> c, int ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (m == 0 || n == 0)
        {
            return;
        }

        if (typeof(T) == typeof(float))
        {
            backend.Gemm(transposeA, transposeB, m, n, k, 1f, MemoryMarshal.Cast<T, float>(a), lda,
                MemoryMarshal.Cast<T, float>(b), ldb, (float)beta, MemoryMarshal.Cast<T, float>(c), ldc);
        }
        else if (typeof(T) == typeof(double))
        {
            backend.Gemm(transposeA, transposeB, m, n, k, 1.0, MemoryMarshal.Cast<T, double>(a), lda,
                MemoryMarshal.Cast<T, double>(b), ldb, beta, MemoryMarshal.Cast<T, double>(c), ldc);
        }
        else
        {
            throw new NotSupportedException($"LoGra supports float and double models, not {typeof(T).Name}.");
        }
    }
}
