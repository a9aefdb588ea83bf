namespace DataMarket.Valuation.Data;

public enum DatasetFormat
{
    /// <summary>Comma-separated values with a header row, one label column and numeric feature columns.</summary>
    Csv,
    /// <summary>One JSON object per line: <c>{"features": [numbers], "label": value}</c>.</summary>
    JsonLines,
}

public static class DatasetFormats
{
    public const string CsvName = "csv";
    public const string JsonLinesName = "jsonl";

    public static string Name(this DatasetFormat format) => format switch
    {
        DatasetFormat.Csv => CsvName,
        DatasetFormat.JsonLines => JsonLinesName,
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };

    public static bool TryParse(string? name, out DatasetFormat format)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case "csv":
                format = DatasetFormat.Csv;
                return true;
            case "jsonl" or "ndjson" or "json-lines" or "jsonlines":
                format = DatasetFormat.JsonLines;
                return true;
            default:
                format = default;
                return false;
        }
    }

    public static DatasetFormat Parse(string name) =>
        TryParse(name, out var format)
            ? format
            : throw new ArgumentException($"unknown dataset format '{name}' (expected csv or jsonl)", nameof(name));

    /// <summary>Guesses the format from a file name: <c>.jsonl</c>/<c>.ndjson</c> are JSON lines, anything else CSV.</summary>
    public static DatasetFormat FromPath(string path)
    {
        var extension = Path.GetExtension(path).ToLowerInvariant();
        return extension is ".jsonl" or ".ndjson" ? DatasetFormat.JsonLines : DatasetFormat.Csv;
    }
}
