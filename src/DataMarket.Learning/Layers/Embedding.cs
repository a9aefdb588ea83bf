using System.Numerics;
using System.Numerics.Tensors;
using DataMarket.Compute;

namespace DataMarket.Learning.Layers;

/// <summary>Row lookup: output row r is weight[token r]. Gradients scatter-add back into the looked-up rows.</summary>
public sealed class Embedding<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private int[]? _tokens;

    public Embedding(int count, int width, SeededRandom random, double standardDeviation = 0.02)
    {
        Count = count;
        Width = width;
        Weight = new Parameter<T>("weight", count, width);
        random.FillNormal(Weight.Value, T.Zero, T.CreateTruncating(standardDeviation));
    }

    public int Count { get; }

    public int Width { get; }

    public Parameter<T> Weight { get; }

    public T[] Forward(int[] tokens)
    {
        _tokens = tokens;
        var output = new T[tokens.Length * Width];
        for (int r = 0; r < tokens.Length; r++)
        {
            int token = tokens[r];
            if ((uint)token >= (uint)Count)
            {
                throw new ArgumentOutOfRangeException(nameof(tokens), $"Token {token} at position {r} is outside the vocabulary of {Count}.");
            }
            Weight.Value.AsSpan(token * Width, Width).CopyTo(output.AsSpan(r * Width));
        }
        return output;
    }

    public void Backward(T[] outputGradient)
    {
        var tokens = _tokens ?? throw new InvalidOperationException("Embedding.Backward called before Forward.");
        for (int r = 0; r < tokens.Length; r++)
        {
            var row = Weight.Gradient.AsSpan(tokens[r] * Width, Width);
            TensorPrimitives.Add(row, outputGradient.AsSpan(r * Width, Width), row);
        }
    }
}
