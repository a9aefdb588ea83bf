using System.Globalization;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Cli.Output;

/// <summary>The value files every valuation command writes: full round-trip precision, invariant culture.</summary>
public static class ValueFiles
{
    public static void WritePoints(string path, IReadOnlyList<ValueEstimate> values) =>
        AtomicFile.Write(path, writer =>
        {
            writer.WriteLine("index,value,stderr");
            for (var i = 0; i < values.Count; i++)
            {
                writer.WriteLine($"{i.ToString(CultureInfo.InvariantCulture)},{Number(values[i].Value)},{Number(values[i].StandardError)}");
            }
        });

    public static void WriteGroups(string path, IEnumerable<(string Group, ValueEstimate Value)> groups) =>
        AtomicFile.Write(path, writer =>
        {
            writer.WriteLine("group,value,stderr");
            foreach (var (group, value) in groups)
            {
                writer.WriteLine($"{Field(group)},{Number(value.Value)},{Number(value.StandardError)}");
            }
        });

    public static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    public static string Field(string text) =>
        text.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? $"\"{text.Replace("\"", "\"\"", StringComparison.Ordinal)}\"" : text;
}
