using System.Globalization;
using DataMarket.Compute;
using DataMarket.Learning.Models;
using DataMarket.Learning.Optimizers;
using DataMarket.Learning.Serialization;
using DataMarket.Learning.Training;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Valuation.LoGra;

/// <summary>Everything a LoGra valuation can be told; defaults follow LogIX (rank 64, random init, raw Hessian, dot).</summary>
public sealed record LograValuationOptions
{
    public ProjectionOptions Projection { get; init; } = new();

    public Preconditioning Hessian { get; init; } = Preconditioning.Raw;

    /// <summary>Absolute λ; null uses 0.1 · tr(C)/D per layer.</summary>
    public double? Damping { get; init; }

    public ScoreMode Mode { get; init; } = ScoreMode.Dot;

    public GradientDType StoreDType { get; init; } = GradientDType.Float32;

    /// <summary>Where the store goes; null uses a temporary folder removed afterwards. An existing store is reused if its model fingerprint matches.</summary>
    public string? StoreDirectory { get; init; }

    /// <summary>A proxy checkpoint (safetensors) used as is instead of training one.</summary>
    public string? CheckpointPath { get; init; }

    public int BatchSize { get; init; } = 32;

    public int Epochs { get; init; } = 20;

    public double LearningRate { get; init; } = 3e-3;

    public IReadOnlyList<int> HiddenWidths { get; init; } = [64];

    public GptOptions Gpt { get; init; } = new(ContextLength: 64, Layers: 2, Heads: 2, Width: 64);

    /// <summary>Keep the full test x train score matrix in the result (small inputs only).</summary>
    public bool KeepPairwise { get; init; }

    public ComputeBackend? Backend { get; init; }

    /// <summary>Where the scoring GEMM runs: null or the CPU device keeps the backend's float64 GEMM (see <see cref="InfluenceScorer.Device"/>).</summary>
    public Gpu.ValuationDevice? Device { get; init; }
}

/// <summary>What a LoGra valuation found, per training row in input order.</summary>
public sealed record LograValuationResult(
    ValueEstimate[] Values,
    IReadOnlyList<string> GroupOrder,
    IReadOnlyDictionary<string, ValueEstimate> GroupValues,
    ValueEstimate Total,
    double[,]? Pairwise,
    string ModelFingerprint,
    int Dimension);

/// <summary>A stage of a LoGra valuation, for progress display.</summary>
public sealed record LograProgress(string Stage, long Done, long Total);

/// <summary>
/// Proxy-model valuation: train the proxy (MLP for tabular data, byte-level GPT for text) on the training data,
/// log its projected training gradients to a store, fit the preconditioner, score the test task's gradients.
/// A point's value is its mean influence over the test points; a group's value is the sum over its points.
/// </summary>
public static class LograValuation
{
    public static LograValuationResult ValueTabular(TabularDataset train, TabularDataset test, LograValuationOptions options,
        string[]? groups = null, IProgress<LograProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(options);
        if (test.Rows == 0)
        {
            throw new LograException("The test task has no examples.");
        }

        if (train.FeatureCount != test.FeatureCount)
        {
            throw new LograException($"The training data has {train.FeatureCount} features but the test task has {test.FeatureCount}.");
        }

        var classes = train.Labels.Concat(test.Labels).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var classIndex = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        var (mean, scale) = Standardization(train);
        var model = new MlpModel<float>(new MlpOptions(train.FeatureCount, options.HiddenWidths, Math.Max(2, classes.Count), Activation.Relu, options.Projection.Seed), options.Backend);
        var trainSource = new TabularGradientSource<float>(model, Standardize(train, mean, scale), train.Labels.Select(l => classIndex[l]).ToArray());
        var testSource = new TabularGradientSource<float>(model, Standardize(test, mean, scale), test.Labels.Select(l => classIndex[l]).ToArray());
        PrepareModel(model, trainSource, options, progress);
        return Score(trainSource, testSource, options, groups, progress, cancellationToken);
    }

    /// <summary>
    /// Values the rows of several training parts (listings) together, one proxy trained on their union; a group's
    /// (seller's) value is the sum over its rows. The result has the same shape as KNN-Shapley's.
    /// </summary>
    public static Shapley.DatasetValuationResult ValueParts(IReadOnlyList<Shapley.TrainingPart> parts, TabularDataset test, LograValuationOptions options,
        IProgress<LograProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0 || parts.All(p => p.Data.Rows == 0))
        {
            throw new LograException("There is no training data to value.");
        }

        int width = parts[0].Data.FeatureCount;
        var union = new TabularDataset(parts.SelectMany(p => p.Data.Features).ToArray(), width, parts.SelectMany(p => p.Data.Labels).ToArray());
        var groups = parts.SelectMany(p => Enumerable.Repeat(p.Group, p.Data.Rows)).ToArray();
        var result = ValueTabular(union, test, options, groups, progress, cancellationToken);
        var partValues = new List<ValueEstimate[]>();
        int offset = 0;
        foreach (var part in parts)
        {
            partValues.Add(result.Values.AsSpan(offset, part.Data.Rows).ToArray());
            offset += part.Data.Rows;
        }

        return new Shapley.DatasetValuationResult(partValues, result.GroupValues, result.GroupOrder, result.Total, test.Rows);
    }

    public static LograValuationResult ValueText(IReadOnlyList<string> train, IReadOnlyList<string> test, LograValuationOptions options,
        string[]? groups = null, IProgress<LograProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (test.Count == 0)
        {
            throw new LograException("The test task has no examples.");
        }

        var model = new GptModel<float>(options.Gpt with { Seed = options.Projection.Seed }, options.Backend);
        var trainSource = new TextGradientSource<float>(model, train);
        var testSource = new TextGradientSource<float>(model, test);
        PrepareModel(model, trainSource, options, progress);
        return Score(trainSource, testSource, options, groups, progress, cancellationToken);
    }

    /// <summary>
    /// The core pipeline on a prepared model: projections (PCA pass if asked), training-gradient store,
    /// preconditioner, and scores of the test gradients streamed over the store.
    /// </summary>
    public static LograValuationResult Score<T>(IGradientSource<T> train, IGradientSource<T> test, LograValuationOptions options,
        string[]? groups = null, IProgress<LograProgress>? progress = null, CancellationToken cancellationToken = default)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        if (test.ExampleCount == 0)
        {
            throw new LograException("The test task has no examples.");
        }

        if (groups is not null && groups.Length != train.ExampleCount)
        {
            throw new ArgumentException("groups must have one entry per training example", nameof(groups));
        }

        var backend = options.Backend ?? ComputeBackends.Default.Backend;
        string fingerprint = ModelFingerprints.Compute(train.Model);
        string? temporary = null;
        string storeDirectory = options.StoreDirectory ?? (temporary = Path.Combine(Path.GetTempPath(), $"datamarket-logra-{Guid.NewGuid():N}"));
        try
        {
            GradientStore store;
            ProjectionSet projections;
            if (GradientStore.Exists(storeDirectory))
            {
                store = GradientStore.Open(storeDirectory, fingerprint);
                projections = store.LoadProjections();
                try
                {
                    projections.EnsureConfiguredAs(train.Model, options.Projection);
                }
                catch
                {
                    store.Dispose();
                    throw;
                }

                if (store.Count != train.ExampleCount)
                {
                    store.Dispose();
                    throw new LograException($"{storeDirectory}: the store holds {store.Count} examples, the training data {train.ExampleCount}.");
                }
            }
            else
            {
                projections = MakeProjections(train, options, backend, progress, cancellationToken);
                store = Log(train, projections, storeDirectory, options.StoreDType, options.BatchSize, backend, progress, cancellationToken);
            }

            using (store)
            {
                var preconditioner = Preconditioner.Fit(store, options.Hessian, options.Damping, backend, null, cancellationToken);
                GradientMatrix queries;
                using (var logger = new GradientLogger<T>(test.Model, projections, backend))
                {
                    queries = logger.Compute(test, options.BatchSize,
                        progress is null ? null : new SynchronousProgress<int>(n => progress.Report(new LograProgress("test gradients", n, test.ExampleCount))), cancellationToken);
                }

                return Values(new InfluenceScorer(store, preconditioner, backend) { Device = options.Device }, queries, options, groups, fingerprint, progress, cancellationToken);
            }
        }
        finally
        {
            if (temporary is not null && Directory.Exists(temporary))
            {
                Directory.Delete(temporary, recursive: true);
            }
        }
    }

    public static ProjectionSet MakeProjections<T>(IGradientSource<T> train, LograValuationOptions options, ComputeBackend backend,
        IProgress<LograProgress>? progress, CancellationToken cancellationToken)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        if (options.Projection.Init != ProjectionInit.Pca)
        {
            return ProjectionSet.Create(train.Model, options.Projection);
        }

        var covariances = new CovarianceAccumulator<T>(train.Model, options.Projection.WatchedLayers, backend);
        covariances.Accumulate(train, options.BatchSize,
            progress is null ? null : new SynchronousProgress<int>(n => progress.Report(new LograProgress("pca covariances", n, train.ExampleCount))), cancellationToken);
        return ProjectionSet.FromCovariances(covariances, options.Projection, backend);
    }

    /// <summary>Logs the projected gradients of every training example to a new store.</summary>
    public static GradientStore Log<T>(IGradientSource<T> train, ProjectionSet projections, string directory, GradientDType dtype, int batchSize,
        ComputeBackend backend, IProgress<LograProgress>? progress, CancellationToken cancellationToken)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        using var writer = new GradientStoreWriter(directory, projections, dtype);
        using (var logger = new GradientLogger<T>(train.Model, projections, backend))
        {
            logger.Run(train, batchSize, (start, rows) =>
            {
                int count = rows.Length / projections.Dimension;
                writer.Append<T>(rows, Enumerable.Range(start, count).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList());
            }, progress is null ? null : new SynchronousProgress<int>(n => progress.Report(new LograProgress("logging gradients", n, train.ExampleCount))), cancellationToken);
        }

        return writer.Complete();
    }

    private static LograValuationResult Values(InfluenceScorer scorer, GradientMatrix queries, LograValuationOptions options, string[]? groups,
        string fingerprint, IProgress<LograProgress>? progress, CancellationToken cancellationToken)
    {
        int n = scorer.Store.Count, nq = queries.Rows;
        var groupOrder = groups is null ? new List<string>() : groups.Distinct(StringComparer.Ordinal).ToList();
        var groupIndex = groupOrder.Select((g, i) => (g, i)).ToDictionary(p => p.g, p => p.i, StringComparer.Ordinal);
        var groupTotals = new double[nq * groupOrder.Count];
        var queryTotals = new double[nq];
        var values = new ValueEstimate[n];
        var pairwise = options.KeepPairwise ? new double[nq, n] : null;
        scorer.ScorePairwise(queries, options.Mode, chunk =>
        {
            var moments = new RunningMoments(chunk.TrainCount);
            for (int q = 0; q < nq; q++)
            {
                var row = chunk.Scores.AsSpan(q * chunk.TrainCount, chunk.TrainCount);
                moments.Add(row);
                queryTotals[q] += System.Numerics.Tensors.TensorPrimitives.Sum<double>(row);
                for (int t = 0; t < row.Length; t++)
                {
                    if (pairwise is not null)
                    {
                        pairwise[q, chunk.TrainStart + t] = row[t];
                    }

                    if (groups is not null)
                    {
                        groupTotals[q * groupOrder.Count + groupIndex[groups[chunk.TrainStart + t]]] += row[t];
                    }
                }
            }

            moments.Estimates().CopyTo(values, chunk.TrainStart);
        }, progress is null ? null : new SynchronousProgress<int>(done => progress.Report(new LograProgress("scoring", done, n))), cancellationToken);

        var groupMoments = new RunningMoments(groupOrder.Count);
        for (int q = 0; q < nq; q++)
        {
            groupMoments.Add(groupTotals.AsSpan(q * groupOrder.Count, groupOrder.Count));
        }

        var groupValues = groupOrder.Select((g, i) => (g, groupMoments.Estimate(i))).ToDictionary(p => p.g, p => p.Item2, StringComparer.Ordinal);
        var totalMoments = new RunningMoments(1);
        foreach (double total in queryTotals)
        {
            totalMoments.Add([total]);
        }

        return new LograValuationResult(values, groupOrder, groupValues, totalMoments.Estimate(0), pairwise, fingerprint, scorer.Store.Dimension);
    }

    private static void PrepareModel<T>(Model<T> model, ITrainingTask<T> train, LograValuationOptions options, IProgress<LograProgress>? progress)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        if (options.CheckpointPath is not null)
        {
            try
            {
                Checkpoint.Load(options.CheckpointPath, model);
            }
            catch (SafetensorsFormatException exception)
            {
                throw new LograException($"{options.CheckpointPath}: the checkpoint does not fit the proxy model ({exception.Message})", exception);
            }
            catch (IOException exception)
            {
                throw new LograException($"{options.CheckpointPath}: cannot read the checkpoint ({exception.Message})", exception);
            }

            return;
        }

        var optimizer = new AdamW<T>(model.Parameters, options.LearningRate, weightDecay: 0);
        long total = (long)options.Epochs * train.ExampleCount;
        Trainer.Fit(train, optimizer, new TrainerOptions(options.Epochs, options.BatchSize, options.Projection.Seed),
            p => progress?.Report(new LograProgress($"training (loss {p.Loss:F3})", p.ExamplesSeen, total)));
    }

    private static (float[] Mean, float[] Scale) Standardization(TabularDataset train)
    {
        int width = train.FeatureCount;
        var mean = new double[width];
        var square = new double[width];
        for (int r = 0; r < train.Rows; r++)
        {
            var row = train.Row(r);
            for (int j = 0; j < width; j++)
            {
                mean[j] += row[j];
                square[j] += (double)row[j] * row[j];
            }
        }

        var scale = new float[width];
        for (int j = 0; j < width; j++)
        {
            mean[j] /= train.Rows;
            double variance = Math.Max(0, square[j] / train.Rows - mean[j] * mean[j]);
            scale[j] = variance > 1e-12 ? (float)(1 / Math.Sqrt(variance)) : 1f;
        }

        return (mean.Select(m => (float)m).ToArray(), scale);
    }

    private static float[] Standardize(TabularDataset data, float[] mean, float[] scale)
    {
        var result = new float[data.Features.Length];
        for (int i = 0; i < result.Length; i++)
        {
            int j = i % data.FeatureCount;
            result[i] = (data.Features[i] - mean[j]) * scale[j];
        }

        return result;
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
public sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
