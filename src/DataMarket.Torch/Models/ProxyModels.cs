using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DataMarket.Torch.Models;

/// <summary>
/// Tabular MLP: input → hidden widths (each followed by ReLU) → output logits. Parameter names
/// ("layers.0.weight", "layers.2.bias", ...) are those of PyTorch's <c>nn.Sequential</c> under an attribute
/// <c>layers</c>, so a PyTorch state dict of the same module loads as is.
/// </summary>
public sealed class TabularMlp : Module<Tensor, Tensor>
{
    private readonly Sequential layers;

    public TabularMlp(ModelConfig config) : base(nameof(TabularMlp))
    {
        Config = config;
        var modules = new List<(string, Module<Tensor, Tensor>)>();
        var width = config.InputWidth;
        var index = 0;
        foreach (var hidden in config.HiddenWidths)
        {
            modules.Add(($"{index++}", Linear(width, hidden)));
            modules.Add(($"{index++}", ReLU()));
            width = hidden;
        }

        modules.Add(($"{index}", Linear(width, config.OutputWidth)));
        layers = Sequential(modules);
        RegisterComponents();
    }

    public ModelConfig Config { get; }

    public override Tensor forward(Tensor features) => layers.forward(features);
}

/// <summary>
/// Byte-level GPT (GPT-2 layout, pre-norm): token and position embeddings, blocks of causal self-attention and a
/// 4x MLP, a final LayerNorm and an untied head. Padding is masked: a key at a padded position is never attended to,
/// and padded targets (-100) carry no loss. Names follow wte, wpe, blocks.i.{ln1,attn.qkv,attn.proj,ln2,fc,proj}, ln_f,
/// lm_head. Sub-modules are invoked with <c>call</c>, not <c>forward</c>, so forward hooks (LoGra's capture) run.
/// </summary>
public sealed class ByteGpt : Module<Tensor, Tensor, Tensor>
{
    private readonly Embedding wte;
    private readonly Embedding wpe;
    private readonly ModuleList<GptBlock> blocks;
    private readonly LayerNorm ln_f;
    private readonly Linear lm_head;

    public ByteGpt(ModelConfig config) : base(nameof(ByteGpt))
    {
        Config = config;
        wte = Embedding(config.VocabularySize, config.Width);
        wpe = Embedding(config.ContextLength, config.Width);
        blocks = new ModuleList<GptBlock>(Enumerable.Range(0, config.Layers).Select(_ => new GptBlock(config.Width, config.Heads)).ToArray());
        ln_f = LayerNorm(config.Width);
        lm_head = Linear(config.Width, config.VocabularySize, hasBias: false);
        RegisterComponents();
    }

    public ModelConfig Config { get; }

    /// <summary>Tokens [B, T] (int64), valid [B, T] (bool, false at padding); returns logits [B, T, vocabulary].</summary>
    public override Tensor forward(Tensor tokens, Tensor valid)
    {
        var length = tokens.shape[1];
        if (length > Config.ContextLength)
        {
            throw new ArgumentException($"Sequence length {length} exceeds the context length {Config.ContextLength}.", nameof(tokens));
        }

        using var scope = NewDisposeScope();
        var positions = arange(length, dtype: int64, device: tokens.device);
        var hidden = wte.call(tokens).add(wpe.call(positions), HeldScalars.One);

        // [B, 1, T, T]: query t may see key s when s <= t and s is not padding. Every query keeps key 0 (right
        // padding), so no row is fully masked.
        var causal = ones(length, length, dtype: @bool, device: tokens.device).tril();
        var mask = causal.unsqueeze(0).logical_and(valid.unsqueeze(1)).unsqueeze(1);
        foreach (var block in blocks)
        {
            hidden = block.call(hidden, mask);
        }

        return lm_head.call(ln_f.call(hidden)).MoveToOuterDisposeScope();
    }
}

/// <summary>One pre-norm transformer block: x + attn(ln1(x)), then x + proj(gelu(fc(ln2(x)))).</summary>
public sealed class GptBlock : Module<Tensor, Tensor, Tensor>
{
    private readonly LayerNorm ln1;
    private readonly CausalSelfAttention attn;
    private readonly LayerNorm ln2;
    private readonly Linear fc;
    private readonly Linear proj;

    public GptBlock(long width, long heads) : base(nameof(GptBlock))
    {
        ln1 = LayerNorm(width);
        attn = new CausalSelfAttention(width, heads);
        ln2 = LayerNorm(width);
        fc = Linear(width, 4 * width);
        proj = Linear(4 * width, width);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor mask)
    {
        // Additions pass a held alpha (HeldScalars): they run for every block of every batch.
        var attended = hidden.add(attn.call(ln1.call(hidden), mask), HeldScalars.One);
        return attended.add(proj.call(functional.gelu(fc.call(ln2.call(attended)))), HeldScalars.One);
    }
}

/// <summary>Multi-head self-attention with one fused qkv projection; the mask carries causality and padding.</summary>
public sealed class CausalSelfAttention : Module<Tensor, Tensor, Tensor>
{
    private readonly Linear qkv;
    private readonly Linear proj;
    private readonly long _heads;

    public CausalSelfAttention(long width, long heads) : base(nameof(CausalSelfAttention))
    {
        if (width % heads != 0)
        {
            throw new ArgumentException($"Width {width} is not divisible by {heads} heads.", nameof(heads));
        }

        _heads = heads;
        qkv = Linear(width, 3 * width);
        proj = Linear(width, width);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor mask)
    {
        long batch = hidden.shape[0], length = hidden.shape[1], width = hidden.shape[2];
        var parts = qkv.call(hidden).view(batch, length, 3, _heads, width / _heads).permute(2, 0, 3, 1, 4);
        var attended = functional.scaled_dot_product_attention(parts[0], parts[1], parts[2], attn_mask: mask);
        return proj.call(attended.transpose(1, 2).reshape(batch, length, width));
    }
}
