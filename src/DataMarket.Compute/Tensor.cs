namespace DataMarket.Compute;

/// <summary>
/// Dense float32 tensor: a shape and element strides over <see cref="TensorStorage"/>.
/// Views (<see cref="Reshape"/>, <see cref="Transposed"/>, <see cref="Slice"/>) share storage and never copy;
/// the only copying operation is <see cref="ToContiguous"/>, which says so in its name.
/// Disposing the tensor that allocated the storage frees it; disposing a view does nothing.
/// </summary>
public sealed unsafe class Tensor : IDisposable
{
    private readonly int[] _shape;
    private readonly long[] _strides;
    private readonly bool _ownsStorage;

    private Tensor(TensorStorage storage, long offset, int[] shape, long[] strides, bool ownsStorage)
    {
        Storage = storage;
        Offset = offset;
        _shape = shape;
        _strides = strides;
        _ownsStorage = ownsStorage;
    }

    public TensorStorage Storage { get; }

    /// <summary>Element offset of this view's first element inside <see cref="Storage"/>.</summary>
    public long Offset { get; }

    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>Element (not byte) strides per dimension.</summary>
    public ReadOnlySpan<long> Strides => _strides;

    public int Rank => _shape.Length;

    public long Length => ElementCount(_shape);

    public int Rows => Rank == 2 ? _shape[0] : throw new InvalidOperationException($"Rows needs a rank-2 tensor; this one has rank {Rank}.");

    public int Columns => Rank == 2 ? _shape[1] : throw new InvalidOperationException($"Columns needs a rank-2 tensor; this one has rank {Rank}.");

    public bool IsContiguous
    {
        get
        {
            long expected = 1;
            for (int d = Rank - 1; d >= 0; d--)
            {
                if (_shape[d] != 1 && _strides[d] != expected)
                {
                    return false;
                }
                expected *= _shape[d];
            }
            return true;
        }
    }

    public static Tensor Zeros(params int[] shape) => Allocate(shape, zeroed: true);

    /// <summary>Allocates without clearing; every element must be written before it is read.</summary>
    public static Tensor Uninitialized(params int[] shape) => Allocate(shape, zeroed: false);

    public static Tensor FromSpan(ReadOnlySpan<float> values, params int[] shape)
    {
        var tensor = Allocate(shape, zeroed: false);
        if (values.Length != tensor.Length)
        {
            tensor.Dispose();
            throw new ArgumentException($"Shape [{string.Join(", ", shape)}] holds {ElementCount(shape)} elements but {values.Length} were given.", nameof(values));
        }
        values.CopyTo(tensor.AsSpan());
        return tensor;
    }

    private static Tensor Allocate(int[] shape, bool zeroed)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var copy = (int[])shape.Clone();
        return new Tensor(new TensorStorage(ElementCount(copy), zeroed), 0, copy, ContiguousStrides(copy), ownsStorage: true);
    }

    private static long ElementCount(ReadOnlySpan<int> shape)
    {
        long count = 1;
        foreach (int size in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(size, nameof(shape));
            count *= size;
        }
        return count;
    }

    private static long[] ContiguousStrides(int[] shape)
    {
        var strides = new long[shape.Length];
        long stride = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            strides[d] = stride;
            stride *= shape[d];
        }
        return strides;
    }

    /// <summary>The elements as one span; only for contiguous tensors (views that skip elements throw).</summary>
    public Span<float> AsSpan()
    {
        if (!IsContiguous)
        {
            throw new InvalidOperationException("AsSpan needs a contiguous tensor; call ToContiguous() to make an explicit copy.");
        }
        long length = Length;
        if (length > int.MaxValue)
        {
            throw new InvalidOperationException($"Tensor of {length} elements is too large for a single span.");
        }
        return new Span<float>(Storage.Pointer + Offset, (int)length);
    }

    /// <summary>Row <paramref name="row"/> of a rank-2 tensor whose rows are contiguous.</summary>
    public Span<float> RowSpan(int row)
    {
        if (Rank != 2 || (_strides[1] != 1 && _shape[1] > 1))
        {
            throw new InvalidOperationException("RowSpan needs a rank-2 tensor with unit column stride.");
        }
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, _shape[0]);
        return new Span<float>(Storage.Pointer + Offset + row * _strides[0], _shape[1]);
    }

    public float this[params int[] index]
    {
        get => *ElementPointer(index);
        set => *ElementPointer(index) = value;
    }

    public float this[int row, int column]
    {
        get => *ElementPointer([row, column]);
        set => *ElementPointer([row, column]) = value;
    }

    private float* ElementPointer(ReadOnlySpan<int> index)
    {
        if (index.Length != Rank)
        {
            throw new ArgumentException($"Index has {index.Length} coordinates; the tensor has rank {Rank}.");
        }
        long offset = Offset;
        for (int d = 0; d < index.Length; d++)
        {
            if ((uint)index[d] >= (uint)_shape[d])
            {
                throw new IndexOutOfRangeException($"Index {index[d]} is outside dimension {d} of size {_shape[d]}.");
            }
            offset += index[d] * _strides[d];
        }
        return Storage.Pointer + offset;
    }

    /// <summary>A view with a new shape; requires a contiguous tensor, so it never copies. One dimension may be -1.</summary>
    public Tensor Reshape(params int[] shape)
    {
        if (!IsContiguous)
        {
            throw new InvalidOperationException("Reshape needs a contiguous tensor; call ToContiguous() to make an explicit copy.");
        }
        var resolved = (int[])shape.Clone();
        int inferred = Array.IndexOf(resolved, -1);
        if (inferred >= 0)
        {
            resolved[inferred] = 1;
            long known = ElementCount(resolved);
            resolved[inferred] = known == 0 ? 0 : (int)(Length / known);
        }
        if (ElementCount(resolved) != Length)
        {
            throw new ArgumentException($"Cannot view {Length} elements as [{string.Join(", ", shape)}].", nameof(shape));
        }
        return new Tensor(Storage, Offset, resolved, ContiguousStrides(resolved), ownsStorage: false);
    }

    /// <summary>Swaps the last two dimensions by swapping strides; GEMM reads such a view as a transposed operand.</summary>
    public Tensor Transposed()
    {
        if (Rank < 2)
        {
            throw new InvalidOperationException("Transposed needs rank 2 or more.");
        }
        var shape = (int[])_shape.Clone();
        var strides = (long[])_strides.Clone();
        (shape[^1], shape[^2]) = (shape[^2], shape[^1]);
        (strides[^1], strides[^2]) = (strides[^2], strides[^1]);
        return new Tensor(Storage, Offset, shape, strides, ownsStorage: false);
    }

    /// <summary>A view of <paramref name="count"/> entries of dimension 0 starting at <paramref name="start"/>.</summary>
    public Tensor Slice(int start, int count)
    {
        if (Rank == 0)
        {
            throw new InvalidOperationException("Cannot slice a scalar.");
        }
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (start + count > _shape[0])
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"Slice [{start}, {start + count}) exceeds dimension 0 of size {_shape[0]}.");
        }
        var shape = (int[])_shape.Clone();
        shape[0] = count;
        return new Tensor(Storage, Offset + start * _strides[0], shape, (long[])_strides.Clone(), ownsStorage: false);
    }

    /// <summary>Entry <paramref name="index"/> of dimension 0, with that dimension removed.</summary>
    public Tensor Select(int index)
    {
        var slice = Slice(index, 1);
        return new Tensor(Storage, slice.Offset, _shape[1..], _strides[1..], ownsStorage: false);
    }

    /// <summary>An explicit copy into new contiguous storage.</summary>
    public Tensor ToContiguous()
    {
        var result = Uninitialized(_shape);
        var destination = result.AsSpan();
        int position = 0;
        var index = new int[Rank];
        long total = Length;
        for (long n = 0; n < total; n++)
        {
            destination[position++] = *ElementPointer(index);
            for (int d = Rank - 1; d >= 0; d--)
            {
                if (++index[d] < _shape[d])
                {
                    break;
                }
                index[d] = 0;
            }
        }
        return result;
    }

    public float[] ToArray() => IsContiguous ? AsSpan().ToArray() : ToContiguousArray();

    private float[] ToContiguousArray()
    {
        using var copy = ToContiguous();
        return copy.AsSpan().ToArray();
    }

    public void Dispose()
    {
        if (_ownsStorage)
        {
            Storage.Dispose();
        }
    }

    public override string ToString() => $"Tensor[{string.Join(", ", _shape)}]";
}
