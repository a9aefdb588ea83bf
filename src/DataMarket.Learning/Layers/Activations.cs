using System.Numerics;
using System.Numerics.Tensors;

namespace DataMarket.Learning.Layers;

/// <summary>max(x, 0); the backward passes dy where x &gt; 0 (the subgradient at 0 is taken as 0).</summary>
public sealed class Relu<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private T[]? _input;

    public Relu() : base(Compute.ComputeBackends.Managed)
    {
    }

    public override T[] Forward(T[] input, BatchShape shape)
    {
        _input = input;
        var output = Buffers.Uninitialized<T>(input.Length);
        TensorPrimitives.Max(input, T.Zero, output);
        return output;
    }

    public override T[] Backward(T[] outputGradient)
    {
        var input = Cached(_input);
        var inputGradient = Buffers.Uninitialized<T>(input.Length);
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            for (; i <= input.Length - Vector<T>.Count; i += Vector<T>.Count)
            {
                var positive = Vector.GreaterThan(new Vector<T>(input, i), Vector<T>.Zero);
                Vector.ConditionalSelect(positive, new Vector<T>(outputGradient, i), Vector<T>.Zero).CopyTo(inputGradient, i);
            }
        }
        for (; i < input.Length; i++)
        {
            inputGradient[i] = input[i] > T.Zero ? outputGradient[i] : T.Zero;
        }
        return inputGradient;
    }
}

/// <summary>tanh; the backward uses the cached output: dx = (1 - y²) dy.</summary>
public sealed class Tanh<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private T[]? _output;

    public Tanh() : base(Compute.ComputeBackends.Managed)
    {
    }

    public override T[] Forward(T[] input, BatchShape shape)
    {
        var output = Buffers.Uninitialized<T>(input.Length);
        TensorPrimitives.Tanh<T>(input, output);
        _output = output;
        return output;
    }

    public override T[] Backward(T[] outputGradient)
    {
        var output = Cached(_output);
        var inputGradient = Buffers.Uninitialized<T>(output.Length);
        TensorPrimitives.Multiply<T>(output, output, inputGradient);
        TensorPrimitives.Subtract(T.One, inputGradient, inputGradient);
        TensorPrimitives.Multiply<T>(inputGradient, outputGradient, inputGradient);
        return inputGradient;
    }
}

/// <summary>
/// GELU with GPT-2's tanh approximation: 0.5 x (1 + tanh(u)), u = √(2/π) (x + 0.044715 x³).
/// Vectorised through TensorPrimitives; tanh(u) is cached for the backward:
/// dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 − tanh² u) √(2/π) (1 + 3 · 0.044715 x²).
/// </summary>
public sealed class Gelu<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static readonly T s_scale = T.CreateTruncating(Math.Sqrt(2.0 / Math.PI));
    private static readonly T s_cubic = T.CreateTruncating(0.044715);
    private static readonly T s_half = T.CreateTruncating(0.5);
    private static readonly T s_threeCubic = T.CreateTruncating(3 * 0.044715);

    private T[]? _input;
    private T[]? _tanh;

    public Gelu() : base(Compute.ComputeBackends.Managed)
    {
    }

    public override T[] Forward(T[] input, BatchShape shape)
    {
        var tanh = Buffers.Uninitialized<T>(input.Length);
        var output = Buffers.Uninitialized<T>(input.Length);
        TensorPrimitives.Multiply<T>(input, input, tanh);                 // x²
        TensorPrimitives.Multiply(tanh, s_cubic, tanh);
        TensorPrimitives.Add(tanh, T.One, tanh);                          // 1 + c x²
        TensorPrimitives.Multiply<T>(tanh, input, tanh);                  // x + c x³
        TensorPrimitives.Multiply(tanh, s_scale, tanh);                   // u
        TensorPrimitives.Tanh<T>(tanh, tanh);
        TensorPrimitives.Add(tanh, T.One, output);
        TensorPrimitives.Multiply<T>(output, input, output);
        TensorPrimitives.Multiply(output, s_half, output);
        _input = input;
        _tanh = tanh;
        return output;
    }

    public override T[] Backward(T[] outputGradient)
    {
        var input = Cached(_input);
        var tanh = Cached(_tanh);
        var inputGradient = Buffers.Uninitialized<T>(input.Length);
        for (int i = 0; i < input.Length; i++)
        {
            T x = input[i], t = tanh[i];
            T derivative = s_half * (T.One + t) + s_half * x * (T.One - t * t) * s_scale * (T.One + s_threeCubic * x * x);
            inputGradient[i] = derivative * outputGradient[i];
        }
        return inputGradient;
    }
}
