using System.Numerics;
using System.Numerics.Tensors;

namespace DataMarket.Learning.Layers;

/// <summary>Layers applied in order; parameters are named "index.name" unless a name is given.</summary>
public sealed class Sequential<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly (string Name, Layer<T> Layer)[] _layers;

    public Sequential(params Layer<T>[] layers) : this(layers.Select((layer, i) => (i.ToString(System.Globalization.CultureInfo.InvariantCulture), layer)).ToArray())
    {
    }

    public Sequential(params (string Name, Layer<T> Layer)[] layers) : base(Compute.ComputeBackends.Managed)
    {
        _layers = layers;
    }

    public override IEnumerable<Layer<T>> Children => _layers.Select(l => l.Layer);

    public override T[] Forward(T[] input, BatchShape shape)
    {
        foreach (var (_, layer) in _layers)
        {
            input = layer.Forward(input, shape);
        }
        return input;
    }

    public override T[] Backward(T[] outputGradient)
    {
        for (int i = _layers.Length - 1; i >= 0; i--)
        {
            outputGradient = _layers[i].Layer.Backward(outputGradient);
        }
        return outputGradient;
    }

    public override IEnumerable<(string Name, Parameter<T> Parameter)> NamedParameters() =>
        _layers.SelectMany(l => Prefix(l.Name, l.Layer));
}

/// <summary>y = x + f(x); dx = dy + f'(x)ᵀ dy.</summary>
public sealed class Residual<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public Residual(Layer<T> inner) : base(Compute.ComputeBackends.Managed)
    {
        Inner = inner;
    }

    public Layer<T> Inner { get; }

    public override IEnumerable<Layer<T>> Children => [Inner];

    public override T[] Forward(T[] input, BatchShape shape)
    {
        var output = Inner.Forward(input, shape);
        TensorPrimitives.Add(output, input, output);
        return output;
    }

    public override T[] Backward(T[] outputGradient)
    {
        var inputGradient = Inner.Backward(outputGradient);
        TensorPrimitives.Add(inputGradient, outputGradient, inputGradient);
        return inputGradient;
    }

    public override IEnumerable<(string Name, Parameter<T> Parameter)> NamedParameters() => Inner.NamedParameters();
}
