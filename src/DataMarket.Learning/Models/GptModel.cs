using System.Numerics;
using System.Numerics.Tensors;
using DataMarket.Compute;
using DataMarket.Learning.Layers;
using DataMarket.Learning.Losses;

namespace DataMarket.Learning.Models;

/// <summary>Shape of the byte-level GPT: vocabulary 256 (bytes), context length, layers, heads, width.</summary>
public sealed record GptOptions(int ContextLength = 64, int Layers = 2, int Heads = 2, int Width = 64, int VocabularySize = 256, ulong Seed = 1);

/// <summary>
/// GPT-2 style decoder: token + position embeddings, pre-norm transformer blocks, final LayerNorm and
/// an untied linear head. Parameter names follow "wte", "wpe", "blocks.i...", "ln_f", "lm_head".
/// </summary>
public sealed class GptModel<T> : Model<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Embedding<T> _tokenEmbedding;
    private readonly Embedding<T> _positionEmbedding;
    private readonly TransformerBlock<T>[] _blocks;
    private readonly LayerNorm<T> _finalNorm;
    private readonly Linear<T> _head;
    private BatchShape _shape;

    public GptModel(GptOptions options, ComputeBackend? backend = null)
    {
        Options = options;
        var random = new SeededRandom(options.Seed);
        _tokenEmbedding = new Embedding<T>(options.VocabularySize, options.Width, random);
        _positionEmbedding = new Embedding<T>(options.ContextLength, options.Width, random);
        _blocks = Enumerable.Range(0, options.Layers).Select(_ => new TransformerBlock<T>(options.Width, options.Heads, random, backend)).ToArray();
        _finalNorm = new LayerNorm<T>(options.Width);
        _head = new Linear<T>(options.Width, options.VocabularySize, bias: false, random, backend);
    }

    public GptOptions Options { get; }

    protected override IEnumerable<(string Name, Parameter<T> Parameter)> EnumerateParameters()
    {
        yield return ("wte.weight", _tokenEmbedding.Weight);
        yield return ("wpe.weight", _positionEmbedding.Weight);
        for (int i = 0; i < _blocks.Length; i++)
        {
            foreach (var (name, parameter) in _blocks[i].NamedParameters())
            {
                yield return ($"blocks.{i}.{name}", parameter);
            }
        }
        yield return ("ln_f.weight", _finalNorm.Gamma);
        yield return ("ln_f.bias", _finalNorm.Beta);
        yield return ("lm_head.weight", _head.Weight);
    }

    protected override IEnumerable<Layer<T>> TopLevelLayers() => [.. _blocks, _head];

    /// <summary>Tokens are batch x sequence (sequence ≤ ContextLength); returns logits, rows x VocabularySize.</summary>
    public T[] Forward(int[] tokens, BatchShape shape)
    {
        if (tokens.Length != shape.Rows)
        {
            throw new ArgumentException($"Expected {shape.Rows} tokens for shape {shape}, got {tokens.Length}.", nameof(tokens));
        }
        if (shape.Sequence > Options.ContextLength)
        {
            throw new ArgumentException($"Sequence length {shape.Sequence} exceeds the context length {Options.ContextLength}.");
        }
        _shape = shape;
        var positions = new int[shape.Rows];
        for (int r = 0; r < positions.Length; r++)
        {
            positions[r] = r % shape.Sequence;
        }
        var hidden = _tokenEmbedding.Forward(tokens);
        TensorPrimitives.Add<T>(hidden, _positionEmbedding.Forward(positions), hidden);
        foreach (var block in _blocks)
        {
            hidden = block.Forward(hidden, shape);
        }
        return _head.Forward(_finalNorm.Forward(hidden, shape), shape);
    }

    public void Backward(T[] logitsGradient)
    {
        var gradient = _finalNorm.Backward(_head.Backward(logitsGradient));
        for (int i = _blocks.Length - 1; i >= 0; i--)
        {
            gradient = _blocks[i].Backward(gradient);
        }
        _tokenEmbedding.Backward(gradient);
        _positionEmbedding.Backward(gradient);
    }

    /// <summary>Forward, next-token cross-entropy against <paramref name="targets"/>, and backward; returns the loss.</summary>
    public double ForwardBackward(int[] tokens, int[] targets, BatchShape shape, Reduction reduction = Reduction.Mean)
    {
        var logits = Forward(tokens, shape);
        var loss = SoftmaxCrossEntropy.Compute<T>(logits, Options.VocabularySize, targets, reduction);
        Backward(loss.Gradient);
        return loss.Value;
    }

    /// <summary>Mean next-token cross-entropy (nats) without touching gradients.</summary>
    public double Loss(int[] tokens, int[] targets, BatchShape shape) =>
        SoftmaxCrossEntropy.Compute<T>(Forward(tokens, shape), Options.VocabularySize, targets).Value;
}
