namespace DataMarket.Valuation.Data;

/// <summary>
/// Bad input in a dataset file. The message names the file, the 1-based data row (the CSV header is not a row)
/// and the column or field, so a seller can find and fix the exact cell.
/// </summary>
public sealed class DatasetFormatException : Exception
{
    public DatasetFormatException(string source, long? row, string? column, string problem)
        : base(Format(source, row, column, problem))
    {
        Source = source;
        Row = row;
        Column = column;
        Problem = problem;
    }

    public new string Source { get; }

    /// <summary>1-based data row, or null when the problem concerns the whole file.</summary>
    public long? Row { get; }

    public string? Column { get; }

    public string Problem { get; }

    private static string Format(string source, long? row, string? column, string problem)
    {
        var where = InputExcerpt.Of(source, 260);
        if (row is not null)
        {
            where += $", row {row}";
        }

        if (column is not null)
        {
            where += $", column '{InputExcerpt.Of(column)}'";
        }

        return $"{where}: {problem}";
    }
}
