using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Algorithms.RadixSortOperations;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace DataMarket.Valuation.Gpu;

/// <summary>
/// The ILGPU kernels of the GPU valuation path, compiled once per accelerator. The same C# runs as PTX on an NVIDIA
/// GPU and as .NET code on ILGPU's CPU accelerator, which is how CI tests it.
/// </summary>
internal sealed class GpuKernels
{
    public GpuKernels(Accelerator accelerator)
    {
        Accelerator = accelerator;
        DistanceKeys = accelerator.LoadAutoGroupedKernel<Index2D, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<ulong>>(DistanceKeysKernel);
        ExtractOrder = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<ulong>, ArrayView<int>>(ExtractOrderKernel);
        SortKeys = accelerator.CreateRadixSort<ulong, Stride1D.Dense, AscendingUInt64>();
        Gemm = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(GpuGemm.TiledKernel);
    }

    public Accelerator Accelerator { get; }

    /// <summary>
    /// keys[t * N + offset + i] = (squared distance bits of training row offset + i to test row t) &lt;&lt; 32 | (offset + i),
    /// for the rows of one block of the training matrix starting at row offset (the whole matrix when it fits).
    /// </summary>
    public Action<AcceleratorStream, Index2D, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<ulong>> DistanceKeys { get; }

    /// <summary>order[j] = the training index in the low half of keys[j].</summary>
    public Action<AcceleratorStream, Index1D, ArrayView<ulong>, ArrayView<int>> ExtractOrder { get; }

    /// <summary>Ascending sort of whole 64-bit keys; keys are unique (the index is in them), so stability does not matter.</summary>
    public RadixSort<ulong, Stride1D.Dense> SortKeys { get; }

    /// <summary>scores = queries x rows^T in float32 tiles (see <see cref="GpuGemm"/>).</summary>
    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> Gemm { get; }

    public int SortTempLength(int keyCount) => Accelerator.ComputeRadixSortTempStorageSize<ulong, AscendingUInt64>(keyCount);

    /// <summary>
    /// One (training row, test row) pair per thread. The sum follows <see cref="Shapley.DistanceRanking.SquaredDistance"/>
    /// exactly: eight lanes over the features in order, then ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
    /// </summary>
    private static void DistanceKeysKernel(Index2D index, ArrayView<float> train, ArrayView<float> tests, int featureCount, int rowOffset, int trainCount, ArrayView<ulong> keys)
    {
        var row = index.X;
        var test = index.Y;
        var rowStart = (long)row * featureCount;
        var testStart = (long)test * featureCount;
        float l0 = 0, l1 = 0, l2 = 0, l3 = 0, l4 = 0, l5 = 0, l6 = 0, l7 = 0;
        for (var f = 0; f < featureCount; f += 8)
        {
            l0 = Accumulate(l0, train, tests, rowStart, testStart, f, featureCount);
            l1 = Accumulate(l1, train, tests, rowStart, testStart, f + 1, featureCount);
            l2 = Accumulate(l2, train, tests, rowStart, testStart, f + 2, featureCount);
            l3 = Accumulate(l3, train, tests, rowStart, testStart, f + 3, featureCount);
            l4 = Accumulate(l4, train, tests, rowStart, testStart, f + 4, featureCount);
            l5 = Accumulate(l5, train, tests, rowStart, testStart, f + 5, featureCount);
            l6 = Accumulate(l6, train, tests, rowStart, testStart, f + 6, featureCount);
            l7 = Accumulate(l7, train, tests, rowStart, testStart, f + 7, featureCount);
        }

        var sum = AddRounded(AddRounded(AddRounded(l0, l1), AddRounded(l2, l3)), AddRounded(AddRounded(l4, l5), AddRounded(l6, l7)));
        keys[((long)test * trainCount) + rowOffset + row] = ((ulong)Interop.FloatAsInt(sum) << 32) | (uint)(rowOffset + row);
    }

    private static float Accumulate(float lane, ArrayView<float> train, ArrayView<float> tests, long rowStart, long testStart, int feature, int featureCount)
    {
        if (feature >= featureCount)
        {
            return lane;
        }

        var difference = SubtractRounded(train[rowStart + feature], tests[testStart + feature]);
        return AddRounded(lane, MultiplyRounded(difference, difference));
    }

    // PTX's plain add.f32 and mul.f32 let ptxas fuse a multiply and an add into one FMA, which rounds once instead of
    // twice and would change the distance bits against the CPU. The .rn forms are never contracted. The CPU accelerator
    // runs these as ordinary .NET arithmetic, which the JIT never contracts either.
    private static float AddRounded(float a, float b)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("add.rn.f32 %0, %1, %2;", out float result, a, b);
            return result;
        }

        return a + b;
    }

    private static float SubtractRounded(float a, float b)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("sub.rn.f32 %0, %1, %2;", out float result, a, b);
            return result;
        }

        return a - b;
    }

    private static float MultiplyRounded(float a, float b)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("mul.rn.f32 %0, %1, %2;", out float result, a, b);
            return result;
        }

        return a * b;
    }

    private static void ExtractOrderKernel(Index1D index, ArrayView<ulong> keys, ArrayView<int> order) =>
        order[index] = (int)(uint)keys[index];
}
