using System.Text;
using DataMarket.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DataMarket.Torch.Influence;

public sealed record TextInfluenceOptions
{
    public TorchLograOptions Logra { get; init; } = new();
    public InfluenceMode Mode { get; init; } = InfluenceMode.Dot;

    /// <summary>A byte-GPT checkpoint (.safetensors, .pt, .pth, .bin) used as is; null trains a GPT proxy.</summary>
    public string? CheckpointPath { get; init; }

    /// <summary>The proxy trained when there is no checkpoint.</summary>
    public ModelConfig Gpt { get; init; } = ModelConfig.ForGpt(contextLength: 64, layers: 2, heads: 2, width: 64);

    public TrainingOptions Training { get; init; } = new(Epochs: 20, BatchSize: 32);
    public bool KeepPairwise { get; init; }

    /// <summary>Test points scored per GEMM; fixed so the result never depends on anything but the inputs.</summary>
    public int TestBlock { get; init; } = 16;
}

/// <summary>
/// LoGra values of text examples on TorchSharp with a byte-level GPT proxy: each example is its first context-length
/// UTF-8 bytes, right-padded; the loss is the summed next-byte cross-entropy, padding masked out of attention and loss.
/// </summary>
public static class TextInfluence
{
    public static InfluenceResult Value(IReadOnlyList<string> train, IReadOnlyList<string> test, TextInfluenceOptions options,
        int[]? groups = null, InfluenceProgress? progress = null, CancellationToken cancellationToken = default)
    {
        if (train.Count == 0)
        {
            throw new CheckpointException("There is no training data to value.");
        }

        if (test.Count == 0 && options.Mode != InfluenceMode.Self)
        {
            throw new CheckpointException("The test task has no examples.");
        }

        var device = TorchRuntime.Device;
        ByteGpt model;
        ModelConfig config;
        if (options.CheckpointPath is { } path)
        {
            var (loaded, module) = Checkpoints.Load(path);
            if (module is not ByteGpt gpt)
            {
                throw new CheckpointException($"{path}: a {loaded.Architecture} checkpoint cannot value text (it needs a byte GPT).");
            }

            (model, config) = (gpt, loaded);
            model.to(device);
            model.eval();
        }
        else
        {
            config = options.Gpt;
            model = null!;
        }

        using var scope = NewDisposeScope();
        var (tokens, valid) = Encode(train, config.ContextLength, device);
        var (testTokens, testValid) = Encode(test, config.ContextLength, device);
        if (options.CheckpointPath is null)
        {
            progress?.Invoke("training", 0, options.Training.Epochs);
            model = ProxyTraining.TrainGpt(config, tokens, valid, options.Training, cancellationToken);
            progress?.Invoke("training", options.Training.Epochs, options.Training.Epochs);
        }

        Func<Tensor, Tensor> Loss(Tensor x, Tensor mask)
        {
            var targets = ProxyTraining.NextTokenTargets(x, mask);
            return batch =>
            {
                var rows = batch.to(device);
                var logits = model.forward(x.index(rows), mask.index(rows));
                return nn.functional.cross_entropy(logits.flatten(0, 1), targets.index(rows).flatten(), ignore_index: -100, reduction: nn.Reduction.Sum);
            };
        }

        using (model)
        {
            var groupCount = groups is null || groups.Length == 0 ? 0 : groups.Max() + 1;
            return InfluenceValues.Compute(model, train.Count, Loss(tokens, valid), test.Count, Loss(testTokens, testValid), options.Logra, options.Mode,
                options.TestBlock, options.KeepPairwise, groups, groupCount, progress, cancellationToken);
        }
    }

    /// <summary>Tokens [N, context] (the first context UTF-8 bytes, 0 after the end) and valid [N, context].</summary>
    public static (Tensor Tokens, Tensor Valid) Encode(IReadOnlyList<string> texts, int context, Device device)
    {
        var tokens = new long[texts.Count * context];
        var valid = new bool[tokens.Length];
        for (var i = 0; i < texts.Count; i++)
        {
            var bytes = Encoding.UTF8.GetBytes(texts[i]);
            for (var t = 0; t < Math.Min(context, bytes.Length); t++)
            {
                tokens[i * context + t] = bytes[t];
                valid[i * context + t] = true;
            }
        }

        // An empty text still keeps position 0 valid, so attention always has a key (it carries no loss: no next byte).
        for (var i = 0; i < texts.Count; i++)
        {
            valid[i * context] = true;
        }

        return (tensor(tokens, [texts.Count, context]).to(device), tensor(valid, [texts.Count, context]).to(device));
    }
}
