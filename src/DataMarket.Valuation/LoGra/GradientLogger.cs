using System.Numerics;
using DataMarket.Compute;
using DataMarket.Learning.Layers;
using DataMarket.Learning.Models;

namespace DataMarket.Valuation.LoGra;

/// <summary>
/// Examples a model can backpropagate one batch at a time with the loss <b>summed</b> (not averaged) over the
/// batch and its tokens, so each example's activations carry its own gradient.
/// </summary>
public interface IGradientSource<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    Model<T> Model { get; }

    int ExampleCount { get; }

    /// <summary>Forward and backward of the summed loss on the examples; returns the token mask (false = padding), or null when every token counts.</summary>
    bool[]? ForwardBackward(ReadOnlySpan<int> exampleIndices);
}

internal static class GradientSourceExtensions
{
    /// <summary>
    /// Forward and backward over every example in order, one batch at a time from zeroed gradients; hands each
    /// batch's first example and token mask to <paramref name="onBatch"/>, then reports the examples done.
    /// </summary>
    public static void ForEachBatch<T>(
        this IGradientSource<T> source,
        int batchSize,
        Action<int, bool[]?> onBatch,
        IProgress<int>? progress,
        CancellationToken cancellationToken)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        var indices = new int[batchSize];
        for (int start = 0; start < source.ExampleCount; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(batchSize, source.ExampleCount - start);
            for (int i = 0; i < count; i++)
            {
                indices[i] = start + i;
            }

            source.Model.ZeroGradients();
            var mask = source.ForwardBackward(indices.AsSpan(0, count));
            onBatch(start, mask);
            progress?.Report(start + count);
        }
    }
}

/// <summary>Projected per-example gradients held in memory, rows x Dimension, float64 (query sides are small).</summary>
public sealed class GradientMatrix
{
    public GradientMatrix(double[] values, int rows, int dimension)
    {
        if (values.Length != (long)rows * dimension)
        {
            throw new ArgumentException($"{values.Length} values are not {rows} x {dimension}.");
        }

        Values = values;
        Rows = rows;
        Dimension = dimension;
    }

    public double[] Values { get; }

    public int Rows { get; }

    public int Dimension { get; }

    public ReadOnlySpan<double> Row(int row) => Values.AsSpan(row * Dimension, Dimension);
}

/// <summary>
/// Turns on activation capture for the watched layers of a model and projects the captured x and dy of the
/// last backward pass into one row of D values per example.
/// </summary>
public sealed class GradientLogger<T> : IDisposable where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Linear<T>[] _layers;
    private readonly ComputeBackend _backend;

    public GradientLogger(Model<T> model, ProjectionSet projections, ComputeBackend? backend = null)
    {
        ArgumentNullException.ThrowIfNull(projections);
        projections.EnsureMatches(model);
        Projections = projections;
        _backend = backend ?? ComputeBackends.Default.Backend;
        var byName = ProjectionSet.NamedLinearLayers(model).ToDictionary(l => l.Name, l => l.Layer);
        _layers = projections.Layers.Select(p => byName.TryGetValue(p.Name, out var layer)
            ? layer
            : throw new LograException($"The projection watches layer '{p.Name}', which this model does not have.")).ToArray();
        foreach (var layer in _layers)
        {
            layer.CaptureActivations = true;
        }
    }

    public ProjectionSet Projections { get; }

    /// <summary>Projected gradients of the examples of the last backward pass, batch x D.</summary>
    public T[] ProjectLast(ReadOnlySpan<bool> tokenMask)
    {
        int batch = -1;
        T[]? rows = null;
        int dimension = Projections.Dimension;
        for (int i = 0; i < _layers.Length; i++)
        {
            var activations = _layers[i].LastActivations ?? throw new InvalidOperationException($"Layer '{Projections.Layers[i].Name}' has not run backward.");
            if (rows is null)
            {
                batch = activations.Shape.Batch;
                rows = new T[batch * dimension];
            }
            else if (activations.Shape.Batch != batch)
            {
                throw new InvalidOperationException("The watched layers saw different batches.");
            }

            Projections.Layers[i].Project(activations, tokenMask, rows, dimension, Projections.Offset(i), _backend);
        }

        return rows!;
    }

    /// <summary>Runs the source in batches and hands each batch's projected gradients (batch x D) to <paramref name="consume"/>.</summary>
    public void Run(IGradientSource<T> source, int batchSize, Action<int, T[]> consume, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        source.ForEachBatch(batchSize, (start, mask) => consume(start, ProjectLast(mask)), progress, cancellationToken);
    }

    /// <summary>All projected gradients of <paramref name="source"/> in memory (for the query side).</summary>
    public GradientMatrix Compute(IGradientSource<T> source, int batchSize, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        int dimension = Projections.Dimension;
        var values = new double[(long)source.ExampleCount * dimension];
        Run(source, batchSize, (start, rows) =>
        {
            for (int i = 0; i < rows.Length; i++)
            {
                values[(long)start * dimension + i] = double.CreateTruncating(rows[i]);
            }
        }, progress, cancellationToken);
        return new GradientMatrix(values, source.ExampleCount, dimension);
    }

    public void Dispose()
    {
        foreach (var layer in _layers)
        {
            layer.CaptureActivations = false;
        }
    }
}

/// <summary>
/// The extra pass of PCA initialisation: uncentred covariances E[x xᵀ] and E[dy dyᵀ] over (unpadded) tokens,
/// accumulated in float64 for the watched layers.
/// </summary>
public sealed class CovarianceAccumulator<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly double[][] _input;
    private readonly double[][] _outputGradient;
    private readonly ComputeBackend _backend;

    public CovarianceAccumulator(Model<T> model, IReadOnlyList<string>? watchedLayers, ComputeBackend? backend = null)
    {
        Layers = ProjectionSet.WatchedLayers(model, watchedLayers);
        ModelFingerprint = ModelFingerprints.Compute(model);
        _backend = backend ?? ComputeBackends.Default.Backend;
        _input = Layers.Select(l => new double[l.Layer.InputWidth * l.Layer.InputWidth]).ToArray();
        _outputGradient = Layers.Select(l => new double[l.Layer.OutputWidth * l.Layer.OutputWidth]).ToArray();
    }

    public IReadOnlyList<(string Name, Linear<T> Layer)> Layers { get; }

    public string ModelFingerprint { get; }

    public long Tokens { get; private set; }

    public double[] InputCovariance(int layer) => _input[layer].Select(v => v / Tokens).ToArray();

    public double[] OutputGradientCovariance(int layer) => _outputGradient[layer].Select(v => v / Tokens).ToArray();

    /// <summary>Runs the source once with activation capture and accumulates every watched layer's covariances.</summary>
    public void Accumulate(IGradientSource<T> source, int batchSize, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        foreach (var (_, layer) in Layers)
        {
            layer.CaptureActivations = true;
        }

        try
        {
            source.ForEachBatch(
                batchSize,
                (_, mask) =>
                {
                    long tokens = 0;
                    for (int l = 0; l < Layers.Count; l++)
                    {
                        var activations = Layers[l].Layer.LastActivations!;
                        tokens = AddGram(activations.InputValues.Span, activations.Shape.Rows, Layers[l].Layer.InputWidth, mask, _input[l]);
                        AddGram(activations.OutputGradientValues.Span, activations.Shape.Rows, Layers[l].Layer.OutputWidth, mask, _outputGradient[l]);
                    }

                    Tokens += tokens;
                },
                progress,
                cancellationToken);
        }
        finally
        {
            foreach (var (_, layer) in Layers)
            {
                layer.CaptureActivations = false;
            }
        }
    }

    private long AddGram(ReadOnlySpan<T> values, int rows, int width, bool[]? mask, double[] gram)
    {
        var kept = new double[rows * width];
        int count = 0;
        for (int r = 0; r < rows; r++)
        {
            if (mask is not null && !mask[r])
            {
                continue;
            }

            for (int j = 0; j < width; j++)
            {
                kept[count * width + j] = double.CreateTruncating(values[r * width + j]);
            }

            count++;
        }

        LograBlas.Gemm<double>(_backend, Transpose.Transposed, Transpose.None, width, width, count, kept, width, kept, width, 1, gram, width);
        return count;
    }
}
