using DataMarket.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DataMarket.Torch.Influence;

/// <summary>Tabular data as the torch valuation takes it: row-major features and class indices.</summary>
public sealed record TabularData(float[] Features, int FeatureCount, int[] Labels)
{
    public int Rows => Labels.Length;
}

public sealed record TabularInfluenceOptions
{
    public TorchLograOptions Logra { get; init; } = new();
    public InfluenceMode Mode { get; init; } = InfluenceMode.Dot;

    /// <summary>A checkpoint (.safetensors, .pt, .pth, .bin) used as is; null trains an MLP proxy.</summary>
    public string? CheckpointPath { get; init; }

    public IReadOnlyList<int> HiddenWidths { get; init; } = [64];
    public TrainingOptions Training { get; init; } = new(Epochs: 20, BatchSize: 32);
    public bool KeepPairwise { get; init; }

    /// <summary>Test points scored per GEMM; fixed so the result never depends on anything but the inputs.</summary>
    public int TestBlock { get; init; } = 16;
}

/// <summary>Per training row: value and standard error over the test points (NaN for self-influence).</summary>
public sealed record TabularInfluenceResult(double[] Values, double[] StandardErrors, double[,]? Pairwise, long Dimension);

/// <summary>
/// LoGra values of tabular training rows on TorchSharp: trains an MLP proxy on standardised features (or takes a
/// checkpoint as is, labels as class indices), logs the projected gradients, fits the preconditioner and scores.
/// dot/cosine: a row's value is its mean influence over the test points (positive = helpful); self: its
/// self-influence (high for rows the model finds surprising, such as mislabelled ones).
/// </summary>
public static class TabularInfluence
{
    public static TabularInfluenceResult Value(TabularData train, TabularData test, TabularInfluenceOptions options,
        Action<string, long, long>? progress = null, CancellationToken cancellationToken = default)
    {
        if (train.Rows == 0)
        {
            throw new CheckpointException("There is no training data to value.");
        }

        if (test.Rows == 0 && options.Mode != InfluenceMode.Self)
        {
            throw new CheckpointException("The test task has no examples.");
        }

        if (train.FeatureCount != test.FeatureCount)
        {
            throw new CheckpointException($"The training data has {train.FeatureCount} features but the test task has {test.FeatureCount}.");
        }

        var device = TorchRuntime.Device;
        using var scope = NewDisposeScope();
        var x = tensor(train.Features, [train.Rows, train.FeatureCount]).to(device);
        var y = tensor(train.Labels.Select(l => (long)l).ToArray()).to(device);
        var q = tensor(test.Features, [test.Rows, test.FeatureCount]).to(device);
        var qy = tensor(test.Labels.Select(l => (long)l).ToArray()).to(device);
        var classes = Math.Max(2, train.Labels.Concat(test.Labels).DefaultIfEmpty(0).Max() + 1);

        TabularMlp model;
        if (options.CheckpointPath is { } path)
        {
            var (config, module) = Checkpoints.Load(path);
            if (module is not TabularMlp mlp)
            {
                throw new CheckpointException($"{path}: a {config.Architecture} checkpoint cannot value tabular data (it needs an MLP).");
            }

            if (config.InputWidth != train.FeatureCount)
            {
                throw new CheckpointException($"{path}: the model takes {config.InputWidth} features but the data has {train.FeatureCount}.");
            }

            if (classes > config.OutputWidth && train.Labels.Concat(test.Labels).Max() >= config.OutputWidth)
            {
                throw new CheckpointException($"{path}: the model has {config.OutputWidth} outputs but a label is {train.Labels.Concat(test.Labels).Max()} (labels must be class indices 0..{config.OutputWidth - 1}).");
            }

            model = mlp;
            model.to(device);
            model.eval();
        }
        else
        {
            // Standardise with the training rows' mean and spread, so the proxy trains the same whatever the units.
            var mean = x.mean([0L]);
            var spread = x.std(0L).clamp_min(1e-6f);
            x = (x - mean) / spread;
            q = (q - mean) / spread;
            progress?.Invoke("training", 0, options.Training.Epochs);
            model = ProxyTraining.TrainMlp(ModelConfig.ForMlp(train.FeatureCount, options.HiddenWidths, classes), x, y, options.Training);
            progress?.Invoke("training", options.Training.Epochs, options.Training.Epochs);
        }

        Func<Tensor, Tensor> Loss(Tensor features, Tensor labels) => batch =>
            nn.functional.cross_entropy(model.forward(features.index(batch.to(device))), labels.index(batch.to(device)), reduction: nn.Reduction.Sum);

        var trainLoss = Loss(x, y);
        using var logra = TorchLogra.Create(model, options.Logra, train.Rows, trainLoss);
        progress?.Invoke("logging", 0, train.Rows);
        using var store = logra.Log(train.Rows, trainLoss);
        progress?.Invoke("logging", train.Rows, train.Rows);
        cancellationToken.ThrowIfCancellationRequested();
        logra.Fit(store);

        var values = new double[train.Rows];
        var errors = new double[train.Rows];
        if (options.Mode == InfluenceMode.Self)
        {
            using var self = logra.SelfInfluence(store);
            self.data<double>().CopyTo(values, 0);
            Array.Fill(errors, double.NaN);
            return new TabularInfluenceResult(values, errors, null, logra.Dimension);
        }

        // Sums over test points run in test-point order in float64, one fixed block at a time.
        var sum = new double[train.Rows];
        var squares = new double[train.Rows];
        var pairwise = options.KeepPairwise ? new double[test.Rows, train.Rows] : null;
        using var queries = logra.Log(test.Rows, Loss(q, qy));
        for (long start = 0; start < test.Rows; start += options.TestBlock)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var count = Math.Min(options.TestBlock, test.Rows - start);
            using var scores = logra.Score(queries.narrow(0, start, count), store, options.Mode);
            var block = scores.data<double>().ToArray();
            for (var r = 0; r < count; r++)
            {
                for (var t = 0; t < train.Rows; t++)
                {
                    var s = block[r * train.Rows + t];
                    sum[t] += s;
                    squares[t] += s * s;
                    if (pairwise is not null)
                    {
                        pairwise[start + r, t] = s;
                    }
                }
            }

            progress?.Invoke("scoring", start + count, test.Rows);
        }

        for (var t = 0; t < train.Rows; t++)
        {
            var m = test.Rows;
            values[t] = sum[t] / m;
            errors[t] = m > 1 ? Math.Sqrt(Math.Max(0, (squares[t] - m * values[t] * values[t]) / (m - 1)) / m) : double.NaN;
        }

        return new TabularInfluenceResult(values, errors, pairwise, logra.Dimension);
    }
}
