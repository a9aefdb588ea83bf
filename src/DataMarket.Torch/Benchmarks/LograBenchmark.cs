using System.Diagnostics;
using DataMarket.Torch.Influence;
using DataMarket.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DataMarket.Torch.Benchmarks;

/// <summary>
/// What one rank measured (per CPU-second of the measuring thread): examples logged by LoGra, by the dense baseline (the whole per-example
/// gradient times a dense [FullGradientSize, Dimension] matrix) and by a per-layer dense projection, and scoring
/// against the GEMM rate.
/// </summary>
public sealed record LograRankMeasurement(
    int Rank, long Dimension, long FullGradientSize, double ForwardBackwardPerSecond, double LograPerSecond, double DensePerSecond,
    double ScoringPairsPerSecond, double GemmPairsPerSecond)
{
    public double LoggingSpeedup => LograPerSecond / DensePerSecond;

    /// <summary>Examples per CPU-second with each layer's gradient projected by its own dense (in·out) x (k_out·k_in) matrix.</summary>
    public double LayerDensePerSecond { get; init; }

    public double LayerDenseSpeedup => LograPerSecond / LayerDensePerSecond;

    public double ScoringToGemm => ScoringPairsPerSecond / GemmPairsPerSecond;
}

/// <summary>
/// LoGra on the byte GPT (2 layers, 2 heads, width 64, context 64; every Linear layer watched) at several ranks:
/// logging throughput against the dense projection LoGra replaces (TRAK's: each example's full gradient, every watched
/// layer's Σ_t dy_t x_tᵀ concatenated, p values, times a dense random p x D matrix, D the same output width as LoGra's),
/// against a per-layer dense projection (each layer's gradient times its own (in·out) x (k_out·k_in) matrix), and
/// scoring a store (float32, preconditioned dot) against a bare GEMM of the same shape, all in one process. Times are
/// CPU time of the measuring thread (libtorch runs on it with one intra-op thread), so other work on a shared machine
/// does not stretch them.
/// </summary>
public static partial class LograBenchmark
{
    public static readonly ModelConfig Gpt = ModelConfig.ForGpt(contextLength: 64, layers: 2, heads: 2, width: 64);

    public static IReadOnlyList<LograRankMeasurement> Run(IReadOnlyList<int> ranks, int batchSize = 16, int batches = 6, int storeRows = 20_000, int queries = 256, Action<string>? log = null)
    {
        using var scope = NewDisposeScope();
        using var generator = new torch.Generator(7);
        var model = new ByteGpt(Gpt);
        SeededInitialization.Apply(model, 1);
        model.eval();
        var tokens = torch.randint(97, 123, [batchSize, Gpt.ContextLength], dtype: int64, generator: generator);
        var valid = torch.ones(batchSize, Gpt.ContextLength, dtype: @bool);
        var targets = ProxyTraining.NextTokenTargets(tokens, valid);
        Tensor Loss(Tensor batch) => nn.functional.cross_entropy(
            model.forward(tokens.index(batch), valid.index(batch)).flatten(0, 1), targets.index(batch).flatten(), ignore_index: -100, reduction: nn.Reduction.Sum);
        var all = torch.arange(batchSize, dtype: int64);

        var results = new List<LograRankMeasurement>();
        foreach (var rank in ranks)
        {
            // Measured again at each rank, next to the others: early in the process .NET's tiered JIT still runs
            // TorchSharp's wrappers unoptimised, which made a first measurement look slower than the later ones.
            var forwardBackward = Median(batches, () =>
            {
                model.zero_grad();
                Loss(all).backward();
            });
            var options = new TorchLograOptions { Rank = rank, BatchSize = batchSize };
            double lograSeconds;
            long dimension, fullSize;
            using (var logra = TorchLogra.Create(model, options, batchSize, Loss))
            {
                dimension = logra.Dimension;
                fullSize = logra.Projections.Sum(p => p.In.shape[1] * p.Out.shape[1]);
                lograSeconds = Median(batches, () => logra.Gradients(all, Loss).Dispose());
            }

            var (denseSeconds, layerSeconds) = Dense(model, dimension, rank, all, Loss, batches, generator);
            var (scoring, gemm) = Scoring(model, options, Loss, batchSize, storeRows, queries, generator);
            var measurement = new LograRankMeasurement(rank, dimension, fullSize, batchSize / forwardBackward, batchSize / lograSeconds, batchSize / denseSeconds, scoring, gemm)
            {
                LayerDensePerSecond = batchSize / layerSeconds,
            };
            log?.Invoke($"rank {rank}: logging {measurement.LoggingSpeedup:F1}x the dense projection ({measurement.LayerDenseSpeedup:F1}x a per-layer one), scoring {measurement.ScoringToGemm:P0} of the GEMM rate");
            results.Add(measurement);
        }

        return results;
    }

    /// <summary>Columns of the dense baseline's matrix held at once: p x 512 floats (235 MB for this GPT).</summary>
    public const int DenseColumnBlock = 512;

    // Both dense baselines: full per-example gradients of every watched layer ([B, out, in], materialised), then either
    // the whole gradient [B, p] times a dense p x D matrix, or each layer's block times its own dense matrix. The p x D
    // matrix would take 4 GB at rank 32, so one p x 512 block is held and multiplied D / 512 times (the last block
    // narrowed): the same multiply-adds and the same streaming of a p x 512 matrix per block as the full one.
    private static (double Full, double PerLayer) Dense(ByteGpt model, long dimension, int rank, Tensor all, Func<Tensor, Tensor> loss, int batches, torch.Generator generator)
    {
        using var capture = new LinearCapture(model);
        var sizes = capture.Layers.Select(l => l.Layer.weight!.shape[0] * l.Layer.weight.shape[1]).ToList();
        using var block = torch.randn(sizes.Sum(), Math.Min(DenseColumnBlock, dimension), generator: generator).div_(Math.Sqrt(dimension));
        var perLayer = capture.Layers.Select((l, i) =>
        {
            var k = Math.Min(rank, l.Layer.weight!.shape[1]) * Math.Min(rank, l.Layer.weight.shape[0]);
            return torch.randn(sizes[i], k, generator: generator).div_(Math.Sqrt(k));
        }).ToList();
        try
        {
            Tensor[] FullGradients()
            {
                // Without the summed weight gradients, as LoGra: both build each example's gradient from x and dy.
                model.zero_grad();
                capture.ForwardBackward(() => loss(all));
                var rows = all.shape[0];
                return capture.Layers.Select(l =>
                {
                    var (x, dy) = capture.Get(l.Name);
                    return dy.reshape(rows, -1, dy.shape[^1]).transpose(1, 2).matmul(x.reshape(rows, -1, x.shape[^1])).reshape(rows, -1); // [B, out*in]
                }).ToArray();
            }

            var full = Median(batches, () =>
            {
                var gradient = torch.cat(FullGradients(), 1); // [B, p]
                var projected = torch.empty(gradient.shape[0], dimension);
                for (long start = 0; start < dimension; start += DenseColumnBlock)
                {
                    var width = Math.Min(DenseColumnBlock, dimension - start);
                    projected.narrow(1, start, width).copy_(gradient.matmul(block.narrow(1, 0, width)));
                }
            });
            var layered = Median(batches, () => torch.cat(FullGradients().Select((g, i) => g.matmul(perLayer[i])).ToList(), 1));
            return (full, layered);
        }
        finally
        {
            foreach (var p in perLayer)
            {
                p.Dispose();
            }
        }
    }

    // Pairs scored per second: preconditioned dot against a random float32 store, and a bare GEMM of the same shape.
    private static (double Scoring, double Gemm) Scoring(ByteGpt model, TorchLograOptions options, Func<Tensor, Tensor> loss, long rows, int storeRows, int queries, torch.Generator generator)
    {
        using var scope = NewDisposeScope();
        using var logra = TorchLogra.Create(model, options with { ChunkRows = 4096 }, rows, loss);
        var store = torch.randn(storeRows, logra.Dimension, generator: generator);
        logra.Fit(store);
        var query = torch.randn(queries, logra.Dimension, generator: generator);
        var pairs = (double)storeRows * queries;
        // The scores go into one float64 buffer reused across repeats, as a caller scoring block after block would.
        using var output = torch.empty(queries, storeRows, dtype: float64);
        var scoring = Median(3, () => logra.Score(query, store, InfluenceMode.Dot, output: output));
        var gemm = Median(3, () => query.matmul(store.t()).Dispose());
        return (pairs / scoring, pairs / gemm);
    }

    // CPU-seconds of the measuring thread: with one intra-op thread libtorch computes on it, and neither other work on
    // a shared machine nor the JIT compiling TorchSharp's wrappers on a background thread stretch the figure.
    private static double Median(int repeats, Action action)
    {
        for (var warmUp = 0; warmUp < 3; warmUp++)
        {
            using var scope = NewDisposeScope();
            action();
        }

        var times = new List<double>();
        for (var i = 0; i < repeats; i++)
        {
            using var scope = NewDisposeScope();
            var before = ThreadCpuSeconds();
            action();
            times.Add(Math.Max(ThreadCpuSeconds() - before, 1e-9));
        }

        times.Sort();
        return times[times.Count / 2];
    }

    /// <summary>
    /// CPU time of the calling thread in seconds, to the nanosecond on Linux (clock_gettime's thread clock); elsewhere
    /// the process's CPU time.
    /// </summary>
    public static double ThreadCpuSeconds()
    {
        if (OperatingSystem.IsLinux() && NativeClock.clock_gettime(NativeClock.ThreadCpuTimeId, out var time) == 0)
        {
            return time.Seconds + time.Nanoseconds * 1e-9;
        }

        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime.TotalSeconds;
    }

    private static partial class NativeClock
    {
        public const int ThreadCpuTimeId = 3; // CLOCK_THREAD_CPUTIME_ID

        [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
        public struct TimeSpec
        {
            public long Seconds;
            public long Nanoseconds;
        }

        [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "clock_gettime")]
        public static partial int clock_gettime(int clock, out TimeSpec time);
    }
}
