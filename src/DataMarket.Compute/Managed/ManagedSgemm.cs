using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DataMarket.Compute.Managed;

/// <summary>Which register-tile kernel the managed GEMM runs; tests force each one the CPU supports.</summary>
internal enum SgemmKernel
{
    Scalar,
    Vector256,
    Vector512,
}

/// <summary>
/// Goto/BLIS-style GEMM: B is packed into kc x nr panels shared by all threads, each thread packs an
/// mc x kc block of A into mr-row panels, and a register-tile kernel multiplies panel pairs.
/// Packing absorbs the transposes and zero-pads edges, so the kernel only sees one layout.
/// </summary>
internal static unsafe class ManagedSgemm
{
    private const int DepthBlock = 256;        // kc: a kc x nr panel of B (32 KiB at nr=32) stays in L1
    private const int ColumnBlock = 4096;      // nc: the packed kc x nc block of B stays in L2/L3
    private const int RowPanelsPerBlock = 16;  // mc = 16 * mr rows of packed A stay in L2
    private const long SingleThreadFlops = 2L * 96 * 96 * 96;
    private const int ScalarTile = 4;

    [ThreadStatic]
    private static float[]? t_packedA;

    private static float[]? s_packedB;
    private static readonly Lock s_packedBLock = new();

    public static SgemmKernel BestKernel { get; } =
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? SgemmKernel.Vector512
        : Vector256.IsHardwareAccelerated && Fma.IsSupported ? SgemmKernel.Vector256
        : SgemmKernel.Scalar;

    private static (int Rows, int Columns) TileShape(SgemmKernel kernel) => kernel switch
    {
        SgemmKernel.Vector512 => (12, 32),
        SgemmKernel.Vector256 => (6, 16),
        _ => (ScalarTile, ScalarTile),
    };

    public static void Gemm(SgemmKernel kernel, int maxThreads, Transpose transposeA, Transpose transposeB,
        int m, int n, int k, float alpha, float* a, nint lda, float* b, nint ldb, float beta, float* c, nint ldc)
    {
        if (m == 0 || n == 0)
        {
            return;
        }
        ScaleOutput(m, n, beta, c, ldc);
        if (k == 0 || alpha == 0f)
        {
            return;
        }

        var (mr, nr) = TileShape(kernel);
        long flops = 2L * m * n * k;
        int threads = flops < SingleThreadFlops ? 1 : Math.Max(1, Math.Min(maxThreads, Environment.ProcessorCount));

        // Round the number of row blocks up to a multiple of the thread count so that threads finish together.
        int maxBlockRows = RowPanelsPerBlock * mr;
        int blocks = (m + maxBlockRows - 1) / maxBlockRows;
        blocks = (blocks + threads - 1) / threads * threads;
        int blockRows = RoundUp((m + blocks - 1) / blocks, mr);
        blocks = (m + blockRows - 1) / blockRows;

        // Shared packed B is reused between calls from one thread at a time; concurrent callers get their own.
        float[]? shared = null;
        bool ownsShared = s_packedBLock.TryEnter();
        try
        {
            int bLength = RoundUp(Math.Min(n, ColumnBlock), nr) * Math.Min(k, DepthBlock) + 16;
            float[] packedBArray;
            if (ownsShared)
            {
                if (s_packedB is null || s_packedB.Length < bLength)
                {
                    s_packedB = GC.AllocateUninitializedArray<float>(bLength, pinned: true);
                }
                packedBArray = s_packedB;
            }
            else
            {
                shared = GC.AllocateUninitializedArray<float>(bLength, pinned: true);
                packedBArray = shared;
            }
            float* packedB = Align((float*)Unsafe.AsPointer(ref packedBArray[0]));

            var job = new Job
            {
                Kernel = kernel, Mr = mr, Nr = nr, TransposeA = transposeA, M = m, Alpha = alpha,
                A = a, Lda = lda, C = c, Ldc = ldc, PackedB = packedB, BlockRows = blockRows,
            };
            for (int jc = 0; jc < n; jc += ColumnBlock)
            {
                int nc = Math.Min(ColumnBlock, n - jc);
                for (int pc = 0; pc < k; pc += DepthBlock)
                {
                    int kc = Math.Min(DepthBlock, k - pc);
                    PackB(transposeB, b, ldb, pc, kc, jc, nc, nr, packedB);
                    job.Jc = jc;
                    job.Nc = nc;
                    job.Pc = pc;
                    job.Kc = kc;
                    if (threads == 1 || blocks == 1)
                    {
                        for (int block = 0; block < blocks; block++)
                        {
                            RunBlock(in job, block);
                        }
                    }
                    else
                    {
                        var captured = job;
                        Parallel.For(0, blocks, new ParallelOptions { MaxDegreeOfParallelism = threads }, block => RunBlock(in captured, block));
                    }
                }
            }

            // The kernels read packed B through a raw pointer. A caller that lost the race for the shared buffer packs
            // into an array only this method refers to; without this the GC may free it (pinned or not) once the
            // pointer is taken, and the kernels then read freed memory: concurrent products crashed the process.
            GC.KeepAlive(packedBArray);
        }
        finally
        {
            if (ownsShared)
            {
                s_packedBLock.Exit();
            }
        }
    }

    private struct Job
    {
        public SgemmKernel Kernel;
        public int Mr, Nr, M, BlockRows, Jc, Nc, Pc, Kc;
        public Transpose TransposeA;
        public float Alpha;
        public float* A, C, PackedB;
        public nint Lda, Ldc;
    }

    private static void RunBlock(in Job job, int block)
    {
        int ic = block * job.BlockRows;
        int mc = Math.Min(job.BlockRows, job.M - ic);
        int aLength = RoundUp(job.BlockRows, job.Mr) * DepthBlock + 16;
        if (t_packedA is null || t_packedA.Length < aLength)
        {
            t_packedA = GC.AllocateUninitializedArray<float>(aLength, pinned: true);
        }
        float* packedA = Align((float*)Unsafe.AsPointer(ref t_packedA[0]));
        PackA(job.TransposeA, job.A, job.Lda, ic, mc, job.Pc, job.Kc, job.Mr, packedA);

        int mr = job.Mr, nr = job.Nr, kc = job.Kc;
        float* tile = stackalloc float[12 * 32];
        for (int jr = 0; jr < job.Nc; jr += nr)
        {
            int columns = Math.Min(nr, job.Nc - jr);
            float* panelB = job.PackedB + (nint)jr * kc;
            for (int ir = 0; ir < mc; ir += mr)
            {
                int rows = Math.Min(mr, mc - ir);
                float* panelA = packedA + (nint)ir * kc;
                float* cTile = job.C + (ic + ir) * job.Ldc + job.Jc + jr;
                if (rows == mr && columns == nr)
                {
                    RunKernel(job.Kernel, kc, panelA, panelB, cTile, job.Ldc, job.Alpha, mr, nr);
                }
                else
                {
                    // Edge tile: run the full kernel into a scratch tile, then add only the valid part.
                    new Span<float>(tile, mr * nr).Clear();
                    RunKernel(job.Kernel, kc, panelA, panelB, tile, nr, job.Alpha, mr, nr);
                    for (int r = 0; r < rows; r++)
                    {
                        var source = new ReadOnlySpan<float>(tile + r * nr, columns);
                        var destination = new Span<float>(cTile + r * job.Ldc, columns);
                        TensorPrimitives.Add(source, destination, destination);
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RunKernel(SgemmKernel kernel, int kc, float* a, float* b, float* c, nint ldc, float alpha, int mr, int nr)
    {
        switch (kernel)
        {
            case SgemmKernel.Vector512:
                SgemmKernels.Kernel512(kc, a, b, c, ldc, alpha);
                break;
            case SgemmKernel.Vector256:
                SgemmKernels.Kernel256(kc, a, b, c, ldc, alpha);
                break;
            default:
                ScalarKernel(kc, a, b, c, ldc, alpha, mr, nr);
                break;
        }
    }

    private static void ScalarKernel(int kc, float* a, float* b, float* c, nint ldc, float alpha, int mr, int nr)
    {
        float* accumulator = stackalloc float[ScalarTile * ScalarTile];
        new Span<float>(accumulator, mr * nr).Clear();
        for (int p = 0; p < kc; p++)
        {
            for (int r = 0; r < mr; r++)
            {
                float ar = a[p * mr + r];
                for (int j = 0; j < nr; j++)
                {
                    accumulator[r * nr + j] += ar * b[p * nr + j];
                }
            }
        }
        for (int r = 0; r < mr; r++)
        {
            for (int j = 0; j < nr; j++)
            {
                c[r * ldc + j] += alpha * accumulator[r * nr + j];
            }
        }
    }

    /// <summary>Packs rows [ic, ic+mc) x depth [pc, pc+kc) of op(A) into mr-row panels, zero-padding the last one.</summary>
    private static void PackA(Transpose transpose, float* a, nint lda, int ic, int mc, int pc, int kc, int mr, float* destination)
    {
        for (int ir = 0; ir < mc; ir += mr)
        {
            int rows = Math.Min(mr, mc - ir);
            float* panel = destination + (nint)ir * kc;
            if (transpose == Transpose.None)
            {
                for (int r = 0; r < rows; r++)
                {
                    float* source = a + (ic + ir + r) * lda + pc;
                    for (int p = 0; p < kc; p++)
                    {
                        panel[p * mr + r] = source[p];
                    }
                }
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    float* source = a + (pc + p) * lda + ic + ir;
                    for (int r = 0; r < rows; r++)
                    {
                        panel[p * mr + r] = source[r];
                    }
                }
            }
            for (int r = rows; r < mr; r++)
            {
                for (int p = 0; p < kc; p++)
                {
                    panel[p * mr + r] = 0f;
                }
            }
        }
    }

    /// <summary>Packs depth [pc, pc+kc) x columns [jc, jc+nc) of op(B) into nr-column panels, zero-padding the last one.</summary>
    private static void PackB(Transpose transpose, float* b, nint ldb, int pc, int kc, int jc, int nc, int nr, float* destination)
    {
        for (int jr = 0; jr < nc; jr += nr)
        {
            int columns = Math.Min(nr, nc - jr);
            float* panel = destination + (nint)jr * kc;
            if (transpose == Transpose.None)
            {
                for (int p = 0; p < kc; p++)
                {
                    var source = new ReadOnlySpan<float>(b + (pc + p) * ldb + jc + jr, columns);
                    var target = new Span<float>(panel + p * nr, nr);
                    source.CopyTo(target);
                    target[columns..].Clear();
                }
            }
            else
            {
                for (int j = 0; j < columns; j++)
                {
                    float* source = b + (jc + jr + j) * ldb + pc;
                    for (int p = 0; p < kc; p++)
                    {
                        panel[p * nr + j] = source[p];
                    }
                }
                for (int j = columns; j < nr; j++)
                {
                    for (int p = 0; p < kc; p++)
                    {
                        panel[p * nr + j] = 0f;
                    }
                }
            }
        }
    }

    private static void ScaleOutput(int m, int n, float beta, float* c, nint ldc)
    {
        if (beta == 1f)
        {
            return;
        }
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + i * ldc, n);
            if (beta == 0f)
            {
                row.Clear(); // BLAS semantics: with beta = 0, C is not read, so NaN in C does not leak through
            }
            else
            {
                TensorPrimitives.Multiply(row, beta, row);
            }
        }
    }

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    private static float* Align(float* pointer) => (float*)(((nint)pointer + 63) & ~(nint)63);
}
