using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DataMarket.Torch.Models;

/// <summary>How a proxy model is trained: AdamW over shuffled mini-batches, the shuffle drawn from the seed.</summary>
public sealed record TrainingOptions(int Epochs = 20, int BatchSize = 64, double LearningRate = 3e-3, double WeightDecay = 1e-4, ulong Seed = 1);

/// <summary>
/// Trains proxy models with torch optimizers. Initial weights are drawn from a <see cref="torch.Generator"/> of the
/// valuation's own, seeded with <c>Seed</c> (never from torch's process-wide generator, which any other torch work in
/// the process also draws from); the batch order from the same seed. With the runtime's fixed intra-op thread count
/// the result is the same bits on every run, whatever else runs in the process.
/// </summary>
public static class ProxyTraining
{
    /// <summary>Builds an MLP classifier with seeded initial weights and trains it on features [N, d], labels [N].</summary>
    public static TabularMlp TrainMlp(ModelConfig config, Tensor features, Tensor labels, TrainingOptions options, CancellationToken cancellationToken = default)
    {
        var model = new TabularMlp(config);
        SeededInitialization.Apply(model, options.Seed);
        model.to(features.device);
        Train(model, features.shape[0], options, batch =>
            nn.functional.cross_entropy(model.forward(features.index(batch)), labels.index(batch)), cancellationToken);
        return model;
    }

    /// <summary>
    /// Builds a byte GPT and trains it on next-byte prediction. Tokens [N, T] int64, valid [N, T] bool; targets are
    /// the next token, -100 where the next position is padding or past the end.
    /// </summary>
    public static ByteGpt TrainGpt(ModelConfig config, Tensor tokens, Tensor valid, TrainingOptions options, CancellationToken cancellationToken = default)
    {
        var model = new ByteGpt(config);
        SeededInitialization.Apply(model, options.Seed);
        model.to(tokens.device);
        var targets = NextTokenTargets(tokens, valid);
        Train(model, tokens.shape[0], options, batch =>
        {
            var logits = model.forward(tokens.index(batch), valid.index(batch));
            return nn.functional.cross_entropy(logits.flatten(0, 1), targets.index(batch).flatten(), ignore_index: -100);
        }, cancellationToken);
        return model;
    }

    /// <summary>Next-token targets: tokens shifted left by one, -100 where no valid next token exists.</summary>
    public static Tensor NextTokenTargets(Tensor tokens, Tensor valid)
    {
        using var scope = NewDisposeScope();
        var length = tokens.shape[1];
        using var ignored = (-100).ToScalar();
        var shifted = torch.full_like(tokens, ignored);
        var nextValid = valid[.., 1..];
        shifted[.., ..(int)(length - 1)] = torch.where(nextValid, tokens[.., 1..], torch.full_like(tokens[.., 1..], ignored));
        return shifted.MoveToOuterDisposeScope();
    }

    /// <summary>The token is checked before every batch: a cancelled valuation stops training within one batch.</summary>
    private static void Train(nn.Module model, long rows, TrainingOptions options, Func<Tensor, Tensor> loss, CancellationToken cancellationToken)
    {
        model.train();
        using var optimizer = new KeptScalarAdamW(model.parameters(), options.LearningRate, options.WeightDecay);
        var random = new Random(unchecked((int)options.Seed));
        var order = Enumerable.Range(0, (int)rows).ToArray();
        var device = model.parameters().First().device;
        for (var epoch = 0; epoch < options.Epochs; epoch++)
        {
            random.Shuffle(order);
            for (var start = 0; start < order.Length; start += options.BatchSize)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var batch = torch.tensor(order.AsSpan(start, Math.Min(options.BatchSize, order.Length - start)).ToArray(), dtype: int64, device: device);
                model.zero_grad();
                loss(batch).backward();
                optimizer.Step();
            }
        }

        model.eval();
    }
}

/// <summary>
/// AdamW (decoupled weight decay, PyTorch's defaults β = (0.9, 0.999), ε = 1e-8) with the same ops in the same order
/// as TorchSharp's <c>optim.AdamW</c>, so the same bits, but every scalar operand held in a variable until the step
/// ends. TorchSharp's optimizer passes temporaries converted from double; the finalizer thread may free one while
/// libtorch still reads it, which failed a training now and then with "Expected false to be true" in Scalar::toFloat.
/// </summary>
internal sealed class KeptScalarAdamW : IDisposable
{
    private const double Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-8;
    private readonly List<(Parameter Parameter, Tensor Mean, Tensor Square)> _state;
    private readonly double _learningRate;
    private readonly double _weightDecay;
    private long _step;

    public KeptScalarAdamW(IEnumerable<Parameter> parameters, double learningRate, double weightDecay)
    {
        _learningRate = learningRate;
        _weightDecay = weightDecay;
        _state = parameters.Select(p => (p, torch.zeros_like(p).DetachFromDisposeScope(), torch.zeros_like(p).DetachFromDisposeScope())).ToList();
    }

    public void Step()
    {
        _step++;
        using var noGrad = torch.no_grad();
        using var scope = NewDisposeScope();
        using var decay = (1 - _learningRate * _weightDecay).ToScalar();
        using var beta1 = Beta1.ToScalar();
        using var beta2 = Beta2.ToScalar();
        using var oneMinusBeta1 = (1 - Beta1).ToScalar();
        using var oneMinusBeta2 = (1 - Beta2).ToScalar();
        using var epsilon = Epsilon.ToScalar();
        // Tensor.add_(Scalar) passes an alpha of 1 that it converts on the spot; under GC pressure that temporary was
        // finalized while libtorch read it (toFloat: "Expected false to be true"), so the alpha is held here too.
        using var one = 1.0.ToScalar();
        using var correction2 = Math.Sqrt(1 - Math.Pow(Beta2, _step)).ToScalar();
        using var stepSize = (-_learningRate / (1 - Math.Pow(Beta1, _step))).ToScalar();
        foreach (var (parameter, mean, square) in _state)
        {
            if (parameter.grad is not { } grad)
            {
                continue;
            }

            parameter.mul_(decay);
            mean.mul_(beta1).add_(grad, oneMinusBeta1);
            square.mul_(beta2).addcmul_(grad, grad, oneMinusBeta2);
            var denominator = (square.sqrt() / correction2).add_(epsilon, one);
            parameter.addcdiv_(mean, denominator, stepSize);
        }
    }

    public void Dispose()
    {
        foreach (var (_, mean, square) in _state)
        {
            mean.Dispose();
            square.Dispose();
        }
    }
}

/// <summary>
/// Draws a module's initial weights from a generator seeded by the caller, with PyTorch's default distributions:
/// Linear weight and bias U(±1/√in) (kaiming-uniform with a = √5), Embedding N(0, 1), LayerNorm ones and zeros.
/// Modules are visited in registration order, so the same seed gives the same weights in any process.
/// </summary>
public static class SeededInitialization
{
    public static void Apply(nn.Module model, ulong seed)
    {
        using var generator = new torch.Generator(seed);
        using var noGrad = torch.no_grad();
        foreach (var (_, module) in model.named_modules())
        {
            switch (module)
            {
                case TorchSharp.Modules.Linear linear:
                    var bound = 1.0 / Math.Sqrt(linear.weight!.shape[1]);
                    linear.weight.uniform_(-bound, bound, generator);
                    linear.bias?.uniform_(-bound, bound, generator);
                    break;
                case TorchSharp.Modules.Embedding embedding:
                    embedding.weight!.normal_(0, 1, generator);
                    break;
                case TorchSharp.Modules.LayerNorm norm:
                    norm.weight?.fill_(1);
                    norm.bias?.zero_();
                    break;
            }
        }
    }
}
