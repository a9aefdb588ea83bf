using System.Numerics;
using DataMarket.Compute;
using DataMarket.Learning.Layers;

namespace DataMarket.Valuation.LoGra;

/// <summary>
/// The Kronecker projection of one Linear layer's weight gradient: G̃ = P_out G P_inᵀ (k_out x k_in, row-major,
/// the weight's [out, in] layout) computed as Σ_t (P_out dy_t)(P_in x_t)ᵀ, so G is never formed.
/// Matrices are held in float32, the precision of the projection file, so a reloaded projection is the same one.
/// </summary>
public sealed class LayerProjection
{
    public LayerProjection(string name, int inputWidth, int outputWidth, float[] inputProjection, int inputRank, float[] outputProjection, int outputRank)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputRank);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outputRank);
        if (inputProjection.Length != inputRank * inputWidth || outputProjection.Length != outputRank * outputWidth)
        {
            throw new ArgumentException($"Projection of '{name}' needs {inputRank}x{inputWidth} and {outputRank}x{outputWidth} matrices.");
        }

        Name = name;
        InputWidth = inputWidth;
        OutputWidth = outputWidth;
        InputProjection = inputProjection;
        InputRank = inputRank;
        OutputProjection = outputProjection;
        OutputRank = outputRank;
    }

    /// <summary>The layer's path, e.g. "layers.0" or "blocks.0.attention.qkv".</summary>
    public string Name { get; }

    public int InputWidth { get; }

    public int OutputWidth { get; }

    /// <summary>P_in, InputRank x InputWidth, row-major.</summary>
    public float[] InputProjection { get; }

    public int InputRank { get; }

    /// <summary>P_out, OutputRank x OutputWidth, row-major.</summary>
    public float[] OutputProjection { get; }

    public int OutputRank { get; }

    /// <summary>Values per example in the store: OutputRank x InputRank.</summary>
    public int BlockSize => InputRank * OutputRank;

    /// <summary>The same projection with P_in and P_out multiplied by scalars (scores are invariant to this).</summary>
    public LayerProjection Scaled(float inputFactor, float outputFactor) => new(Name, InputWidth, OutputWidth,
        InputProjection.Select(v => v * inputFactor).ToArray(), InputRank, OutputProjection.Select(v => v * outputFactor).ToArray(), OutputRank);

    /// <summary>
    /// Projects every example of <paramref name="activations"/> into row e of <paramref name="destination"/>
    /// (stride <paramref name="rowStride"/>) at column <paramref name="columnOffset"/>. Tokens whose
    /// <paramref name="tokenMask"/> entry is false (padding) contribute nothing; an empty mask keeps every token.
    /// </summary>
    public void Project<T>(LinearActivations<T> activations, ReadOnlySpan<bool> tokenMask, Span<T> destination, int rowStride, int columnOffset, ComputeBackend backend)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(activations);
        var layer = activations.Layer;
        if (layer.InputWidth != InputWidth || layer.OutputWidth != OutputWidth)
        {
            throw new ArgumentException($"Projection '{Name}' is for a {InputWidth}->{OutputWidth} layer; got {layer.InputWidth}->{layer.OutputWidth}.");
        }

        var shape = activations.Shape;
        int rows = shape.Rows, tokens = shape.Sequence;
        if (!tokenMask.IsEmpty && tokenMask.Length != rows)
        {
            throw new ArgumentException($"The token mask has {tokenMask.Length} entries for {rows} rows.");
        }

        if (columnOffset < 0 || columnOffset + BlockSize > rowStride || destination.Length < (long)(shape.Batch - 1) * rowStride + columnOffset + BlockSize)
        {
            throw new ArgumentException("The destination is too small for the projected gradients.");
        }

        var inputProjection = Convert<T>(InputProjection);
        var outputProjection = Convert<T>(OutputProjection);
        var projectedInput = new T[rows * InputRank];
        var projectedGradient = new T[rows * OutputRank];
        // x P_inᵀ and dy P_outᵀ for all tokens at once: O(k_in d_in + k_out d_out) per token.
        LograBlas.Gemm(backend, Transpose.None, Transpose.Transposed, rows, InputRank, InputWidth,
            activations.InputValues.Span, InputWidth, inputProjection, InputWidth, 0, projectedInput, InputRank);
        LograBlas.Gemm(backend, Transpose.None, Transpose.Transposed, rows, OutputRank, OutputWidth,
            activations.OutputGradientValues.Span, OutputWidth, outputProjection, OutputWidth, 0, projectedGradient, OutputRank);
        if (!tokenMask.IsEmpty)
        {
            for (int r = 0; r < rows; r++)
            {
                if (!tokenMask[r])
                {
                    projectedInput.AsSpan(r * InputRank, InputRank).Clear();
                }
            }
        }

        for (int e = 0; e < shape.Batch; e++)
        {
            // G̃_e = Σ_t (P_out dy_t)(P_in x_t)ᵀ = DYpᵀ Xp over the example's tokens.
            LograBlas.Gemm(backend, Transpose.Transposed, Transpose.None, OutputRank, InputRank, tokens,
                projectedGradient.AsSpan(e * tokens * OutputRank), OutputRank,
                projectedInput.AsSpan(e * tokens * InputRank), InputRank,
                0, destination.Slice(e * rowStride + columnOffset, BlockSize), InputRank);
        }
    }

    private static T[] Convert<T>(float[] values) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (values is T[] same)
        {
            return same;
        }

        var result = new T[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            result[i] = T.CreateTruncating(values[i]);
        }

        return result;
    }
}
