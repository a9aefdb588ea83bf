using System.Numerics;
using System.Numerics.Tensors;

namespace DataMarket.Compute;

/// <summary>Row-wise operations on row-major matrices, generic so that float64 checks run the same code.</summary>
public static class RowOps
{
    private static int RowCount(int length, int columns)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        if (length % columns != 0)
        {
            throw new ArgumentException($"Length {length} is not a multiple of the row width {columns}.");
        }
        return length / columns;
    }

    public static void SoftmaxRows<T>(ReadOnlySpan<T> input, Span<T> output, int columns) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rows = RowCount(input.Length, columns);
        if (output.Length < input.Length)
        {
            throw new ArgumentException("Output is shorter than input.", nameof(output));
        }
        for (int r = 0; r < rows; r++)
        {
            var x = input.Slice(r * columns, columns);
            var y = output.Slice(r * columns, columns);
            T max = TensorPrimitives.Max(x);
            TensorPrimitives.Subtract(x, max, y); // subtracting the max keeps Exp finite
            TensorPrimitives.Exp(y, y);
            T sum = TensorPrimitives.Sum<T>(y);
            TensorPrimitives.Divide(y, sum, y);
        }
    }

    public static void LogSoftmaxRows<T>(ReadOnlySpan<T> input, Span<T> output, int columns) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rows = RowCount(input.Length, columns);
        if (output.Length < input.Length)
        {
            throw new ArgumentException("Output is shorter than input.", nameof(output));
        }
        for (int r = 0; r < rows; r++)
        {
            var x = input.Slice(r * columns, columns);
            var y = output.Slice(r * columns, columns);
            T max = TensorPrimitives.Max(x);
            TensorPrimitives.Subtract(x, max, y);
            T sumExp = T.Zero;
            for (int j = 0; j < columns; j++)
            {
                sumExp += T.Exp(y[j]);
            }
            TensorPrimitives.Subtract(y, T.Log(sumExp), y);
        }
    }

    /// <summary>
    /// The k largest entries of each row, largest first; ties go to the lower column index.
    /// <paramref name="indices"/> and <paramref name="values"/> are rows x k.
    /// </summary>
    public static void TopKRows(ReadOnlySpan<float> input, int columns, int k, Span<int> indices, Span<float> values)
    {
        int rows = RowCount(input.Length, columns);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(k, columns);
        if (indices.Length < rows * k || values.Length < rows * k)
        {
            throw new ArgumentException($"Outputs need {rows * k} elements.");
        }
        var order = new int[columns];
        for (int r = 0; r < rows; r++)
        {
            SortRow(input.Slice(r * columns, columns), order, descending: true);
            for (int j = 0; j < k; j++)
            {
                indices[r * k + j] = order[j];
                values[r * k + j] = input[r * columns + order[j]];
            }
        }
    }

    /// <summary>Stable argsort of each row; NaN sorts after every number in ascending order.</summary>
    public static void ArgsortRows(ReadOnlySpan<float> input, int columns, Span<int> indices, bool descending = false)
    {
        int rows = RowCount(input.Length, columns);
        if (indices.Length < input.Length)
        {
            throw new ArgumentException("Indices are shorter than input.", nameof(indices));
        }
        var order = new int[columns];
        for (int r = 0; r < rows; r++)
        {
            SortRow(input.Slice(r * columns, columns), order, descending);
            order.CopyTo(indices.Slice(r * columns, columns));
        }
    }

    private static void SortRow(ReadOnlySpan<float> row, int[] order, bool descending)
    {
        var keys = row.ToArray();
        for (int j = 0; j < order.Length; j++)
        {
            order[j] = j;
        }
        // Comparing the index as a tie-breaker makes the unstable introsort stable.
        Array.Sort(order, (x, y) =>
        {
            int byValue = descending ? keys[y].CompareTo(keys[x]) : keys[x].CompareTo(keys[y]);
            return byValue != 0 ? byValue : x.CompareTo(y);
        });
    }
}
