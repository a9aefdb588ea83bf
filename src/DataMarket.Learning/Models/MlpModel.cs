using System.Numerics;
using DataMarket.Compute;
using DataMarket.Learning.Layers;

namespace DataMarket.Learning.Models;

public enum Activation
{
    Relu,
    Gelu,
    Tanh,
}

/// <summary>Shape of a multilayer perceptron: input → hidden widths (each followed by the activation) → output.</summary>
public sealed record MlpOptions(int InputWidth, IReadOnlyList<int> HiddenWidths, int OutputWidth, Activation Activation = Activation.Relu, ulong Seed = 1);

/// <summary>
/// MLP for tabular features. As a classifier its outputs are logits (train with softmax cross-entropy);
/// as a regressor they are the predictions (train with MSE).
/// </summary>
public sealed class MlpModel<T> : Model<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Sequential<T> _network;

    public MlpModel(MlpOptions options, ComputeBackend? backend = null)
    {
        Options = options;
        var random = new SeededRandom(options.Seed);
        var layers = new List<(string, Layer<T>)>();
        int width = options.InputWidth, index = 0;
        foreach (int hidden in options.HiddenWidths)
        {
            layers.Add(($"{index++}", new Linear<T>(width, hidden, bias: true, random, backend)));
            layers.Add(($"{index++}", options.Activation switch
            {
                Activation.Gelu => new Gelu<T>(),
                Activation.Tanh => new Tanh<T>(),
                _ => (Layer<T>)new Relu<T>(),
            }));
            width = hidden;
        }
        layers.Add(($"{index}", new Linear<T>(width, options.OutputWidth, bias: true, random, backend)));
        _network = new Sequential<T>(layers.ToArray());
    }

    public MlpOptions Options { get; }

    protected override IEnumerable<(string Name, Parameter<T> Parameter)> EnumerateParameters() => _network.NamedParameters().Select(p => ($"layers.{p.Name}", p.Parameter));

    protected override IEnumerable<Layer<T>> TopLevelLayers() => [_network];

    /// <summary>Features are batch x InputWidth; returns batch x OutputWidth.</summary>
    public T[] Forward(T[] features, int batch)
    {
        if (features.Length != batch * Options.InputWidth)
        {
            throw new ArgumentException($"Expected {batch}x{Options.InputWidth} features, got {features.Length} values.", nameof(features));
        }
        return _network.Forward(features, new BatchShape(batch, 1));
    }

    public void Backward(T[] outputGradient) => _network.Backward(outputGradient);

    /// <summary>Argmax class per row.</summary>
    public int[] PredictClasses(T[] features, int batch)
    {
        var logits = Forward(features, batch);
        int classes = Options.OutputWidth;
        var predictions = new int[batch];
        for (int r = 0; r < batch; r++)
        {
            predictions[r] = System.Numerics.Tensors.TensorPrimitives.IndexOfMax<T>(logits.AsSpan(r * classes, classes));
        }
        return predictions;
    }
}
