using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DataMarket.Compute.Managed;

// Generated register-tile kernels (one accumulator pair per row of the tile). They are written out
// rather than looped so that the JIT keeps every accumulator in a register.
internal static unsafe class SgemmKernels
{
    /// <summary>12x32 register tile: C[0..12, 0..32] += alpha * packedA * packedB over kc steps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel512(int kc, float* packedA, float* packedB, float* c, nint ldc, float alpha)
    {
        Vector512<float> c00 = default, c01 = default;
        Vector512<float> c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default;
        Vector512<float> c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default;
        Vector512<float> c70 = default, c71 = default;
        Vector512<float> c80 = default, c81 = default;
        Vector512<float> c90 = default, c91 = default;
        Vector512<float> c100 = default, c101 = default;
        Vector512<float> c110 = default, c111 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(packedB);
            Vector512<float> b1 = Vector512.Load(packedB + 16);
            Vector512<float> a0 = Vector512.Create(packedA[0]);
            c00 = Vector512.FusedMultiplyAdd(a0, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
            Vector512<float> a1 = Vector512.Create(packedA[1]);
            c10 = Vector512.FusedMultiplyAdd(a1, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
            Vector512<float> a2 = Vector512.Create(packedA[2]);
            c20 = Vector512.FusedMultiplyAdd(a2, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
            Vector512<float> a3 = Vector512.Create(packedA[3]);
            c30 = Vector512.FusedMultiplyAdd(a3, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
            Vector512<float> a4 = Vector512.Create(packedA[4]);
            c40 = Vector512.FusedMultiplyAdd(a4, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(a4, b1, c41);
            Vector512<float> a5 = Vector512.Create(packedA[5]);
            c50 = Vector512.FusedMultiplyAdd(a5, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(a5, b1, c51);
            Vector512<float> a6 = Vector512.Create(packedA[6]);
            c60 = Vector512.FusedMultiplyAdd(a6, b0, c60);
            c61 = Vector512.FusedMultiplyAdd(a6, b1, c61);
            Vector512<float> a7 = Vector512.Create(packedA[7]);
            c70 = Vector512.FusedMultiplyAdd(a7, b0, c70);
            c71 = Vector512.FusedMultiplyAdd(a7, b1, c71);
            Vector512<float> a8 = Vector512.Create(packedA[8]);
            c80 = Vector512.FusedMultiplyAdd(a8, b0, c80);
            c81 = Vector512.FusedMultiplyAdd(a8, b1, c81);
            Vector512<float> a9 = Vector512.Create(packedA[9]);
            c90 = Vector512.FusedMultiplyAdd(a9, b0, c90);
            c91 = Vector512.FusedMultiplyAdd(a9, b1, c91);
            Vector512<float> a10 = Vector512.Create(packedA[10]);
            c100 = Vector512.FusedMultiplyAdd(a10, b0, c100);
            c101 = Vector512.FusedMultiplyAdd(a10, b1, c101);
            Vector512<float> a11 = Vector512.Create(packedA[11]);
            c110 = Vector512.FusedMultiplyAdd(a11, b0, c110);
            c111 = Vector512.FusedMultiplyAdd(a11, b1, c111);
            packedA += 12;
            packedB += 32;
        }
        Vector512<float> scale = Vector512.Create(alpha);
        float* row = c;
        Vector512.Store(Vector512.FusedMultiplyAdd(c00, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c01, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c10, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c11, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c20, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c21, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c30, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c31, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c40, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c41, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c50, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c51, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c60, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c61, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c70, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c71, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c80, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c81, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c90, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c91, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c100, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c101, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c110, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c111, scale, Vector512.Load(row + 16)), row + 16);
    }

    /// <summary>8x32 register tile: C[0..8, 0..32] += alpha * packedA * packedB over kc steps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel512Rows8(int kc, float* packedA, float* packedB, float* c, nint ldc, float alpha)
    {
        Vector512<float> c00 = default, c01 = default;
        Vector512<float> c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default;
        Vector512<float> c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default;
        Vector512<float> c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(packedB);
            Vector512<float> b1 = Vector512.Load(packedB + 16);
            Vector512<float> a0 = Vector512.Create(packedA[0]);
            c00 = Vector512.FusedMultiplyAdd(a0, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
            Vector512<float> a1 = Vector512.Create(packedA[1]);
            c10 = Vector512.FusedMultiplyAdd(a1, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
            Vector512<float> a2 = Vector512.Create(packedA[2]);
            c20 = Vector512.FusedMultiplyAdd(a2, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
            Vector512<float> a3 = Vector512.Create(packedA[3]);
            c30 = Vector512.FusedMultiplyAdd(a3, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
            Vector512<float> a4 = Vector512.Create(packedA[4]);
            c40 = Vector512.FusedMultiplyAdd(a4, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(a4, b1, c41);
            Vector512<float> a5 = Vector512.Create(packedA[5]);
            c50 = Vector512.FusedMultiplyAdd(a5, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(a5, b1, c51);
            Vector512<float> a6 = Vector512.Create(packedA[6]);
            c60 = Vector512.FusedMultiplyAdd(a6, b0, c60);
            c61 = Vector512.FusedMultiplyAdd(a6, b1, c61);
            Vector512<float> a7 = Vector512.Create(packedA[7]);
            c70 = Vector512.FusedMultiplyAdd(a7, b0, c70);
            c71 = Vector512.FusedMultiplyAdd(a7, b1, c71);
            packedA += 8;
            packedB += 32;
        }
        Vector512<float> scale = Vector512.Create(alpha);
        float* row = c;
        Vector512.Store(Vector512.FusedMultiplyAdd(c00, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c01, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c10, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c11, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c20, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c21, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c30, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c31, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c40, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c41, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c50, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c51, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c60, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c61, scale, Vector512.Load(row + 16)), row + 16);
        row += ldc;
        Vector512.Store(Vector512.FusedMultiplyAdd(c70, scale, Vector512.Load(row)), row);
        Vector512.Store(Vector512.FusedMultiplyAdd(c71, scale, Vector512.Load(row + 16)), row + 16);
    }

    /// <summary>6x16 register tile: C[0..6, 0..16] += alpha * packedA * packedB over kc steps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel256(int kc, float* packedA, float* packedB, float* c, nint ldc, float alpha)
    {
        Vector256<float> c00 = default, c01 = default;
        Vector256<float> c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default;
        Vector256<float> c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(packedB);
            Vector256<float> b1 = Vector256.Load(packedB + 8);
            Vector256<float> a0 = Vector256.Create(packedA[0]);
            c00 = Vector256.FusedMultiplyAdd(a0, b0, c00);
            c01 = Vector256.FusedMultiplyAdd(a0, b1, c01);
            Vector256<float> a1 = Vector256.Create(packedA[1]);
            c10 = Vector256.FusedMultiplyAdd(a1, b0, c10);
            c11 = Vector256.FusedMultiplyAdd(a1, b1, c11);
            Vector256<float> a2 = Vector256.Create(packedA[2]);
            c20 = Vector256.FusedMultiplyAdd(a2, b0, c20);
            c21 = Vector256.FusedMultiplyAdd(a2, b1, c21);
            Vector256<float> a3 = Vector256.Create(packedA[3]);
            c30 = Vector256.FusedMultiplyAdd(a3, b0, c30);
            c31 = Vector256.FusedMultiplyAdd(a3, b1, c31);
            Vector256<float> a4 = Vector256.Create(packedA[4]);
            c40 = Vector256.FusedMultiplyAdd(a4, b0, c40);
            c41 = Vector256.FusedMultiplyAdd(a4, b1, c41);
            Vector256<float> a5 = Vector256.Create(packedA[5]);
            c50 = Vector256.FusedMultiplyAdd(a5, b0, c50);
            c51 = Vector256.FusedMultiplyAdd(a5, b1, c51);
            packedA += 6;
            packedB += 16;
        }
        Vector256<float> scale = Vector256.Create(alpha);
        float* row = c;
        Vector256.Store(Vector256.FusedMultiplyAdd(c00, scale, Vector256.Load(row)), row);
        Vector256.Store(Vector256.FusedMultiplyAdd(c01, scale, Vector256.Load(row + 8)), row + 8);
        row += ldc;
        Vector256.Store(Vector256.FusedMultiplyAdd(c10, scale, Vector256.Load(row)), row);
        Vector256.Store(Vector256.FusedMultiplyAdd(c11, scale, Vector256.Load(row + 8)), row + 8);
        row += ldc;
        Vector256.Store(Vector256.FusedMultiplyAdd(c20, scale, Vector256.Load(row)), row);
        Vector256.Store(Vector256.FusedMultiplyAdd(c21, scale, Vector256.Load(row + 8)), row + 8);
        row += ldc;
        Vector256.Store(Vector256.FusedMultiplyAdd(c30, scale, Vector256.Load(row)), row);
        Vector256.Store(Vector256.FusedMultiplyAdd(c31, scale, Vector256.Load(row + 8)), row + 8);
        row += ldc;
        Vector256.Store(Vector256.FusedMultiplyAdd(c40, scale, Vector256.Load(row)), row);
        Vector256.Store(Vector256.FusedMultiplyAdd(c41, scale, Vector256.Load(row + 8)), row + 8);
        row += ldc;
        Vector256.Store(Vector256.FusedMultiplyAdd(c50, scale, Vector256.Load(row)), row);
        Vector256.Store(Vector256.FusedMultiplyAdd(c51, scale, Vector256.Load(row + 8)), row + 8);
    }
}
