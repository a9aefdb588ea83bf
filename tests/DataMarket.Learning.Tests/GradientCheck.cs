using DataMarket.Compute;
using DataMarket.Learning.Layers;

namespace DataMarket.Learning.Tests;

/// <summary>
/// Central finite differences in float64. The layers are generic, so the code under test is the same
/// code that trains in float32; only the element type differs. The scalar loss is L = Σ r ∘ f(x) for a
/// fixed random r, whose gradient with respect to the output is r.
/// </summary>
internal static class GradientCheck
{
    public const double Step = 1e-5;
    public const double Tolerance = 1e-6;

    /// <summary>‖a − n‖ / max(‖a‖, ‖n‖): a relative error that is not dominated by near-zero entries.</summary>
    public static double RelativeError(ReadOnlySpan<double> analytic, ReadOnlySpan<double> numeric)
    {
        double difference = 0, a = 0, n = 0;
        for (int i = 0; i < analytic.Length; i++)
        {
            difference += (analytic[i] - numeric[i]) * (analytic[i] - numeric[i]);
            a += analytic[i] * analytic[i];
            n += numeric[i] * numeric[i];
        }
        double scale = Math.Sqrt(Math.Max(a, n));
        return scale == 0 ? 0 : Math.Sqrt(difference) / scale;
    }

    public static double[] Numeric(Func<double> loss, double[] values, IReadOnlyList<int>? indices = null)
    {
        var selected = indices ?? Enumerable.Range(0, values.Length).ToArray();
        var gradient = new double[selected.Count];
        for (int s = 0; s < selected.Count; s++)
        {
            int i = selected[s];
            double original = values[i];
            values[i] = original + Step;
            double plus = loss();
            values[i] = original - Step;
            double minus = loss();
            values[i] = original;
            gradient[s] = (plus - minus) / (2 * Step);
        }
        return gradient;
    }

    public static double Dot(double[] x, double[] y)
    {
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            sum += x[i] * y[i];
        }
        return sum;
    }

    /// <summary>Checks dL/dx and dL/dθ of <paramref name="layer"/>; big parameters are sampled to keep the test fast.</summary>
    public static void CheckLayer(Layer<double> layer, BatchShape shape, int inputWidth, ulong seed = 1, int maxPerParameter = 64)
    {
        var random = new SeededRandom(seed);
        var input = new double[shape.Rows * inputWidth];
        random.FillNormal(input, 0.0, 1.0);
        var output = layer.Forward(input, shape);
        var weights = new double[output.Length];
        random.FillNormal(weights, 0.0, 1.0);
        var parameters = layer.NamedParameters().ToList();
        foreach (var (_, parameter) in parameters)
        {
            parameter.ZeroGradient();
        }
        var inputGradient = layer.Backward((double[])weights.Clone());

        double Loss() => Dot(layer.Forward(input, shape), weights);

        double inputError = RelativeError(inputGradient, Numeric(Loss, input));
        Assert.True(inputError < Tolerance, $"{layer.GetType().Name} input gradient relative error {inputError:E2}");
        foreach (var (name, parameter) in parameters)
        {
            var indices = Sample(parameter.Value.Length, maxPerParameter, random);
            var analytic = indices.Select(i => parameter.Gradient[i]).ToArray();
            double error = RelativeError(analytic, Numeric(Loss, parameter.Value, indices));
            Assert.True(error < Tolerance, $"{layer.GetType().Name} {name} gradient relative error {error:E2}");
        }
    }

    public static int[] Sample(int length, int max, SeededRandom random)
    {
        var all = Enumerable.Range(0, length).ToArray();
        if (length <= max)
        {
            return all;
        }
        random.Shuffle<int>(all);
        return all[..max];
    }
}
