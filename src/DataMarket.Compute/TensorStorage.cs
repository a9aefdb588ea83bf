using System.Runtime.InteropServices;

namespace DataMarket.Compute;

/// <summary>
/// 64-byte aligned native memory behind one or more <see cref="Tensor"/> views. Native memory keeps
/// large activations off the GC heap and gives SIMD kernels aligned rows; the finalizer is a safety
/// net, callers should dispose the owning tensor.
/// </summary>
public sealed unsafe class TensorStorage : IDisposable
{
    private float* _pointer;

    public TensorStorage(long length, bool zeroed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = length;
        nuint bytes = (nuint)Math.Max(1, length) * sizeof(float);
        _pointer = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        if (zeroed)
        {
            NativeMemory.Clear(_pointer, bytes);
        }
        if (length > 0)
        {
            GC.AddMemoryPressure((long)bytes);
        }
    }

    public long Length { get; }

    public bool IsDisposed => _pointer == null;

    internal float* Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(_pointer == null, this);
            return _pointer;
        }
    }

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    ~TensorStorage() => Release();

    private void Release()
    {
        if (_pointer != null)
        {
            NativeMemory.AlignedFree(_pointer);
            _pointer = null;
            if (Length > 0)
            {
                GC.RemoveMemoryPressure(Length * sizeof(float));
            }
        }
    }
}
