namespace DataMarket.Learning;

internal static class Buffers
{
    /// <summary>
    /// An activation or gradient array that the caller overwrites completely (GEMM with beta = 0, a
    /// TensorPrimitives destination, or an explicit loop over every element). Skipping the clear
    /// matters because these arrays are large and allocated on every step.
    /// </summary>
    public static T[] Uninitialized<T>(int length) where T : unmanaged => GC.AllocateUninitializedArray<T>(length);
}
