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

    /// <summary>
    /// A text field as CSV. Group names come from uploaded data, so a leading = + - @ (or tab / carriage return) is
    /// prefixed with an apostrophe: a spreadsheet opening the file shows the text instead of running it as a formula.
    /// </summary>
    public static string Field(string text)
    {
        if (text.Length > 0 && text[0] is '=' or '+' or '-' or '@' or '\t' or '\r')
        {
            text = "'" + text;
        }

        return text.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? $"\"{text.Replace("\"", "\"\"", StringComparison.Ordinal)}\"" : text;
    }
}
