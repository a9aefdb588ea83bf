using System.Numerics;
using System.Text;
using System.Text.Json;
using DataMarket.Learning.Losses;
using DataMarket.Learning.Models;
using DataMarket.Learning.Training;
using DataMarket.Valuation.Data;

namespace DataMarket.Valuation.LoGra;

/// <summary>Tabular classification examples for an MLP proxy: per-example summed cross-entropy.</summary>
public sealed class TabularGradientSource<T> : IGradientSource<T>, ITrainingTask<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly MlpModel<T> _model;
    private readonly T[] _features;
    private readonly int[] _labels;

    public TabularGradientSource(MlpModel<T> model, T[] features, int[] labels)
    {
        if (features.Length != labels.Length * model.Options.InputWidth)
        {
            throw new ArgumentException($"{features.Length} feature values are not {labels.Length} rows of {model.Options.InputWidth}.");
        }

        _model = model;
        _features = features;
        _labels = labels;
    }

    public Model<T> Model => _model;

    public int ExampleCount => _labels.Length;

    public IReadOnlyList<Learning.Parameter<T>> Parameters => _model.Parameters;

    public bool[]? ForwardBackward(ReadOnlySpan<int> exampleIndices)
    {
        Run(exampleIndices, Reduction.Sum);
        return null;
    }

    /// <summary>Training step loss (mean reduction) for <see cref="Trainer"/>.</summary>
    double ITrainingTask<T>.ForwardBackward(ReadOnlySpan<int> exampleIndices) => Run(exampleIndices, Reduction.Mean);

    private double Run(ReadOnlySpan<int> exampleIndices, Reduction reduction)
    {
        int width = _model.Options.InputWidth;
        var batch = new T[exampleIndices.Length * width];
        var targets = new int[exampleIndices.Length];
        for (int i = 0; i < exampleIndices.Length; i++)
        {
            _features.AsSpan(exampleIndices[i] * width, width).CopyTo(batch.AsSpan(i * width));
            targets[i] = _labels[exampleIndices[i]];
        }

        var loss = SoftmaxCrossEntropy.Compute<T>(_model.Forward(batch, targets.Length), _model.Options.OutputWidth, targets, reduction);
        _model.Backward(loss.Gradient);
        return loss.Value;
    }
}

/// <summary>Text examples for the byte-level GPT proxy: fixed context, padding masked out of the loss.</summary>
public sealed class TextGradientSource<T> : IGradientSource<T>, ITrainingTask<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public const int IgnoreIndex = -100;

    private readonly GptModel<T> _model;
    private readonly byte[][] _texts;

    public TextGradientSource(GptModel<T> model, IReadOnlyList<string> texts)
    {
        _model = model;
        _texts = texts.Select(t => Encoding.UTF8.GetBytes(t)).ToArray();
    }

    public Model<T> Model => _model;

    public int ExampleCount => _texts.Length;

    public IReadOnlyList<Learning.Parameter<T>> Parameters => _model.Parameters;

    public int Context => _model.Options.ContextLength;

    /// <summary>
    /// Tokens are the first Context bytes (padded with 0); target t is byte t + 1, or the ignore index where the
    /// text has ended, so padding contributes neither loss nor gradient.
    /// </summary>
    public (int[] Tokens, int[] Targets, bool[] Mask) Batch(ReadOnlySpan<int> exampleIndices)
    {
        int context = Context;
        var tokens = new int[exampleIndices.Length * context];
        var targets = new int[tokens.Length];
        var mask = new bool[tokens.Length];
        for (int i = 0; i < exampleIndices.Length; i++)
        {
            var bytes = _texts[exampleIndices[i]];
            for (int t = 0; t < context; t++)
            {
                int row = i * context + t;
                tokens[row] = t < bytes.Length ? bytes[t] : 0;
                targets[row] = t + 1 < bytes.Length ? bytes[t + 1] : IgnoreIndex;
                mask[row] = targets[row] != IgnoreIndex;
            }
        }

        return (tokens, targets, mask);
    }

    public bool[]? ForwardBackward(ReadOnlySpan<int> exampleIndices)
    {
        var (tokens, targets, mask) = Batch(exampleIndices);
        _model.ForwardBackward(tokens, targets, new Learning.BatchShape(exampleIndices.Length, Context), Reduction.Sum);
        return mask;
    }

    double ITrainingTask<T>.ForwardBackward(ReadOnlySpan<int> exampleIndices)
    {
        var (tokens, targets, _) = Batch(exampleIndices);
        return _model.ForwardBackward(tokens, targets, new Learning.BatchShape(exampleIndices.Length, Context), Reduction.Mean);
    }
}
