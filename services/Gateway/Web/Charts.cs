using System.Globalization;

namespace DataMarket.Gateway.Web;

/// <summary>One horizontal bar of a value chart: where the bar and its 95% whisker lie, in SVG user units.</summary>
public sealed record ValueBar(string Label, string ShortLabel, string ValueText, double Y, double BarX, double BarWidth, double? WhiskerFrom, double? WhiskerTo, bool Negative);

/// <summary>A horizontal bar chart of values with their 95% whiskers (the shared partial <c>_ValueChart</c> draws it).</summary>
public sealed record ValueChart(IReadOnlyList<(string Label, WebEstimate Value)> Rows, string TestId, string Description);

/// <summary>One histogram bin.</summary>
public sealed record HistogramBin(double X, double Width, double Height, double Y, int Count, string RangeText);

/// <summary>
/// Server-side geometry for the result charts: the page draws SVG from these numbers, so the charts need no script.
/// The axis spans every value and every interval end, and always includes zero so the sign of a value reads at a glance.
/// </summary>
public static class Charts
{
    public const double Width = 900;
    public const double LabelWidth = 220;
    public const double BarHeight = 22;
    public const double RowHeight = 34;
    public const double Top = 10;
    public const int MaxLabelCharacters = 28;

    public static string F(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);

    public static string Number(double value) => value.ToString("G4", CultureInfo.InvariantCulture);

    public static (IReadOnlyList<ValueBar> Bars, double ZeroX, double Height, double Min, double Max) ValueBars(IReadOnlyList<(string Label, WebEstimate Value)> rows)
    {
        var ends = rows.SelectMany(r => new[] { r.Value.Value, r.Value.Lower95 ?? r.Value.Value, r.Value.Upper95 ?? r.Value.Value })
            .Where(double.IsFinite).Append(0.0).ToList();
        var min = ends.Min();
        var max = ends.Max();
        if (max - min < 1e-12)
        {
            max = min + 1;
        }

        var plotLeft = LabelWidth;
        var plotWidth = Width - LabelWidth - 20;
        double X(double v) => plotLeft + (v - min) / (max - min) * plotWidth;
        var zero = X(0);
        var bars = rows.Select((row, index) =>
        {
            var x = X(row.Value.Value);
            double? low = row.Value.Lower95 is { } l && double.IsFinite(l) ? X(l) : null;
            double? high = row.Value.Upper95 is { } u && double.IsFinite(u) ? X(u) : null;
            var interval = row.Value.Lower95 is { } lo && row.Value.Upper95 is { } hi ? $" (95%: {Number(lo)} to {Number(hi)})" : string.Empty;
            // Long names are cut to fit left of the axis; the full name is the bar's tooltip and in the table below.
            var shortLabel = row.Label.Length > MaxLabelCharacters ? row.Label[..(MaxLabelCharacters - 1)] + "…" : row.Label;
            return new ValueBar(row.Label, shortLabel, Number(row.Value.Value) + interval, Top + index * RowHeight, Math.Min(x, zero), Math.Abs(x - zero), low, high, row.Value.Value < 0);
        }).ToList();
        return (bars, zero, Top + rows.Count * RowHeight + 24, min, max);
    }

    public static IReadOnlyList<HistogramBin> Histogram(IReadOnlyList<double> values, int bins, double height)
    {
        var finite = values.Where(double.IsFinite).ToList();
        if (finite.Count == 0)
        {
            return [];
        }

        var min = finite.Min();
        var max = finite.Max();
        var span = max - min < 1e-12 ? 1 : max - min;
        var counts = new int[bins];
        foreach (var value in finite)
        {
            counts[Math.Min(bins - 1, (int)((value - min) / span * bins))]++;
        }

        var tallest = counts.Max();
        var binWidth = (Width - 40) / bins;
        return counts.Select((count, i) =>
        {
            var h = height * count / tallest;
            var from = min + span * i / bins;
            return new HistogramBin(20 + i * binWidth, binWidth - 2, h, height - h + 10, count, $"{Number(from)} to {Number(from + span / bins)}: {count} points");
        }).ToList();
    }
}
