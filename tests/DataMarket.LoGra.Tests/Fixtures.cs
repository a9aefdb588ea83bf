using System.Numerics;
using DataMarket.Compute;
using DataMarket.Learning.Models;
using DataMarket.Valuation.LoGra;

namespace DataMarket.LoGra.Tests;

/// <summary>A scratch folder per test, removed afterwards.</summary>
internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"datamarket-logra-tests-{Guid.NewGuid():N}");

    public TempFolder() => Directory.CreateDirectory(Path);

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}

/// <summary>Deterministic small classification problems and a tiny MLP over them.</summary>
internal static class Problems
{
    /// <summary>Gaussian blobs: <paramref name="classes"/> centres in <paramref name="width"/> dimensions.</summary>
    public static (float[] Features, int[] Labels) Blobs(int rows, int width, int classes, ulong seed, double spread = 0.6)
    {
        var random = new SeededRandom(seed);
        var centres = new double[classes * width];
        var centreRandom = new SeededRandom(12345);
        for (int i = 0; i < centres.Length; i++)
        {
            centres[i] = 2.5 * centreRandom.NextNormal();
        }

        var features = new float[rows * width];
        var labels = new int[rows];
        for (int r = 0; r < rows; r++)
        {
            labels[r] = r % classes;
            for (int j = 0; j < width; j++)
            {
                features[r * width + j] = (float)(centres[labels[r] * width + j] + spread * random.NextNormal());
            }
        }

        return (features, labels);
    }

    public static T[] Cast<T>(float[] values) where T : unmanaged, IFloatingPointIeee754<T> => values.Select(v => T.CreateTruncating(v)).ToArray();

    public static MlpModel<T> Mlp<T>(int inputs, int hidden, int classes, ulong seed = 3) where T : unmanaged, IFloatingPointIeee754<T> =>
        new(new MlpOptions(inputs, [hidden], classes, Activation.Tanh, seed), ComputeBackends.Managed);

    /// <summary>Logs every example of <paramref name="source"/> into a new store.</summary>
    public static GradientStore Log<T>(IGradientSource<T> source, ProjectionSet projections, string directory, GradientDType dtype, int batchSize = 4)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        LograValuation.Log(source, projections, directory, dtype, batchSize, ComputeBackends.Managed, null, CancellationToken.None);

    public static GradientMatrix Gradients<T>(IGradientSource<T> source, ProjectionSet projections, int batchSize = 4)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        using var logger = new GradientLogger<T>(source.Model, projections, ComputeBackends.Managed);
        return logger.Compute(source, batchSize);
    }

    public static double MaxRelativeError(double[,] actual, double[,] expected)
    {
        double scale = 0, error = 0;
        foreach (var value in expected)
        {
            scale = Math.Max(scale, Math.Abs(value));
        }

        for (int i = 0; i < expected.GetLength(0); i++)
        {
            for (int j = 0; j < expected.GetLength(1); j++)
            {
                error = Math.Max(error, Math.Abs(actual[i, j] - expected[i, j]));
            }
        }

        return error / scale;
    }

    /// <summary>ROC AUC of <paramref name="scores"/> for the positives (ties count one half).</summary>
    public static double Auc(IReadOnlyList<double> scores, IReadOnlyList<bool> positive)
    {
        double wins = 0;
        long pairs = 0;
        for (int i = 0; i < scores.Count; i++)
        {
            if (!positive[i])
            {
                continue;
            }

            for (int j = 0; j < scores.Count; j++)
            {
                if (positive[j])
                {
                    continue;
                }

                pairs++;
                wins += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
            }
        }

        return wins / pairs;
    }
}
