using System.Diagnostics;
using System.Numerics;
using DataMarket.Compute;
using DataMarket.Learning.Losses;
using DataMarket.Learning.Models;
using DataMarket.Learning.Optimizers;

namespace DataMarket.Learning.Training;

/// <summary>Something the trainer can fit: a set of examples addressed by index.</summary>
public interface ITrainingTask<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    int ExampleCount { get; }

    IReadOnlyList<Parameter<T>> Parameters { get; }

    /// <summary>Runs forward and backward on the examples, accumulating gradients; returns the mean loss.</summary>
    double ForwardBackward(ReadOnlySpan<int> exampleIndices);
}

public sealed record TrainerOptions(int Epochs = 1, int BatchSize = 32, ulong Seed = 1, int? MaxSteps = null);

public sealed record TrainingProgress(int Epoch, int Step, double Loss, long ExamplesSeen, TimeSpan Elapsed);

public sealed record TrainingSummary(int Steps, long ExamplesSeen, double FinalLoss, double MeanLastEpochLoss, TimeSpan Elapsed)
{
    public double ExamplesPerSecond => ExamplesSeen / Math.Max(Elapsed.TotalSeconds, 1e-9);
}

/// <summary>Mini-batch training: seeded shuffle per epoch, zero grad, forward/backward, optimizer step.</summary>
public static class Trainer
{
    public static TrainingSummary Fit<T>(ITrainingTask<T> task, Optimizer<T> optimizer, TrainerOptions options,
        Action<TrainingProgress>? progress = null) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.BatchSize);
        var random = new SeededRandom(options.Seed);
        var order = Enumerable.Range(0, task.ExampleCount).ToArray();
        var clock = Stopwatch.StartNew();
        int step = 0;
        long seen = 0;
        double last = double.NaN, epochTotal = 0;
        int epochSteps = 0;
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            random.Shuffle<int>(order);
            epochTotal = 0;
            epochSteps = 0;
            for (int start = 0; start < order.Length; start += options.BatchSize)
            {
                if (options.MaxSteps is { } max && step >= max)
                {
                    return new TrainingSummary(step, seen, last, epochTotal / Math.Max(1, epochSteps), clock.Elapsed);
                }
                var batch = order.AsSpan(start, Math.Min(options.BatchSize, order.Length - start));
                optimizer.ZeroGradients();
                last = task.ForwardBackward(batch);
                optimizer.Step();
                step++;
                epochSteps++;
                epochTotal += last;
                seen += batch.Length;
                progress?.Invoke(new TrainingProgress(epoch, step, last, seen, clock.Elapsed));
            }
        }
        return new TrainingSummary(step, seen, last, epochTotal / Math.Max(1, epochSteps), clock.Elapsed);
    }
}

/// <summary>Classification with an MLP: features examples x InputWidth, integer labels, mean cross-entropy.</summary>
public sealed class ClassificationTask<T>(MlpModel<T> model, T[] features, int[] labels) : ITrainingTask<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public int ExampleCount => labels.Length;

    public IReadOnlyList<Parameter<T>> Parameters => model.Parameters;

    public double ForwardBackward(ReadOnlySpan<int> exampleIndices)
    {
        int width = model.Options.InputWidth;
        var batch = new T[exampleIndices.Length * width];
        var targets = new int[exampleIndices.Length];
        for (int i = 0; i < exampleIndices.Length; i++)
        {
            features.AsSpan(exampleIndices[i] * width, width).CopyTo(batch.AsSpan(i * width));
            targets[i] = labels[exampleIndices[i]];
        }
        var loss = SoftmaxCrossEntropy.Compute<T>(model.Forward(batch, targets.Length), model.Options.OutputWidth, targets);
        model.Backward(loss.Gradient);
        return loss.Value;
    }
}

/// <summary>Regression with an MLP: targets examples x OutputWidth, mean squared error.</summary>
public sealed class RegressionTask<T>(MlpModel<T> model, T[] features, T[] targets) : ITrainingTask<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public int ExampleCount => targets.Length / model.Options.OutputWidth;

    public IReadOnlyList<Parameter<T>> Parameters => model.Parameters;

    public double ForwardBackward(ReadOnlySpan<int> exampleIndices)
    {
        int width = model.Options.InputWidth, outputs = model.Options.OutputWidth;
        var batch = new T[exampleIndices.Length * width];
        var batchTargets = new T[exampleIndices.Length * outputs];
        for (int i = 0; i < exampleIndices.Length; i++)
        {
            features.AsSpan(exampleIndices[i] * width, width).CopyTo(batch.AsSpan(i * width));
            targets.AsSpan(exampleIndices[i] * outputs, outputs).CopyTo(batchTargets.AsSpan(i * outputs));
        }
        var loss = MeanSquaredError.Compute<T>(model.Forward(batch, exampleIndices.Length), batchTargets);
        model.Backward(loss.Gradient);
        return loss.Value;
    }
}

/// <summary>
/// Next-byte prediction: example i is the window text[i*stride .. i*stride+context], predicting each
/// following byte.
/// </summary>
public sealed class LanguageModelTask<T> : ITrainingTask<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly GptModel<T> _model;
    private readonly byte[] _text;
    private readonly int _context;
    private readonly int _stride;

    public LanguageModelTask(GptModel<T> model, byte[] text, int? context = null, int? stride = null)
    {
        _model = model;
        _text = text;
        _context = context ?? model.Options.ContextLength;
        _stride = stride ?? _context;
        if (text.Length <= _context)
        {
            throw new ArgumentException($"Text of {text.Length} bytes is too short for context {_context}.");
        }
    }

    public int ExampleCount => (_text.Length - _context - 1) / _stride + 1;

    public IReadOnlyList<Parameter<T>> Parameters => _model.Parameters;

    public (int[] Tokens, int[] Targets) Window(ReadOnlySpan<int> exampleIndices)
    {
        var tokens = new int[exampleIndices.Length * _context];
        var targets = new int[tokens.Length];
        for (int i = 0; i < exampleIndices.Length; i++)
        {
            int start = exampleIndices[i] * _stride;
            for (int t = 0; t < _context; t++)
            {
                tokens[i * _context + t] = _text[start + t];
                targets[i * _context + t] = _text[start + t + 1];
            }
        }
        return (tokens, targets);
    }

    public double ForwardBackward(ReadOnlySpan<int> exampleIndices)
    {
        var (tokens, targets) = Window(exampleIndices);
        return _model.ForwardBackward(tokens, targets, new BatchShape(exampleIndices.Length, _context));
    }
}
