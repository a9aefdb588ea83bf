using System.Numerics;
using System.Runtime.InteropServices;
using DataMarket.Compute;

namespace DataMarket.Learning;

/// <summary>
/// Routes GEMM for the layer element type to the backend's float or double routine, so the same layer
/// code runs in float32 for training and in float64 for finite-difference checks.
/// </summary>
internal static class Blas
{
    public static void Gemm<T>(ComputeBackend backend, Transpose transposeA, Transpose transposeB, int m, int n, int k,
        T alpha, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float))
        {
            backend.Gemm(transposeA, transposeB, m, n, k, float.CreateTruncating(alpha), MemoryMarshal.Cast<T, float>(a), lda,
                MemoryMarshal.Cast<T, float>(b), ldb, float.CreateTruncating(beta), MemoryMarshal.Cast<T, float>(c), ldc);
        }
        else if (typeof(T) == typeof(double))
        {
            backend.Gemm(transposeA, transposeB, m, n, k, double.CreateTruncating(alpha), MemoryMarshal.Cast<T, double>(a), lda,
                MemoryMarshal.Cast<T, double>(b), ldb, double.CreateTruncating(beta), MemoryMarshal.Cast<T, double>(c), ldc);
        }
        else
        {
            throw new NotSupportedException($"Layers support float and double, not {typeof(T).Name}.");
        }
    }
}
