using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DataMarket.Torch.Influence;

/// <summary>
/// Captures each watched Linear layer's input x and output gradient dy for one forward/backward pass. TorchSharp 0.107
/// has no backward hooks, so a forward hook keeps a copy of the input, asks the output to retain its gradient, and
/// hands an alias on (returning the output itself left an empty handle behind); dy is read from output.grad after
/// backward().
/// </summary>
public sealed class LinearCapture : IDisposable
{
    private readonly List<Action> _removeHooks = [];
    private readonly Dictionary<string, (Tensor Input, Tensor Output)> _captured = new(StringComparer.Ordinal);

    public LinearCapture(nn.Module module, IReadOnlyCollection<string>? names = null)
    {
        Layers = module.named_modules()
            // A name filter watches every Linear layer whose name contains it ("fc" watches blocks.0.fc and blocks.1.fc).
            .Where(m => m.module is Linear && (names is null || names.Count == 0 || names.Any(n => m.name.Contains(n, StringComparison.Ordinal))))
            .Select(m => (m.name, (Linear)m.module)).ToList();
        if (Layers.Count == 0)
        {
            throw new ArgumentException(names is null ? "The model has no Linear layer to watch." : $"No Linear layer name contains {string.Join(" or ", names)}.", nameof(names));
        }

        foreach (var (name, linear) in Layers)
        {
            var remover = linear.register_forward_hook((_, input, output) =>
            {
                Release(name);
                var kept = input.detach().clone().DetachFromDisposeScope();
                output.retain_grad();
                // Kept past the model's own dispose scopes (the GPT's forward opens one) until the next pass.
                _captured[name] = (kept, output.DetachFromDisposeScope());
                return output.alias();
            });
            _removeHooks.Add(remover.remove);
        }
    }

    /// <summary>The watched layers in module order (the order their blocks take in a gradient row).</summary>
    public IReadOnlyList<(string Name, Linear Layer)> Layers { get; }

    /// <summary>x [rows, in] and dy [rows, out] of the last pass, token dimensions kept as [B, T, ...].</summary>
    public (Tensor X, Tensor Dy) Get(string name)
    {
        var (input, output) = _captured.TryGetValue(name, out var c) ? c : throw new InvalidOperationException($"Layer {name} did not run.");
        var gradient = output.grad ?? throw new InvalidOperationException($"Layer {name} has no output gradient; call backward() first.");
        return (input, gradient);
    }

    /// <summary>
    /// Runs forward and backward of <paramref name="loss"/> with the watched layers' weights out of autograd: LoGra
    /// reads each layer's x and dy, never dW, and the weight gradients are a third of a backward pass. A layer without a
    /// bias keeps its weight in, so dy still reaches a first layer whose input needs no gradient; dy's bits are the
    /// same either way.
    /// </summary>
    public void ForwardBackward(Func<Tensor> loss)
    {
        var frozen = Layers.Where(l => l.Layer.bias is { requires_grad: true } && l.Layer.weight!.requires_grad).Select(l => l.Layer.weight!).ToList();
        // Before the forward: a graph built with a weight in it computes that weight's gradient whatever is set later.
        foreach (var weight in frozen)
        {
            weight.requires_grad = false;
        }

        try
        {
            loss().backward();
        }
        finally
        {
            foreach (var weight in frozen)
            {
                weight.requires_grad = true;
            }
        }
    }

    private void Release(string name)
    {
        if (_captured.Remove(name, out var old))
        {
            old.Input.Dispose();
            old.Output.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (var remove in _removeHooks)
        {
            remove();
        }

        foreach (var name in _captured.Keys.ToList())
        {
            Release(name);
        }
    }
}
