using System.Diagnostics;
using DataMarket.Compute;
using DataMarket.Learning.Losses;
using DataMarket.Learning.Models;
using DataMarket.Learning.Optimizers;
using DataMarket.Learning.Training;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.LoGra;

/// <summary>
/// Counterfactual checks of LoGra values on a labelled CSV (the UCI digits in the report): linear datamodeling
/// score over random half-size subsets, removal of the highest / lowest / random 10%, and mislabel detection.
/// Not part of the unit suite: it retrains the MLP about a hundred times.
/// </summary>
internal static class Counterfactual
{
    private const int Hidden = 64, Epochs = 30, BatchSize = 32;
    private const double LearningRate = 3e-3;

    public static void Run(string path, int subsets, int rank)
    {
        var clock = Stopwatch.StartNew();
        var data = DatasetReader.Load(path, new DatasetReadOptions { SourceName = path });
        var classes = data.Labels.Distinct().Order(StringComparer.Ordinal).ToList();
        int width = data.FeatureCount, classCount = classes.Count;
        var order = Enumerable.Range(0, data.Rows).ToArray();
        new SeededRandom(2024).Shuffle<int>(order);
        int trainRows = 1000, testRows = 200;
        var (trainX, trainY) = Take(data, classes, order.Take(trainRows));
        var (testX, testY) = Take(data, classes, order.Skip(trainRows).Take(testRows));
        Standardize(trainX, testX, width);
        Console.WriteLine($"data {path}: {trainRows} train, {testRows} test, {width} features, {classCount} classes; MLP {width}-{Hidden}-{classCount}, {Epochs} epochs");

        var model = Train(trainX, trainY, Enumerable.Range(0, trainRows).ToArray(), width, classCount, seed: 1);
        Console.WriteLine($"full model: test loss {TestLosses(model, testX, testY).Average():F4}");
        var methods = new (string Name, ProjectionOptions Projection, Preconditioning Hessian)[]
        {
            ($"logra-random r{rank}", new ProjectionOptions { Rank = rank }, Preconditioning.Raw),
            ($"logra-pca r{rank}", new ProjectionOptions { Rank = rank, Init = ProjectionInit.Pca }, Preconditioning.Raw),
            ("raw full-rank (P = I)", new ProjectionOptions { Init = ProjectionInit.Identity }, Preconditioning.Raw),
            ("grad-dot (P = I, identity)", new ProjectionOptions { Init = ProjectionInit.Identity }, Preconditioning.Identity),
        };
        var scores = methods.Select(m => Scores(model, trainX, trainY, testX, testY, m.Projection, m.Hessian)).ToArray();

        // LDS: Spearman over subsets between predicted loss (-Σ_{i∈S} s(q, i)) and the retrained model's loss on q.
        var random = new SeededRandom(99);
        var actual = new double[subsets][];
        var chosen = new int[subsets][];
        for (int s = 0; s < subsets; s++)
        {
            var indices = Enumerable.Range(0, trainRows).ToArray();
            random.Shuffle<int>(indices);
            chosen[s] = indices.Take(trainRows / 2).ToArray();
            actual[s] = TestLosses(Train(trainX, trainY, chosen[s], width, classCount, seed: 1), testX, testY);
        }

        for (int m = 0; m < methods.Length; m++)
        {
            double total = 0;
            for (int q = 0; q < testRows; q++)
            {
                var predicted = chosen.Select(subset => -subset.Sum(i => scores[m][q, i])).ToArray();
                total += Spearman(predicted, actual.Select(a => a[q]).ToArray());
            }

            Console.WriteLine($"LDS {methods[m].Name,-28} {total / testRows:F3}  ({subsets} half-size subsets, {testRows} test points)");
        }

        // Removal: top / bottom / random 10% by value (mean score over test points) of LoGra-random, 5 seeds each.
        var values = Enumerable.Range(0, trainRows).Select(i => Enumerable.Range(0, testRows).Average(q => scores[0][q, i])).ToArray();
        var byValue = Enumerable.Range(0, trainRows).OrderByDescending(i => values[i]).ToArray();
        int tenth = trainRows / 10;
        var removals = new (string Name, Func<int, HashSet<int>> Removed)[]
        {
            ("none", _ => []),
            ("highest 10%", _ => byValue.Take(tenth).ToHashSet()),
            ("lowest 10%", _ => byValue.TakeLast(tenth).ToHashSet()),
            ("random 10%", seed =>
            {
                var indices = Enumerable.Range(0, trainRows).ToArray();
                new SeededRandom((ulong)(500 + seed)).Shuffle<int>(indices);
                return indices.Take(tenth).ToHashSet();
            }),
        };
        foreach (var (name, removed) in removals)
        {
            var losses = Enumerable.Range(0, 5).Select(seed =>
            {
                var gone = removed(seed);
                var kept = Enumerable.Range(0, trainRows).Where(i => !gone.Contains(i)).ToArray();
                return TestLosses(Train(trainX, trainY, kept, width, classCount, (ulong)(10 + seed)), testX, testY).Average();
            }).ToArray();
            Console.WriteLine($"remove {name,-12} test loss {losses.Average():F5} ± {StandardError(losses):F5} (5 seeds)");
        }

        // Mislabel detection: flip 10% of the training labels, retrain, rank by self-influence and by lowest value.
        var flipped = new bool[trainRows];
        var noisyY = (int[])trainY.Clone();
        var flipRandom = new SeededRandom(7);
        var flipOrder = Enumerable.Range(0, trainRows).ToArray();
        flipRandom.Shuffle<int>(flipOrder);
        foreach (int i in flipOrder.Take(tenth))
        {
            noisyY[i] = (noisyY[i] + 1 + flipRandom.NextInt(classCount - 1)) % classCount;
            flipped[i] = true;
        }

        var noisy = Train(trainX, noisyY, Enumerable.Range(0, trainRows).ToArray(), width, classCount, seed: 1);
        foreach (var mode in new[] { ScoreMode.Dot, ScoreMode.Cosine })
        {
            var (self, pairwise) = SelfAndPairwise(noisy, trainX, noisyY, testX, testY, new ProjectionOptions { Rank = rank }, Preconditioning.Raw, mode);
            var lowest = Enumerable.Range(0, trainRows).Select(i => -Enumerable.Range(0, testRows).Average(q => pairwise[q, i])).ToArray();
            Console.WriteLine($"mislabel AUC ({mode}): self-influence {Auc(self, flipped):F3}, lowest value {Auc(lowest, flipped):F3}");
        }

        Console.WriteLine($"elapsed {clock.Elapsed.TotalSeconds:F0} s");
    }

    private static double[,] Scores(MlpModel<float> model, float[] trainX, int[] trainY, float[] testX, int[] testY, ProjectionOptions projection, Preconditioning hessian) =>
        SelfAndPairwise(model, trainX, trainY, testX, testY, projection, hessian, ScoreMode.Dot).Pairwise;

    private static (double[] Self, double[,] Pairwise) SelfAndPairwise(MlpModel<float> model, float[] trainX, int[] trainY, float[] testX, int[] testY,
        ProjectionOptions projection, Preconditioning hessian, ScoreMode mode)
    {
        var backend = ComputeBackends.Default.Backend;
        var train = new TabularGradientSource<float>(model, trainX, trainY);
        var test = new TabularGradientSource<float>(model, testX, testY);
        var options = new LograValuationOptions { Projection = projection, Hessian = hessian, Backend = backend };
        var projections = LograValuation.MakeProjections(train, options, backend, null, CancellationToken.None);
        var directory = Path.Combine(Path.GetTempPath(), $"logra-counterfactual-{Guid.NewGuid():N}");
        try
        {
            using var store = LograValuation.Log(train, projections, directory, GradientDType.Float32, 64, backend, null, CancellationToken.None);
            var scorer = new InfluenceScorer(store, Preconditioner.Fit(store, hessian, null, backend), backend);
            using var logger = new GradientLogger<float>(model, projections, backend);
            return (scorer.SelfInfluence(), scorer.Pairwise(logger.Compute(test, 64), mode));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static MlpModel<float> Train(float[] x, int[] y, int[] rows, int width, int classes, ulong seed)
    {
        var model = new MlpModel<float>(new MlpOptions(width, [Hidden], classes, Activation.Relu, seed));
        var (subsetX, subsetY) = Subset(x, y, rows, width);
        Trainer.Fit(new TabularGradientSource<float>(model, subsetX, subsetY) as ITrainingTask<float>, new AdamW<float>(model.Parameters, LearningRate, weightDecay: 0),
            new TrainerOptions(Epochs, BatchSize, seed));
        return model;
    }

    private static double[] TestLosses(MlpModel<float> model, float[] x, int[] y)
    {
        var logits = model.Forward(x, y.Length);
        int classes = model.Options.OutputWidth;
        return Enumerable.Range(0, y.Length).Select(i => SoftmaxCrossEntropy.Compute<float>(logits.AsSpan(i * classes, classes), classes, [y[i]]).Value).ToArray();
    }

    private static (float[] X, int[] Y) Take(TabularDataset data, List<string> classes, IEnumerable<int> rows)
    {
        var list = rows.ToArray();
        var x = new float[list.Length * data.FeatureCount];
        var y = new int[list.Length];
        for (int i = 0; i < list.Length; i++)
        {
            data.Row(list[i]).CopyTo(x.AsSpan(i * data.FeatureCount));
            y[i] = classes.IndexOf(data.Labels[list[i]]);
        }

        return (x, y);
    }

    private static (float[] X, int[] Y) Subset(float[] x, int[] y, int[] rows, int width)
    {
        var subsetX = new float[rows.Length * width];
        var subsetY = new int[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            x.AsSpan(rows[i] * width, width).CopyTo(subsetX.AsSpan(i * width));
            subsetY[i] = y[rows[i]];
        }

        return (subsetX, subsetY);
    }

    private static void Standardize(float[] train, float[] test, int width)
    {
        int rows = train.Length / width;
        for (int j = 0; j < width; j++)
        {
            double mean = 0, square = 0;
            for (int r = 0; r < rows; r++)
            {
                mean += train[r * width + j];
                square += train[r * width + j] * (double)train[r * width + j];
            }

            mean /= rows;
            double sd = Math.Sqrt(Math.Max(0, square / rows - mean * mean));
            double scale = sd > 1e-9 ? 1 / sd : 1;
            foreach (var values in new[] { train, test })
            {
                for (int i = j; i < values.Length; i += width)
                {
                    values[i] = (float)((values[i] - mean) * scale);
                }
            }
        }
    }

    private static double Spearman(double[] a, double[] b)
    {
        var ra = Ranks(a);
        var rb = Ranks(b);
        double ma = ra.Average(), mb = rb.Average(), cov = 0, va = 0, vb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            cov += (ra[i] - ma) * (rb[i] - mb);
            va += (ra[i] - ma) * (ra[i] - ma);
            vb += (rb[i] - mb) * (rb[i] - mb);
        }

        return va > 0 && vb > 0 ? cov / Math.Sqrt(va * vb) : 0;
    }

    private static double[] Ranks(double[] values)
    {
        var order = Enumerable.Range(0, values.Length).OrderBy(i => values[i]).ToArray();
        var ranks = new double[values.Length];
        for (int i = 0; i < order.Length;)
        {
            int j = i;
            while (j + 1 < order.Length && values[order[j + 1]] == values[order[i]])
            {
                j++;
            }

            for (int k = i; k <= j; k++)
            {
                ranks[order[k]] = (i + j) / 2.0;
            }

            i = j + 1;
        }

        return ranks;
    }

    private static double Auc(double[] scores, bool[] positive)
    {
        double wins = 0;
        long pairs = 0;
        for (int i = 0; i < scores.Length; i++)
        {
            for (int j = 0; j < scores.Length; j++)
            {
                if (positive[i] && !positive[j])
                {
                    pairs++;
                    wins += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
                }
            }
        }

        return wins / pairs;
    }

    private static double StandardError(double[] values)
    {
        double mean = values.Average();
        return Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Length - 1) / values.Length);
    }
}
