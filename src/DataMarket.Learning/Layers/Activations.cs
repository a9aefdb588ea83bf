using System.Numerics;
using System.Numerics.Tensors;

namespace DataMarket.Learning.Layers;

/// <summary>An elementwise activation: y = f(x), dx = f'(x) dy.</summary>
public abstract class ElementwiseActivation<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private T[]? _input;

    protected ElementwiseActivation() : base(Compute.ComputeBackends.Managed)
    {
    }

    public override T[] Forward(T[] input, BatchShape shape)
    {
        _input = input;
        var output = new T[input.Length];
        Apply(input, output);
        return output;
    }

    public override T[] Backward(T[] outputGradient)
    {
        var input = Cached(_input);
        var inputGradient = new T[input.Length];
        for (int i = 0; i < input.Length; i++)
        {
            inputGradient[i] = Derivative(input[i]) * outputGradient[i];
        }
        return inputGradient;
    }

    protected abstract void Apply(ReadOnlySpan<T> input, Span<T> output);

    protected abstract T Derivative(T x);
}

public sealed class Relu<T> : ElementwiseActivation<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override void Apply(ReadOnlySpan<T> input, Span<T> output) => TensorPrimitives.Max(input, T.Zero, output);

    protected override T Derivative(T x) => x > T.Zero ? T.One : T.Zero;
}

public sealed class Tanh<T> : ElementwiseActivation<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override void Apply(ReadOnlySpan<T> input, Span<T> output) => TensorPrimitives.Tanh(input, output);

    protected override T Derivative(T x)
    {
        T y = T.Tanh(x);
        return T.One - y * y;
    }
}

/// <summary>GELU with GPT-2's tanh approximation: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))).</summary>
public sealed class Gelu<T> : ElementwiseActivation<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static readonly T s_scale = T.CreateTruncating(Math.Sqrt(2.0 / Math.PI));
    private static readonly T s_cubic = T.CreateTruncating(0.044715);
    private static readonly T s_half = T.CreateTruncating(0.5);
    private static readonly T s_three = T.CreateTruncating(3);

    protected override void Apply(ReadOnlySpan<T> input, Span<T> output)
    {
        for (int i = 0; i < input.Length; i++)
        {
            T x = input[i];
            output[i] = s_half * x * (T.One + T.Tanh(s_scale * (x + s_cubic * x * x * x)));
        }
    }

    protected override T Derivative(T x)
    {
        T inner = s_scale * (x + s_cubic * x * x * x);
        T tanh = T.Tanh(inner);
        T sech2 = T.One - tanh * tanh;
        return s_half * (T.One + tanh) + s_half * x * sech2 * s_scale * (T.One + s_three * s_cubic * x * x);
    }
}
