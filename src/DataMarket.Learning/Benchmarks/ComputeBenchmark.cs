using System.Diagnostics;
using DataMarket.Compute;
using DataMarket.Compute.Benchmarks;
using DataMarket.Learning.Models;
using DataMarket.Learning.Optimizers;
using DataMarket.Learning.Training;

namespace DataMarket.Learning.Benchmarks;

/// <summary>Training throughput of one model on one backend.</summary>
public sealed record TrainingMeasurement(string Model, string Backend, string Configuration, int BatchSize, double ExamplesPerSecond, double SecondsPerStep);

/// <summary>Everything `datamarket bench compute` prints.</summary>
public sealed record ComputeBenchmarkReport(
    string SelectedBackend,
    string SelectionReason,
    string ManagedKernel,
    int ProcessorCount,
    IReadOnlyList<GemmMeasurement> Gemm,
    IReadOnlyList<TrainingMeasurement> Training)
{
    /// <summary>managed GFLOP/s divided by OpenBLAS GFLOP/s per size; empty when OpenBLAS is missing.</summary>
    public IReadOnlyDictionary<int, double> ManagedToOpenBlasRatio => Gemm
        .GroupBy(m => m.M)
        .Where(g => g.Any(m => m.Backend == "managed") && g.Any(m => m.Backend == "openblas"))
        .ToDictionary(g => g.Key, g => g.First(m => m.Backend == "managed").GigaflopsPerSecond / g.First(m => m.Backend == "openblas").GigaflopsPerSecond);
}

public sealed record ComputeBenchmarkOptions
{
    public IReadOnlyList<int> GemmSizes { get; init; } = GemmBenchmark.DefaultSizes;

    public double SecondsPerGemmMeasurement { get; init; } = 0.5;

    public int TrainingSteps { get; init; } = 30;

    public bool IncludeTraining { get; init; } = true;
}

/// <summary>
/// GEMM GFLOP/s of every available backend, the managed/OpenBLAS ratio, and MLP/GPT training
/// throughput, all measured in one process so that ratios compare like with like.
/// </summary>
public static class ComputeBenchmark
{
    /// <summary>The MLP shape used for the training benchmark (and for comparison with other frameworks).</summary>
    public static MlpOptions BenchmarkMlp { get; } = new(InputWidth: 256, HiddenWidths: [512, 512], OutputWidth: 10, Activation.Relu, Seed: 1);

    public const int MlpBatchSize = 256;

    public static GptOptions BenchmarkGpt { get; } = new(ContextLength: 64, Layers: 2, Heads: 4, Width: 128, Seed: 1);

    public const int GptBatchSize = 16;

    public static ComputeBenchmarkReport Run(ComputeBenchmarkOptions? options = null, Action<string>? log = null)
    {
        options ??= new ComputeBenchmarkOptions();
        var selection = ComputeBackends.Default;
        var backends = ComputeBackends.Available();
        log?.Invoke($"Backends: {string.Join(", ", backends.Select(b => b.Name))}; selected {selection.Backend.Name} ({selection.Reason})");
        var gemm = GemmBenchmark.Run(backends, options.GemmSizes, options.SecondsPerGemmMeasurement);
        var training = new List<TrainingMeasurement>();
        if (options.IncludeTraining)
        {
            foreach (var backend in backends)
            {
                training.Add(MeasureMlp(backend, options.TrainingSteps));
                training.Add(MeasureGpt(backend, Math.Max(3, options.TrainingSteps / 3)));
                log?.Invoke($"Trained on {backend.Name}");
            }
        }
        return new ComputeBenchmarkReport(selection.Backend.Name, selection.Reason, ComputeBackends.Managed.KernelName,
            Environment.ProcessorCount, gemm, training);
    }

    public static TrainingMeasurement MeasureMlp(ComputeBackend backend, int steps)
    {
        var options = BenchmarkMlp;
        var random = new SeededRandom(2);
        int examples = MlpBatchSize * 8;
        var features = new float[examples * options.InputWidth];
        random.FillNormal(features, 0f, 1f);
        var labels = Enumerable.Range(0, examples).Select(_ => random.NextInt(options.OutputWidth)).ToArray();
        var model = new MlpModel<float>(options, backend);
        var task = new ClassificationTask<float>(model, features, labels);
        var optimizer = new AdamW<float>(model.Parameters);
        return Time("mlp", backend, $"{options.InputWidth}-{string.Join("-", options.HiddenWidths)}-{options.OutputWidth} relu, AdamW",
            MlpBatchSize, steps, task, optimizer);
    }

    public static TrainingMeasurement MeasureGpt(ComputeBackend backend, int steps)
    {
        var options = BenchmarkGpt;
        var random = new SeededRandom(3);
        var text = new byte[options.ContextLength * GptBatchSize * 4 + 1];
        for (int i = 0; i < text.Length; i++)
        {
            text[i] = (byte)('a' + random.NextInt(26));
        }
        var model = new GptModel<float>(options, backend);
        var task = new LanguageModelTask<float>(model, text);
        var optimizer = new AdamW<float>(model.Parameters);
        return Time("gpt", backend, $"layers {options.Layers}, heads {options.Heads}, width {options.Width}, context {options.ContextLength}",
            GptBatchSize, steps, task, optimizer);
    }

    private static TrainingMeasurement Time(string name, ComputeBackend backend, string configuration, int batchSize, int steps,
        ITrainingTask<float> task, Optimizer<float> optimizer)
    {
        // One warm-up epoch outside the clock (JIT, buffers), then a fixed number of timed steps.
        Trainer.Fit(task, optimizer, new TrainerOptions(Epochs: 1, BatchSize: batchSize, MaxSteps: 2));
        var clock = Stopwatch.StartNew();
        var summary = Trainer.Fit(task, optimizer, new TrainerOptions(Epochs: int.MaxValue, BatchSize: batchSize, MaxSteps: steps));
        double seconds = clock.Elapsed.TotalSeconds;
        return new TrainingMeasurement(name, backend.Name, configuration, batchSize, summary.ExamplesSeen / seconds, seconds / summary.Steps);
    }

    /// <summary>A plain-text table of the report, as the CLI prints it.</summary>
    public static string Format(ComputeBenchmarkReport report)
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine($"compute backend: {report.SelectedBackend} ({report.SelectionReason})");
        text.AppendLine($"managed kernel: {report.ManagedKernel}, processors: {report.ProcessorCount}");
        text.AppendLine("GEMM (C = A B, square, float32, best of repeated calls):");
        foreach (var m in report.Gemm)
        {
            text.AppendLine($"  {m.Backend,-9} {m.M,5}x{m.N}x{m.K}  {m.GigaflopsPerSecond,8:F1} GFLOP/s  {m.SecondsPerCall * 1e3,9:F3} ms");
        }
        foreach (var (size, ratio) in report.ManagedToOpenBlasRatio)
        {
            text.AppendLine($"  managed/openblas at {size}^3: {ratio:P0}");
        }
        if (report.Training.Count > 0)
        {
            text.AppendLine("Training throughput:");
            foreach (var t in report.Training)
            {
                text.AppendLine($"  {t.Model} on {t.Backend,-9} {t.ExamplesPerSecond,10:F1} examples/s  ({t.SecondsPerStep * 1e3:F1} ms/step, batch {t.BatchSize}; {t.Configuration})");
            }
        }
        return text.ToString();
    }
}
