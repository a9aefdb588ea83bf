using System.Numerics;
using System.Numerics.Tensors;
using DataMarket.Compute;

namespace DataMarket.Learning.Layers;

/// <summary>
/// Per-example activations of one <see cref="Linear{T}"/> call, for gradient projection (LoGra):
/// the per-example weight gradient is OutputGradient(e)ᵀ · Input(e), which is never materialised here.
/// The arrays are the ones the layer used; they are not copied and must not be modified.
/// </summary>
public sealed class LinearActivations<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    internal LinearActivations(Linear<T> layer, T[] input, T[] outputGradient, BatchShape shape)
    {
        Layer = layer;
        InputValues = input;
        OutputGradientValues = outputGradient;
        Shape = shape;
    }

    public Linear<T> Layer { get; }

    public BatchShape Shape { get; }

    /// <summary>Rows x InputWidth, all examples.</summary>
    public ReadOnlyMemory<T> InputValues { get; }

    /// <summary>Rows x OutputWidth: dLoss/dOutput for the loss that was backpropagated (use sum reduction for per-example gradients).</summary>
    public ReadOnlyMemory<T> OutputGradientValues { get; }

    /// <summary>Example <paramref name="example"/>'s inputs x, tokens x d_in, row-major.</summary>
    public ReadOnlySpan<T> Input(int example) =>
        InputValues.Span.Slice(ExampleOffset(example) * Layer.InputWidth, Shape.Sequence * Layer.InputWidth);

    /// <summary>Example <paramref name="example"/>'s output gradients dy, tokens x d_out, row-major.</summary>
    public ReadOnlySpan<T> OutputGradient(int example) =>
        OutputGradientValues.Span.Slice(ExampleOffset(example) * Layer.OutputWidth, Shape.Sequence * Layer.OutputWidth);

    private int ExampleOffset(int example)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(example);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(example, Shape.Batch);
        return example * Shape.Sequence;
    }
}

/// <summary>y = x Wᵀ + b with W stored [out, in] (PyTorch's layout, so checkpoints map one to one).</summary>
public sealed class Linear<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private T[]? _input;
    private BatchShape _shape;

    public Linear(int inputWidth, int outputWidth, bool bias, SeededRandom random, ComputeBackend? backend = null) : base(backend)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outputWidth);
        InputWidth = inputWidth;
        OutputWidth = outputWidth;
        Weight = new Parameter<T>("weight", outputWidth, inputWidth);
        // PyTorch's default: U(-1/sqrt(in), 1/sqrt(in)).
        T bound = T.One / T.Sqrt(T.CreateTruncating(inputWidth));
        random.FillUniform(Weight.Value, -bound, bound);
        if (bias)
        {
            Bias = new Parameter<T>("bias", outputWidth);
            random.FillUniform(Bias.Value, -bound, bound);
        }
    }

    public int InputWidth { get; }

    public int OutputWidth { get; }

    public Parameter<T> Weight { get; }

    public Parameter<T>? Bias { get; }

    /// <summary>When set, Backward publishes <see cref="LastActivations"/> and raises <see cref="ActivationsCaptured"/>.</summary>
    public bool CaptureActivations { get; set; }

    public LinearActivations<T>? LastActivations { get; private set; }

    public event Action<LinearActivations<T>>? ActivationsCaptured;

    public override T[] Forward(T[] input, BatchShape shape)
    {
        int rows = shape.Rows;
        if (input.Length != rows * InputWidth)
        {
            throw new ArgumentException($"Linear expects {rows}x{InputWidth} inputs, got {input.Length} values.", nameof(input));
        }
        _input = input;
        _shape = shape;
        var output = new T[rows * OutputWidth];
        if (Bias is not null)
        {
            for (int r = 0; r < rows; r++)
            {
                Bias.Value.CopyTo(output, r * OutputWidth);
            }
        }
        Blas.Gemm(Backend, Transpose.None, Transpose.Transposed, rows, OutputWidth, InputWidth, T.One,
            input, InputWidth, Weight.Value, InputWidth, Bias is null ? T.Zero : T.One, output, OutputWidth);
        return output;
    }

    public override T[] Backward(T[] outputGradient)
    {
        var input = Cached(_input);
        int rows = _shape.Rows;
        if (outputGradient.Length != rows * OutputWidth)
        {
            throw new ArgumentException($"Linear expects {rows}x{OutputWidth} output gradients.", nameof(outputGradient));
        }
        // dW += dYᵀ X ; db += column sums of dY ; dX = dY W
        Blas.Gemm(Backend, Transpose.Transposed, Transpose.None, OutputWidth, InputWidth, rows, T.One,
            outputGradient, OutputWidth, input, InputWidth, T.One, Weight.Gradient, InputWidth);
        if (Bias is not null)
        {
            for (int r = 0; r < rows; r++)
            {
                var row = outputGradient.AsSpan(r * OutputWidth, OutputWidth);
                TensorPrimitives.Add(Bias.Gradient, row, Bias.Gradient);
            }
        }
        var inputGradient = new T[rows * InputWidth];
        Blas.Gemm(Backend, Transpose.None, Transpose.None, rows, InputWidth, OutputWidth, T.One,
            outputGradient, OutputWidth, Weight.Value, InputWidth, T.Zero, inputGradient, InputWidth);
        if (CaptureActivations)
        {
            LastActivations = new LinearActivations<T>(this, input, outputGradient, _shape);
            ActivationsCaptured?.Invoke(LastActivations);
        }
        return inputGradient;
    }

    public override IEnumerable<(string Name, Parameter<T> Parameter)> NamedParameters() =>
        Bias is null ? [("weight", Weight)] : [("weight", Weight), ("bias", Bias)];
}
