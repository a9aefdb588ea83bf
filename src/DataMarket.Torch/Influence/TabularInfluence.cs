using DataMarket.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DataMarket.Torch.Influence;

/// <summary>
/// Tabular data as the torch valuation takes it: row-major features and class indices; optionally a group (seller)
/// index per row, 0..GroupCount-1, whose values are the sums over their rows.
/// </summary>
public sealed record TabularData(float[] Features, int FeatureCount, int[] Labels)
{
    public int Rows => Labels.Length;

    public int[]? Groups { get; init; }

    public int GroupCount => Groups is null || Groups.Length == 0 ? 0 : Groups.Max() + 1;
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

/// <summary>
/// LoGra values of tabular training rows on TorchSharp: trains an MLP proxy on standardised features (or takes a
/// checkpoint as is, labels as class indices), logs the projected gradients, fits the preconditioner and scores.
/// dot/cosine: a row's value is its mean influence over the test points (positive = helpful); self: its
/// self-influence (high for rows the model finds surprising, such as mislabelled ones).
/// </summary>
public static class TabularInfluence
{
    public static InfluenceResult Value(TabularData train, TabularData test, TabularInfluenceOptions options,
        InfluenceProgress? progress = null, CancellationToken cancellationToken = default) =>
        WithModel(train, test, options, progress, cancellationToken, (model, trainLoss, testLoss) => InfluenceValues.Compute(
            model, train.Rows, trainLoss, test.Rows, testLoss, options.Logra, options.Mode, options.TestBlock, options.KeepPairwise, train.Groups,
            train.GroupCount, progress, cancellationToken));

    /// <summary>
    /// The first half of a sharded valuation: trains the proxy (or loads the checkpoint) and logs the gradient store
    /// that scoring shards read (<see cref="GradientStore"/>). The caller owns the store.
    /// </summary>
    public static GradientStore LogStore(TabularData train, TabularData test, TabularInfluenceOptions options,
        InfluenceProgress? progress = null, CancellationToken cancellationToken = default) =>
        WithModel(train, test, options, progress, cancellationToken, (model, trainLoss, testLoss) => GradientStore.Log(
            model, train.Rows, trainLoss, test.Rows, testLoss, options.Logra, progress, cancellationToken));

    /// <summary>Checks the data, sets up the model (checkpoint or trained proxy) and hands it with its summed losses to <paramref name="run"/>.</summary>
    private static T WithModel<T>(TabularData train, TabularData test, TabularInfluenceOptions options, InfluenceProgress? progress, CancellationToken cancellationToken,
        Func<nn.Module, Func<Tensor, Tensor>, Func<Tensor, Tensor>, T> run)
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
        // The caller's thread may not be the one that loaded torch (a worker's thread-pool thread).
        TorchRuntime.PinThreads();
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
            using var floor = 1e-6f.ToScalar();
            var spread = x.std(0L).clamp_min(floor);
            x = (x - mean) / spread;
            q = (q - mean) / spread;
            progress?.Invoke("training", 0, options.Training.Epochs);
            model = ProxyTraining.TrainMlp(ModelConfig.ForMlp(train.FeatureCount, options.HiddenWidths, classes), x, y, options.Training, cancellationToken);
            progress?.Invoke("training", options.Training.Epochs, options.Training.Epochs);
        }

        Func<Tensor, Tensor> Loss(Tensor features, Tensor labels) => batch =>
            nn.functional.cross_entropy(model.forward(features.index(batch.to(device))), labels.index(batch.to(device)), reduction: nn.Reduction.Sum);

        using (model)
        {
            return run(model, Loss(x, y), Loss(q, qy));
        }
    }
}
