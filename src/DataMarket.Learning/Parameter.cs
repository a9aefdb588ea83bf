using System.Numerics;

namespace DataMarket.Learning;

/// <summary>A trainable tensor: values, the gradient accumulated by Backward, and a row-major shape.</summary>
public sealed class Parameter<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public Parameter(string name, params int[] shape)
    {
        Name = name;
        Shape = shape;
        int length = 1;
        foreach (int size in shape)
        {
            length *= size;
        }
        Value = new T[length];
        Gradient = new T[length];
    }

    /// <summary>Dotted path inside the model, e.g. "blocks.0.attention.qkv.weight"; used as the safetensors key.</summary>
    public string Name { get; internal set; }

    public int[] Shape { get; }

    public T[] Value { get; }

    public T[] Gradient { get; }

    public void ZeroGradient() => Array.Clear(Gradient);

    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}]";
}

/// <summary>How rows of an activation matrix group into examples: rows = Batch * Sequence.</summary>
public readonly record struct BatchShape(int Batch, int Sequence)
{
    public int Rows => Batch * Sequence;
}
