using System.Diagnostics;
using System.Globalization;
using System.Text;
using DataMarket.Compute;
using DataMarket.Learning.Layers;
using DataMarket.Learning.Models;

namespace DataMarket.Valuation.LoGra;

public sealed record LograBenchmarkOptions
{
    public GptOptions Gpt { get; init; } = new(ContextLength: 64, Layers: 2, Heads: 2, Width: 64, Seed: 1);

    /// <summary>Rank per side; every Linear layer is watched.</summary>
    public int Rank { get; init; } = 8;

    public int BatchSize { get; init; } = 16;

    public int LoggingBatches { get; init; } = 8;

    public int StoreRows { get; init; } = 20_000;

    public int Queries { get; init; } = 256;
}

/// <summary>What <see cref="LograBenchmark.Run"/> measured.</summary>
public sealed record LograBenchmarkReport(
    string Backend,
    int Dimension,
    long FullGradientSize,
    double LograExamplesPerSecond,
    double DenseExamplesPerSecond,
    double ForwardBackwardExamplesPerSecond,
    double StoreBytesPerExample,
    double FullGradientBytesPerExample,
    double DenseProjectionBytes,
    double PairsPerSecond,
    double ScoringGigaflops,
    double GemmGigaflops,
    long PeakWorkingSetBytes)
{
    public double LoggingSpeedup => LograExamplesPerSecond / DenseExamplesPerSecond;

    public double ScoringToGemm => ScoringGigaflops / GemmGigaflops;
}

/// <summary>
/// LoGra logging throughput on the byte-level GPT against the dense baseline of equal output size (materialise
/// each example's full gradient of the watched layers, then multiply by a dense random k x p matrix), and query
/// throughput of scoring against a store compared with the backend's GEMM rate at the same shape, in one process.
/// </summary>
public static class LograBenchmark
{
    public static LograBenchmarkReport Run(LograBenchmarkOptions? options = null, Action<string>? log = null)
    {
        options ??= new LograBenchmarkOptions();
        var backend = ComputeBackends.Default.Backend;
        var model = new GptModel<float>(options.Gpt, backend);
        var random = new SeededRandom(7);
        var texts = Enumerable.Range(0, options.BatchSize).Select(_ => new string(Enumerable.Range(0, options.Gpt.ContextLength + 1)
            .Select(_ => (char)('a' + random.NextInt(26))).ToArray())).ToArray();
        var source = new TextGradientSource<float>(model, texts);
        var projections = ProjectionSet.Create(model, new ProjectionOptions { Rank = options.Rank });
        var layers = ProjectionSet.NamedLinearLayers(model).Select(l => l.Layer).ToArray();
        long fullSize = layers.Sum(l => (long)l.Weight.Value.Length);
        int dimension = projections.Dimension;
        var batch = Enumerable.Range(0, options.BatchSize).ToArray();
        log?.Invoke($"GPT {options.Gpt}; {layers.Length} watched layers, full gradient {fullSize} values, projected {dimension} (rank {options.Rank}); backend {backend.Name}");

        // Shared cost: forward and backward with activation capture.
        foreach (var layer in layers)
        {
            layer.CaptureActivations = true;
        }

        double forwardBackward = Time(options.LoggingBatches, () => source.ForwardBackward(batch));

        double lograSeconds;
        using (var logger = new GradientLogger<float>(model, projections, backend))
        {
            lograSeconds = Time(options.LoggingBatches, () =>
            {
                var mask = source.ForwardBackward(batch);
                logger.ProjectLast(mask);
            });
        }

        foreach (var layer in layers)
        {
            layer.CaptureActivations = true;
        }

        var dense = new float[(long)dimension * fullSize];
        random.FillNormal<float>(dense, 0f, 1f / MathF.Sqrt(dimension));
        var full = new float[options.BatchSize * fullSize];
        var output = new float[options.BatchSize * dimension];
        double denseSeconds = Time(options.LoggingBatches, () =>
        {
            var mask = source.ForwardBackward(batch);
            MaterialiseFullGradients(layers, mask, full, fullSize, backend);
            backend.Gemm(Transpose.None, Transpose.Transposed, options.BatchSize, dimension, (int)fullSize, 1f, full, (int)fullSize, dense, (int)fullSize, 0f, output, dimension);
        });
        dense = [];
        foreach (var layer in layers)
        {
            layer.CaptureActivations = false;
        }

        // Query throughput: a synthetic store of StoreRows x D against Queries query gradients.
        string directory = Path.Combine(Path.GetTempPath(), $"datamarket-logra-bench-{Guid.NewGuid():N}");
        try
        {
            var rows = new float[1024 * dimension];
            using (var writer = new GradientStoreWriter(directory, projections))
            {
                for (int written = 0; written < options.StoreRows; written += 1024)
                {
                    int count = Math.Min(1024, options.StoreRows - written);
                    random.FillNormal<float>(rows, 0f, 1f);
                    writer.Append<float>(rows.AsSpan(0, count * dimension), Enumerable.Range(written, count).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList());
                }

                writer.Complete().Dispose();
            }

            using var store = GradientStore.Open(directory);
            var queryValues = new double[options.Queries * dimension];
            random.FillNormal<double>(queryValues, 0, 1);
            var queries = new GradientMatrix(queryValues, options.Queries, dimension);
            var scorer = new InfluenceScorer(store, Preconditioner.Identity(store.Header.Layers), backend);
            scorer.ScorePairwise(queries, ScoreMode.Dot, _ => { }); // warm-up: page the store in
            double scoring = Time(3, () => scorer.ScorePairwise(queries, ScoreMode.Dot, _ => { }));
            double pairs = (double)options.Queries * options.StoreRows;
            double scoringGigaflops = 2 * pairs * dimension / scoring / 1e9;

            int chunk = scorer.ChunkSize;
            var a = new double[options.Queries * dimension];
            var b = new double[(long)chunk * dimension];
            var c = new double[(long)options.Queries * chunk];
            random.FillNormal<double>(b, 0, 1);
            backend.Gemm(Transpose.None, Transpose.Transposed, options.Queries, chunk, dimension, 1.0, a, dimension, b, dimension, 0.0, c, chunk);
            double gemm = Time(5, () => backend.Gemm(Transpose.None, Transpose.Transposed, options.Queries, chunk, dimension, 1.0, a, dimension, b, dimension, 0.0, c, chunk));
            double gemmGigaflops = 2.0 * options.Queries * chunk * dimension / gemm / 1e9;

            return new LograBenchmarkReport(backend.Name, dimension, fullSize,
                options.BatchSize / lograSeconds, options.BatchSize / denseSeconds, options.BatchSize / forwardBackward,
                dimension * 4.0, fullSize * 4.0, (double)dimension * fullSize * 4,
                pairs / scoring, scoringGigaflops, gemmGigaflops, Process.GetCurrentProcess().PeakWorkingSet64);
        }
        finally
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    public static string Format(LograBenchmarkReport report)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"backend                      {report.Backend}");
        text.AppendLine(CultureInfo.InvariantCulture, $"forward+backward only        {report.ForwardBackwardExamplesPerSecond,10:F1} examples/s");
        text.AppendLine(CultureInfo.InvariantCulture, $"LoGra logging                {report.LograExamplesPerSecond,10:F1} examples/s  ({report.Dimension} values/example)");
        text.AppendLine(CultureInfo.InvariantCulture, $"full gradient + dense proj.  {report.DenseExamplesPerSecond,10:F1} examples/s  (from {report.FullGradientSize} values/example)");
        text.AppendLine(CultureInfo.InvariantCulture, $"logging speed-up             {report.LoggingSpeedup,10:F1} x");
        text.AppendLine(CultureInfo.InvariantCulture, $"store per example            {report.StoreBytesPerExample,10:F0} bytes (float32; full gradient {report.FullGradientBytesPerExample:F0} bytes; dense P {report.DenseProjectionBytes / (1 << 20):F0} MiB)");
        text.AppendLine(CultureInfo.InvariantCulture, $"query throughput             {report.PairsPerSecond,10:E3} pairs/s  ({report.ScoringGigaflops:F1} GFLOP/s = {report.ScoringToGemm:P0} of GEMM {report.GemmGigaflops:F1} GFLOP/s, float64)");
        text.AppendLine(CultureInfo.InvariantCulture, $"peak working set             {report.PeakWorkingSetBytes / (1 << 20),10} MiB (whole process, dense baseline included)");
        return text.ToString();
    }

    private static void MaterialiseFullGradients(Linear<float>[] layers, bool[]? mask, float[] full, long fullSize, ComputeBackend backend)
    {
        long offset = 0;
        foreach (var layer in layers)
        {
            var activations = layer.LastActivations!;
            int tokens = activations.Shape.Sequence;
            var input = activations.InputValues.ToArray();
            if (mask is not null)
            {
                for (int r = 0; r < mask.Length; r++)
                {
                    if (!mask[r])
                    {
                        Array.Clear(input, r * layer.InputWidth, layer.InputWidth);
                    }
                }
            }

            for (int e = 0; e < activations.Shape.Batch; e++)
            {
                // G_e = DY_eᵀ X_e: out x in, written into example e's row of the full-gradient matrix.
                backend.Gemm(Transpose.Transposed, Transpose.None, layer.OutputWidth, layer.InputWidth, tokens, 1f,
                    activations.OutputGradientValues.Span[(e * tokens * layer.OutputWidth)..], layer.OutputWidth,
                    input.AsSpan(e * tokens * layer.InputWidth), layer.InputWidth, 0f,
                    full.AsSpan((int)(e * fullSize + offset), layer.Weight.Value.Length), layer.InputWidth);
            }

            offset += layer.Weight.Value.Length;
        }
    }

    /// <summary>Best of three rounds after a warm-up: the machine is shared, and the minimum is the least disturbed.</summary>
    private static double Time(int repetitions, Action action)
    {
        action();
        double best = double.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < repetitions; i++)
            {
                action();
            }

            best = Math.Min(best, clock.Elapsed.TotalSeconds / repetitions);
        }

        return best;
    }
}
