using System.Numerics;
using System.Numerics.Tensors;
using DataMarket.Compute;

namespace DataMarket.Learning.Layers;

/// <summary>
/// GPT-2 style causal multi-head self-attention: qkv = x W_qkvᵀ + b, per head P = softmax(mask(Q Kᵀ / √d)),
/// O = P V, y = O W_projᵀ + b. Q, K and V are read in place from the qkv rows through GEMM leading
/// dimensions, so no head is copied out.
/// </summary>
public sealed class CausalSelfAttention<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private T[]? _qkv;
    private T[]? _probabilities;
    private BatchShape _shape;

    public CausalSelfAttention(int width, int heads, SeededRandom random, ComputeBackend? backend = null) : base(backend)
    {
        if (width % heads != 0)
        {
            throw new ArgumentException($"Width {width} is not divisible by {heads} heads.");
        }
        Width = width;
        Heads = heads;
        QueryKeyValue = new Linear<T>(width, 3 * width, bias: true, random, Backend);
        Projection = new Linear<T>(width, width, bias: true, random, Backend);
    }

    public int Width { get; }

    public int Heads { get; }

    public int HeadWidth => Width / Heads;

    public Linear<T> QueryKeyValue { get; }

    public Linear<T> Projection { get; }

    public override IEnumerable<Layer<T>> Children => [QueryKeyValue, Projection];

    public override T[] Forward(T[] input, BatchShape shape)
    {
        _shape = shape;
        int time = shape.Sequence, width = Width, headWidth = HeadWidth, stride = 3 * width;
        var qkv = QueryKeyValue.Forward(input, shape);
        var attended = new T[shape.Rows * width];
        var probabilities = new T[shape.Batch * Heads * time * time];
        T scale = T.One / T.Sqrt(T.CreateTruncating(headWidth));
        for (int b = 0; b < shape.Batch; b++)
        {
            for (int h = 0; h < Heads; h++)
            {
                int rowBase = b * time * stride;
                var scores = probabilities.AsSpan((b * Heads + h) * time * time, time * time);
                Blas.Gemm(Backend, Transpose.None, Transpose.Transposed, time, time, headWidth, scale,
                    qkv.AsSpan(rowBase + h * headWidth), stride, qkv.AsSpan(rowBase + width + h * headWidth), stride,
                    T.Zero, scores, time);
                for (int i = 0; i < time; i++)
                {
                    // Row i attends to positions 0..i; the masked tail gets probability exactly zero.
                    var visible = scores.Slice(i * time, i + 1);
                    RowOps.SoftmaxRows<T>(visible, visible, i + 1);
                    scores.Slice(i * time + i + 1, time - i - 1).Clear();
                }
                Blas.Gemm(Backend, Transpose.None, Transpose.None, time, headWidth, time, T.One,
                    scores, time, qkv.AsSpan(rowBase + 2 * width + h * headWidth), stride,
                    T.Zero, attended.AsSpan(b * time * width + h * headWidth), width);
            }
        }
        _qkv = qkv;
        _probabilities = probabilities;
        return Projection.Forward(attended, shape);
    }

    public override T[] Backward(T[] outputGradient)
    {
        var qkv = Cached(_qkv);
        var probabilities = Cached(_probabilities);
        var shape = _shape;
        int time = shape.Sequence, width = Width, headWidth = HeadWidth, stride = 3 * width;
        var attendedGradient = Projection.Backward(outputGradient);
        var qkvGradient = new T[qkv.Length];
        var probabilityGradient = new T[time * time];
        T scale = T.One / T.Sqrt(T.CreateTruncating(headWidth));
        for (int b = 0; b < shape.Batch; b++)
        {
            for (int h = 0; h < Heads; h++)
            {
                int rowBase = b * time * stride;
                var p = probabilities.AsSpan((b * Heads + h) * time * time, time * time);
                var dOut = attendedGradient.AsSpan(b * time * width + h * headWidth);
                // dP = dO Vᵀ ; dV = Pᵀ dO
                Blas.Gemm(Backend, Transpose.None, Transpose.Transposed, time, time, headWidth, T.One,
                    dOut, width, qkv.AsSpan(rowBase + 2 * width + h * headWidth), stride, T.Zero, probabilityGradient, time);
                Blas.Gemm(Backend, Transpose.Transposed, Transpose.None, time, headWidth, time, T.One,
                    p, time, dOut, width, T.Zero, qkvGradient.AsSpan(rowBase + 2 * width + h * headWidth), stride);
                // Softmax backward: dS = P ∘ (dP - rowsum(dP ∘ P)); masked entries have P = 0 and get 0.
                for (int i = 0; i < time; i++)
                {
                    var pRow = p.Slice(i * time, time);
                    var dRow = probabilityGradient.AsSpan(i * time, time);
                    T dot = TensorPrimitives.Dot<T>(pRow, dRow);
                    TensorPrimitives.Subtract(dRow, dot, dRow);
                    TensorPrimitives.Multiply<T>(dRow, pRow, dRow);
                }
                // dQ = dS K · scale ; dK = dSᵀ Q · scale
                Blas.Gemm(Backend, Transpose.None, Transpose.None, time, headWidth, time, scale,
                    probabilityGradient, time, qkv.AsSpan(rowBase + width + h * headWidth), stride,
                    T.Zero, qkvGradient.AsSpan(rowBase + h * headWidth), stride);
                Blas.Gemm(Backend, Transpose.Transposed, Transpose.None, time, headWidth, time, scale,
                    probabilityGradient, time, qkv.AsSpan(rowBase + h * headWidth), stride,
                    T.Zero, qkvGradient.AsSpan(rowBase + width + h * headWidth), stride);
            }
        }
        return QueryKeyValue.Backward(qkvGradient);
    }

    public override IEnumerable<(string Name, Parameter<T> Parameter)> NamedParameters() =>
        Prefix("qkv", QueryKeyValue).Concat(Prefix("proj", Projection));
}

/// <summary>Pre-norm transformer block: x + Attention(LN(x)), then x + MLP(LN(x)) with a 4x GELU MLP.</summary>
public sealed class TransformerBlock<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Sequential<T> _body;

    public TransformerBlock(int width, int heads, SeededRandom random, ComputeBackend? backend = null) : base(backend)
    {
        Attention = new CausalSelfAttention<T>(width, heads, random, Backend);
        _body = new Sequential<T>(
            ("attention", new Residual<T>(new Sequential<T>(("ln", new LayerNorm<T>(width)), ("attn", Attention)))),
            ("mlp", new Residual<T>(new Sequential<T>(
                ("ln", new LayerNorm<T>(width)),
                ("fc", new Linear<T>(width, 4 * width, bias: true, random, Backend)),
                ("gelu", new Gelu<T>()),
                ("proj", new Linear<T>(4 * width, width, bias: true, random, Backend))))));
    }

    public CausalSelfAttention<T> Attention { get; }

    public override IEnumerable<Layer<T>> Children => [_body];

    public override T[] Forward(T[] input, BatchShape shape) => _body.Forward(input, shape);

    public override T[] Backward(T[] outputGradient) => _body.Backward(outputGradient);

    public override IEnumerable<(string Name, Parameter<T> Parameter)> NamedParameters() => _body.NamedParameters();
}
