using DataMarket.Torch.Influence;
using DataMarket.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DataMarket.Torch.Benchmarks;

/// <summary>Sizes of the counterfactual checks; the defaults are the full bench (the unit suite runs the same code).</summary>
public sealed record ValidityOptions
{
    public int TrainRows { get; init; } = 1000;
    public int TestRows { get; init; } = 200;
    public int Subsets { get; init; } = 50;
    public int Rank { get; init; } = 16;
    public int Hidden { get; init; } = 64;
    public int Epochs { get; init; } = 30;
    public int RemovalSeeds { get; init; } = 5;

    /// <summary>Seed of the full model and of every LDS subset's model (initial weights and batch order).</summary>
    public ulong TrainingSeed { get; init; } = 1;
}

/// <summary>Linear datamodeling score per method, and mean test loss after each removal (over the removal seeds).</summary>
public sealed record ValidityReport(
    double FullModelLoss,
    IReadOnlyList<(string Method, double Lds)> Lds,
    IReadOnlyList<(string Removal, double Loss, double StandardError)> Removals,
    TimeSpan Elapsed);

/// <summary>
/// Counterfactual validity of LoGra values on a labelled table (the UCI digits): the linear datamodeling score over
/// random half-size subsets (Spearman, per test point, between the loss the scores predict, -Σ_{i∈S} s(q, i), and the
/// loss of a model retrained on S), and the test loss after removing the highest, lowest or a random 10% by value.
/// The proxy is an MLP trained with AdamW (batch 32, lr 3e-3, no weight decay), as the old engine's check.
/// </summary>
public static class ValidityBenchmark
{
    public static ValidityReport Run(TabularData data, ValidityOptions options, Action<string>? log = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        if (data.Rows < options.TrainRows + options.TestRows)
        {
            throw new ArgumentException($"The data has {data.Rows} rows; the check needs {options.TrainRows + options.TestRows}.");
        }

        using var scope = NewDisposeScope();
        var order = Enumerable.Range(0, data.Rows).ToArray();
        new Xoshiro256(2024).Shuffle(order);
        var classes = data.Labels.Max() + 1;
        var all = tensor(data.Features, [data.Rows, data.FeatureCount]);
        var labels = tensor(data.Labels.Select(l => (long)l).ToArray());
        var trainIndex = tensor(order.Take(options.TrainRows).Select(i => (long)i).ToArray());
        var testIndex = tensor(order.Skip(options.TrainRows).Take(options.TestRows).Select(i => (long)i).ToArray());
        var x = all.index(trainIndex);
        var mean = x.mean([0L]);
        // A column constant over the training rows (digits has several) is left unscaled, as the old engine did:
        // dividing by a clamped 1e-9 would blow a test row's rare nonzero pixel up to 1e9.
        var spread = x.std(0L, unbiased: false);
        spread = torch.where(spread > 1e-9f, spread, torch.ones_like(spread));
        x = (x - mean) / spread;
        var y = labels.index(trainIndex);
        var qx = (all.index(testIndex) - mean) / spread;
        var qy = labels.index(testIndex);
        var config = ModelConfig.ForMlp(data.FeatureCount, [options.Hidden], classes);

        TabularMlp Train(long[] rows, ulong seed)
        {
            using var index = tensor(rows);
            return ProxyTraining.TrainMlp(config, x.index(index), y.index(index),
                new TrainingOptions(Epochs: options.Epochs, BatchSize: 32, LearningRate: 3e-3, WeightDecay: 0, Seed: seed));
        }

        double[] TestLosses(TabularMlp model)
        {
            using var noGrad = no_grad();
            using var losses = nn.functional.cross_entropy(model.forward(qx), qy, reduction: nn.Reduction.None);
            return losses.to(float64).data<double>().ToArray();
        }

        var everything = Enumerable.Range(0, options.TrainRows).Select(i => (long)i).ToArray();
        using var full = Train(everything, options.TrainingSeed);
        var fullLoss = TestLosses(full).Average();
        log?.Invoke($"{options.TrainRows} train, {options.TestRows} test, {data.FeatureCount} features, {classes} classes; MLP {data.FeatureCount}-{options.Hidden}-{classes}, {options.Epochs} epochs; full model test loss {fullLoss:F4}");

        var methods = new (string Name, TorchLograOptions Options)[]
        {
            ($"logra-random r{options.Rank}", new TorchLograOptions { Rank = options.Rank }),
            ($"logra-pca r{options.Rank}", new TorchLograOptions { Rank = options.Rank, Init = ProjectionInit.Pca }),
        };
        var scores = methods.Select(m => Pairwise(full, x, y, qx, qy, m.Options)).ToArray();

        // LDS: one model per random half-size subset, the same training seed for all.
        var random = new Xoshiro256(99);
        var chosen = new long[options.Subsets][];
        var actual = new double[options.Subsets][];
        for (var s = 0; s < options.Subsets; s++)
        {
            var rows = (long[])everything.Clone();
            random.Shuffle(rows);
            chosen[s] = rows.Take(options.TrainRows / 2).ToArray();
            using var model = Train(chosen[s], options.TrainingSeed);
            actual[s] = TestLosses(model);
        }

        var lds = new List<(string, double)>();
        for (var m = 0; m < methods.Length; m++)
        {
            double total = 0;
            for (var q = 0; q < options.TestRows; q++)
            {
                var predicted = chosen.Select(subset => -subset.Sum(i => scores[m][q, i])).ToArray();
                total += Spearman(predicted, actual.Select(a => a[q]).ToArray());
            }

            lds.Add((methods[m].Name, total / options.TestRows));
            log?.Invoke($"LDS {methods[m].Name}: {total / options.TestRows:F3} ({options.Subsets} half-size subsets)");
        }

        // Removal by value (mean score over the test points, random-init LoGra), each retrained with several seeds.
        var values = Enumerable.Range(0, options.TrainRows).Select(i => Enumerable.Range(0, options.TestRows).Average(q => scores[0][q, i])).ToArray();
        var byValue = Enumerable.Range(0, options.TrainRows).OrderByDescending(i => values[i]).ThenBy(i => i).ToArray();
        var tenth = options.TrainRows / 10;
        var removals = new (string Name, Func<int, HashSet<int>> Removed)[]
        {
            ("none", _ => []),
            ("highest 10%", _ => byValue.Take(tenth).ToHashSet()),
            ("lowest 10%", _ => byValue.TakeLast(tenth).ToHashSet()),
            ("random 10%", seed =>
            {
                var rows = Enumerable.Range(0, options.TrainRows).ToArray();
                new Xoshiro256((ulong)(500 + seed)).Shuffle(rows);
                return rows.Take(tenth).ToHashSet();
            }),
        };
        var removalLosses = new List<(string, double, double)>();
        foreach (var (name, removed) in removals)
        {
            var losses = Enumerable.Range(0, options.RemovalSeeds).Select(seed =>
            {
                var gone = removed(seed);
                using var model = Train(everything.Where(i => !gone.Contains((int)i)).ToArray(), (ulong)(10 + seed));
                return TestLosses(model).Average();
            }).ToArray();
            var average = losses.Average();
            var error = losses.Length > 1 ? Math.Sqrt(losses.Sum(l => (l - average) * (l - average)) / (losses.Length - 1) / losses.Length) : double.NaN;
            removalLosses.Add((name, average, error));
            log?.Invoke($"remove {name}: test loss {average:F5} ± {error:F5} ({options.RemovalSeeds} seeds)");
        }

        return new ValidityReport(fullLoss, lds, removalLosses, clock.Elapsed);
    }

    /// <summary>Dot scores [test, train] of a trained model (summed losses, store float32).</summary>
    public static double[,] Pairwise(nn.Module model, Tensor x, Tensor y, Tensor qx, Tensor qy, TorchLograOptions options)
    {
        using var scope = NewDisposeScope();
        var mlp = (TabularMlp)model;
        Func<Tensor, Tensor> Loss(Tensor features, Tensor labels) => batch =>
            nn.functional.cross_entropy(mlp.forward(features.index(batch)), labels.index(batch), reduction: nn.Reduction.Sum);
        using var logra = TorchLogra.Create(model, options, x.shape[0], Loss(x, y));
        var store = logra.Log(x.shape[0], Loss(x, y));
        logra.Fit(store);
        var queries = logra.Log(qx.shape[0], Loss(qx, qy));
        var scores = logra.Score(queries, store, InfluenceMode.Dot);
        var flat = scores.data<double>().ToArray();
        var result = new double[qx.shape[0], x.shape[0]];
        Buffer.BlockCopy(flat, 0, result, 0, flat.Length * sizeof(double));
        return result;
    }

    /// <summary>Spearman rank correlation (ties get their mean rank); 0 when either side is constant.</summary>
    public static double Spearman(double[] a, double[] b)
    {
        var ra = Ranks(a);
        var rb = Ranks(b);
        double ma = ra.Average(), mb = rb.Average(), cov = 0, va = 0, vb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            cov += (ra[i] - ma) * (rb[i] - mb);
            va += (ra[i] - ma) * (ra[i] - ma);
            vb += (rb[i] - mb) * (rb[i] - mb);
        }

        return va > 0 && vb > 0 ? cov / Math.Sqrt(va * vb) : 0;
    }

    /// <summary>Ranks 1..n in ascending order, ties sharing their mean rank.</summary>
    public static double[] Ranks(double[] values)
    {
        var order = Enumerable.Range(0, values.Length).OrderBy(i => values[i]).ToArray();
        var ranks = new double[values.Length];
        for (var i = 0; i < order.Length;)
        {
            var j = i;
            while (j + 1 < order.Length && values[order[j + 1]] == values[order[i]])
            {
                j++;
            }

            for (var k = i; k <= j; k++)
            {
                ranks[order[k]] = (i + j) / 2.0 + 1;
            }

            i = j + 1;
        }

        return ranks;
    }

    /// <summary>ROC AUC: the probability that a positive scores above a negative (ties count half).</summary>
    public static double Auc(double[] scores, bool[] positive)
    {
        var ranks = Ranks(scores);
        double positives = positive.Count(p => p), negatives = positive.Length - positives;
        var rankSum = ranks.Where((_, i) => positive[i]).Sum();
        return (rankSum - positives * (positives + 1) / 2) / (positives * negatives);
    }
}

/// <summary>
/// xoshiro256** seeded through SplitMix64 with a Fisher-Yates shuffle (Lemire's multiply-shift for the index): the
/// draw the old engine's counterfactual check used, so the split, the LDS subsets and the random removals are the
/// same rows the old engine's 0.478 / 0.540 were measured on (System.Random's sequence is no contract of ours).
/// </summary>
internal sealed class Xoshiro256
{
    private ulong _s0, _s1, _s2, _s3;

    public Xoshiro256(ulong seed)
    {
        _s0 = SplitMix(ref seed);
        _s1 = SplitMix(ref seed);
        _s2 = SplitMix(ref seed);
        _s3 = SplitMix(ref seed);
    }

    public void Shuffle<T>(Span<T> values)
    {
        for (var i = values.Length - 1; i > 0; i--)
        {
            var j = (int)((Next() >> 32) * (ulong)(i + 1) >> 32);
            (values[i], values[j]) = (values[j], values[i]);
        }
    }

    private ulong Next()
    {
        var result = System.Numerics.BitOperations.RotateLeft(_s1 * 5, 7) * 9;
        var t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = System.Numerics.BitOperations.RotateLeft(_s3, 45);
        return result;
    }

    private static ulong SplitMix(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
