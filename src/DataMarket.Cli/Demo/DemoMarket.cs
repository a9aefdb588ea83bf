using System.Globalization;
using System.Text;

namespace DataMarket.Cli.Demo;

/// <summary>One seller of the generated market and what kind of data it sells.</summary>
public sealed record DemoSeller(string Id, string Kind, string Csv);

/// <summary>
/// A small deterministic market: a buyer's classification task and sellers whose data helps it, hurts it
/// (flipped labels), copies another seller, or comes from an unrelated distribution.
/// </summary>
public sealed class DemoMarket
{
    public const int Features = 6;
    public const int Classes = 4;

    private readonly double[][] _centers;
    private readonly Random _random;

    public DemoMarket(int seed = 20261121, int rowsPerSeller = 300, int testRows = 200)
    {
        _random = new Random(seed);
        _centers = Enumerable.Range(0, Classes)
            .Select(_ => Enumerable.Range(0, Features).Select(_ => _random.NextDouble() * 6 - 3).ToArray())
            .ToArray();

        var northwind = Sample(rowsPerSeller, shift: 0, flipFraction: 0, randomLabels: false);
        Sellers =
        [
            new DemoSeller("northwind", "clean", ToCsv(northwind)),
            new DemoSeller("bluebird", "clean", ToCsv(Sample(rowsPerSeller, 0, 0, false))),
            new DemoSeller("acme", "clean", ToCsv(Sample(rowsPerSeller, 0, 0, false))),
            new DemoSeller("copycat", "copies northwind's rows", ToCsv(northwind)),
            new DemoSeller("noisy-labels", "half of its labels flipped", ToCsv(Sample(rowsPerSeller, 0, 0.5, false))),
            new DemoSeller("offworld", "unrelated distribution", ToCsv(Sample(rowsPerSeller, shift: 12, flipFraction: 0, randomLabels: true))),
        ];
        TestTaskCsv = ToCsv(Sample(testRows, 0, 0, false));
    }

    public IReadOnlyList<DemoSeller> Sellers { get; }

    public string TestTaskCsv { get; }

    private List<(double[] Features, int Label)> Sample(int rows, double shift, double flipFraction, bool randomLabels)
    {
        var result = new List<(double[], int)>(rows);
        for (var r = 0; r < rows; r++)
        {
            var label = _random.Next(Classes);
            var features = new double[Features];
            for (var f = 0; f < Features; f++)
            {
                features[f] = _centers[label][f] + shift + 1.6 * Gaussian();
            }

            if (randomLabels)
            {
                label = _random.Next(Classes);
            }
            else if (_random.NextDouble() < flipFraction)
            {
                label = (label + 1 + _random.Next(Classes - 1)) % Classes;
            }

            result.Add((features, label));
        }

        return result;
    }

    private double Gaussian()
    {
        var u1 = 1.0 - _random.NextDouble();
        var u2 = _random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    private static string ToCsv(List<(double[] Features, int Label)> rows)
    {
        var csv = new StringBuilder();
        csv.AppendLine(string.Join(',', Enumerable.Range(0, Features).Select(f => $"x{f}")) + ",label");
        foreach (var (features, label) in rows)
        {
            csv.AppendLine(string.Join(',', features.Select(v => v.ToString("F4", CultureInfo.InvariantCulture))) + "," + label.ToString(CultureInfo.InvariantCulture));
        }

        return csv.ToString();
    }
}
