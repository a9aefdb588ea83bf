using System.Diagnostics;
using DataMarket.Torch.Influence;
using DataMarket.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DataMarket.Torch.Benchmarks;

/// <summary>What one rank measured: examples/s logged by LoGra and by the dense baseline, and scoring against the GEMM rate.</summary>
public sealed record LograRankMeasurement(
    int Rank, long Dimension, long FullGradientSize, double ForwardBackwardPerSecond, double LograPerSecond, double DensePerSecond,
    double ScoringPairsPerSecond, double GemmPairsPerSecond)
{
    public double LoggingSpeedup => LograPerSecond / DensePerSecond;

    public double ScoringToGemm => ScoringPairsPerSecond / GemmPairsPerSecond;
}

/// <summary>
/// LoGra on the byte GPT (2 layers, 2 heads, width 64, context 64; every Linear layer watched) at several ranks:
/// logging throughput against the dense baseline of the same output size (each example's full per-layer gradient
/// Σ_t dy_t x_tᵀ materialised, then multiplied by a dense random (in·out) x k² matrix), and scoring a store
/// (float32, preconditioned dot) against a bare GEMM of the same shape, all in one process.
/// </summary>
public static class LograBenchmark
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

            var denseSeconds = Dense(model, rank, all, Loss, batches, generator);
            var (scoring, gemm) = Scoring(model, options, Loss, batchSize, storeRows, queries, generator);
            var measurement = new LograRankMeasurement(rank, dimension, fullSize, batchSize / forwardBackward, batchSize / lograSeconds, batchSize / denseSeconds, scoring, gemm);
            log?.Invoke($"rank {rank}: logging {measurement.LoggingSpeedup:F1}x the dense projection, scoring {measurement.ScoringToGemm:P0} of the GEMM rate");
            results.Add(measurement);
        }

        return results;
    }

    // Full per-example gradients of every watched layer, then one dense projection per layer to k_out·k_in values.
    private static double Dense(ByteGpt model, int rank, Tensor all, Func<Tensor, Tensor> loss, int batches, torch.Generator generator)
    {
        using var capture = new LinearCapture(model);
        var projections = capture.Layers.Select(l =>
        {
            long inputs = l.Layer.weight!.shape[1], outputs = l.Layer.weight.shape[0];
            var k = Math.Min(rank, inputs) * Math.Min(rank, outputs);
            return torch.randn(inputs * outputs, k, generator: generator).div_(Math.Sqrt(k));
        }).ToList();
        try
        {
            return Median(batches, () =>
            {
                model.zero_grad();
                loss(all).backward();
                var rows = all.shape[0];
                var blocks = capture.Layers.Select((l, i) =>
                {
                    var (x, dy) = capture.Get(l.Name);
                    var full = dy.reshape(rows, -1, dy.shape[^1]).transpose(1, 2).matmul(x.reshape(rows, -1, x.shape[^1])); // [B, out, in]
                    return full.reshape(rows, -1).matmul(projections[i]);
                }).ToList();
                torch.cat(blocks, 1).Dispose();
            });
        }
        finally
        {
            foreach (var p in projections)
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
        var scoring = Median(3, () => logra.Score(query, store, InfluenceMode.Dot).Dispose());
        var gemm = Median(3, () => query.matmul(store.t()).Dispose());
        return (pairs / scoring, pairs / gemm);
    }

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
            var clock = Stopwatch.StartNew();
            action();
            times.Add(clock.Elapsed.TotalSeconds);
        }

        times.Sort();
        return times[times.Count / 2];
    }
}
