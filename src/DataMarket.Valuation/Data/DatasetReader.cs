using System.Globalization;
using System.Text;
using System.Text.Json;

namespace DataMarket.Valuation.Data;

/// <summary>
/// Streams rows out of CSV or JSON-lines files and rejects bad input with the file, row and column named.
/// Row numbers are 1-based data rows: in a CSV file row R is on line R + 1 (line 1 is the header); in a
/// JSON-lines file row R is line R. Blank lines are skipped but still counted, so numbers always match lines.
/// </summary>
public static class DatasetReader
{
    public static IEnumerable<DatasetRow> ReadRows(Stream stream, DatasetReadOptions options)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(options);
        return options.Format switch
        {
            DatasetFormat.Csv => ReadCsv(stream, options),
            DatasetFormat.JsonLines => ReadJsonLines(stream, options),
            _ => throw new ArgumentOutOfRangeException(nameof(options)),
        };
    }

    /// <summary>Reads every row and checks the whole file; keeps nothing but counts.</summary>
    public static DatasetSummary Validate(Stream stream, DatasetReadOptions options)
    {
        var rows = 0;
        var features = 0;
        IReadOnlyList<string> names = [];
        foreach (var row in ReadRows(stream, options))
        {
            rows++;
            features = row.Features.Length;
        }

        if (options.Format == DatasetFormat.Csv && stream.CanSeek)
        {
            stream.Position = 0;
            names = ReadCsvHeaderFeatureNames(stream, options);
        }

        return new DatasetSummary(rows, features, names);
    }

    public static TabularDataset Load(Stream stream, DatasetReadOptions options)
    {
        var features = new List<float>();
        var labels = new List<string>();
        var groups = options.GroupColumn is null ? null : new List<string>();
        var width = 0;
        foreach (var row in ReadRows(stream, options))
        {
            width = row.Features.Length;
            features.AddRange(row.Features);
            labels.Add(row.Label);
            groups?.Add(row.Group!);
        }

        IReadOnlyList<string>? names = null;
        if (options.Format == DatasetFormat.Csv && stream.CanSeek)
        {
            stream.Position = 0;
            names = ReadCsvHeaderFeatureNames(stream, options);
        }

        return new TabularDataset(features.ToArray(), width, labels.ToArray(), groups?.ToArray(), names);
    }

    public static TabularDataset Load(string path, DatasetReadOptions options)
    {
        using var stream = OpenFile(path, options.SourceName);
        return Load(stream, options);
    }

    public static FileStream OpenFile(string path, string sourceName)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new DatasetFormatException(sourceName, null, null, $"cannot open file: {exception.Message}");
        }
    }

    private static IReadOnlyList<string> ReadCsvHeaderFeatureNames(Stream stream, DatasetReadOptions options)
    {
        using var reader = new LineReader(new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, leaveOpen: true), options.MaxLineLength, options.SourceName);
        var header = reader.ReadLine(null);
        if (header is null)
        {
            return [];
        }

        var fields = CsvLine.Split(header, options.SourceName, 0, options.MaxFieldLength);
        return fields.Where(f => f.Trim() != options.LabelColumn && f.Trim() != options.GroupColumn).Select(f => f.Trim()).ToArray();
    }

    private static IEnumerable<DatasetRow> ReadCsv(Stream stream, DatasetReadOptions options)
    {
        var source = options.SourceName;
        using var reader = new LineReader(new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, leaveOpen: true), options.MaxLineLength, source);
        var headerLine = reader.ReadLine(null);
        while (headerLine is not null && string.IsNullOrWhiteSpace(headerLine))
        {
            headerLine = reader.ReadLine(null);
        }

        if (headerLine is null)
        {
            throw new DatasetFormatException(source, null, null, "the file is empty (expected a header row and at least one data row)");
        }

        var header = CsvLine.Split(headerLine, source, 0, options.MaxFieldLength).Select(h => h.Trim()).ToArray();
        var duplicate = header.GroupBy(h => h, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new DatasetFormatException(source, null, duplicate.Key, "the header names this column more than once");
        }

        var labelIndex = Array.IndexOf(header, options.LabelColumn);
        if (labelIndex < 0)
        {
            throw new DatasetFormatException(source, null, options.LabelColumn,
                $"the header has no label column '{InputExcerpt.Of(options.LabelColumn)}' (columns: {ColumnList(header)})");
        }

        var groupIndex = -1;
        if (options.GroupColumn is not null)
        {
            groupIndex = Array.IndexOf(header, options.GroupColumn);
            if (groupIndex < 0)
            {
                throw new DatasetFormatException(source, null, options.GroupColumn,
                    $"the header has no group column '{InputExcerpt.Of(options.GroupColumn)}' (columns: {ColumnList(header)})");
            }
        }

        var featureColumns = Enumerable.Range(0, header.Length).Where(i => i != labelIndex && i != groupIndex).ToArray();
        if (featureColumns.Length == 0)
        {
            throw new DatasetFormatException(source, null, null, "the header has no feature columns besides the label");
        }

        CheckWidth(options, source, null, featureColumns.Length);

        long row = 0;
        var any = false;
        string? line;
        while ((line = reader.ReadLine(row + 1)) is not null)
        {
            row++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var fields = CsvLine.Split(line, source, row, options.MaxFieldLength);
            if (fields.Count != header.Length)
            {
                throw new DatasetFormatException(source, row, null,
                    $"the row has {fields.Count} fields but the header has {header.Length}");
            }

            var features = new float[featureColumns.Length];
            for (var f = 0; f < featureColumns.Length; f++)
            {
                var column = featureColumns[f];
                features[f] = ParseFeature(fields[column], source, row, header[column]);
            }

            var label = NormalizeLabel(fields[labelIndex], source, row, options.LabelColumn);
            var group = groupIndex >= 0 ? RequireText(fields[groupIndex], source, row, options.GroupColumn!) : null;
            any = true;
            yield return new DatasetRow(row, features, label, group);
        }

        if (!any)
        {
            throw new DatasetFormatException(source, null, null, "the file has a header but no data rows");
        }
    }

    private static IEnumerable<DatasetRow> ReadJsonLines(Stream stream, DatasetReadOptions options)
    {
        var source = options.SourceName;
        using var reader = new LineReader(new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, leaveOpen: true), options.MaxLineLength, source);
        long row = 0;
        int? width = null;
        string? line;
        while ((line = reader.ReadLine(row + 1)) is not null)
        {
            row++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var parsed = ParseJsonRow(line, source, row, options);
            width ??= parsed.Features.Length;
            if (parsed.Features.Length != width)
            {
                throw new DatasetFormatException(source, row, "features",
                    $"the row has {parsed.Features.Length} features but earlier rows have {width}");
            }

            CheckWidth(options, source, row, parsed.Features.Length);
            yield return parsed;
        }

        if (width is null)
        {
            throw new DatasetFormatException(source, null, null, "the file is empty (expected one JSON object per line)");
        }
    }

    private static DatasetRow ParseJsonRow(string line, string source, long row, DatasetReadOptions options)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException exception)
        {
            throw new DatasetFormatException(source, row, null, $"the line is not valid JSON ({exception.Message})");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new DatasetFormatException(source, row, null, "the line must be a JSON object");
            }

            if (!root.TryGetProperty("features", out var featuresElement))
            {
                throw new DatasetFormatException(source, row, "features", "the object has no 'features' field");
            }

            if (featuresElement.ValueKind != JsonValueKind.Array)
            {
                throw new DatasetFormatException(source, row, "features", "'features' must be an array of numbers");
            }

            var features = new float[featuresElement.GetArrayLength()];
            if (features.Length == 0)
            {
                throw new DatasetFormatException(source, row, "features", "'features' is empty");
            }

            var index = 0;
            foreach (var element in featuresElement.EnumerateArray())
            {
                var column = $"features[{index}]";
                if (element.ValueKind != JsonValueKind.Number || !element.TryGetDouble(out var value))
                {
                    throw new DatasetFormatException(source, row, column, $"{InputExcerpt.Of(element.GetRawText())} is not a number");
                }

                features[index++] = ToFiniteFloat(value, element.GetRawText(), source, row, column);
            }

            if (!root.TryGetProperty(options.LabelColumn, out var labelElement))
            {
                throw new DatasetFormatException(source, row, options.LabelColumn, $"the object has no '{InputExcerpt.Of(options.LabelColumn)}' field");
            }

            var labelText = labelElement.ValueKind switch
            {
                JsonValueKind.String => labelElement.GetString()!,
                JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => labelElement.GetRawText(),
                _ => throw new DatasetFormatException(source, row, options.LabelColumn, "the label must be a string, number or boolean"),
            };

            string? group = null;
            if (options.GroupColumn is not null)
            {
                if (!root.TryGetProperty(options.GroupColumn, out var groupElement) || groupElement.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
                {
                    throw new DatasetFormatException(source, row, options.GroupColumn, $"the object has no '{InputExcerpt.Of(options.GroupColumn)}' field");
                }

                group = RequireText(groupElement.ValueKind == JsonValueKind.String ? groupElement.GetString()! : groupElement.GetRawText(), source, row, options.GroupColumn);
            }

            return new DatasetRow(row, features, NormalizeLabel(labelText, source, row, options.LabelColumn), group);
        }
    }

    private static void CheckWidth(DatasetReadOptions options, string source, long? row, int width)
    {
        if (options.ExpectedFeatures is { } expected && expected != width)
        {
            throw new DatasetFormatException(source, row, null,
                $"the data has {width} feature columns but the buyer's task has {expected}");
        }
    }

    /// <summary>At most the first ten column names, each cut short, so a bogus header is never echoed whole.</summary>
    private static string ColumnList(string[] header)
    {
        var shown = string.Join(", ", header.Take(10).Select(h => InputExcerpt.Of(h)));
        return header.Length > 10 ? $"{shown}, … {header.Length} in all" : shown;
    }

    private static float ParseFeature(string text, string source, long row, string column)
    {
        var trimmed = text.Trim();
        if (trimmed.Length == 0)
        {
            throw new DatasetFormatException(source, row, column, "the value is empty");
        }

        if (!double.TryParse(trimmed, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
        {
            throw new DatasetFormatException(source, row, column, $"'{InputExcerpt.Of(trimmed)}' is not a number");
        }

        return ToFiniteFloat(value, trimmed, source, row, column);
    }

    private static float ToFiniteFloat(double value, string text, string source, long row, string column)
    {
        if (!double.IsFinite(value))
        {
            throw new DatasetFormatException(source, row, column, $"'{InputExcerpt.Of(text)}' is not a finite number (NaN and Infinity are not allowed)");
        }

        var single = (float)value;
        if (!float.IsFinite(single))
        {
            throw new DatasetFormatException(source, row, column, $"'{InputExcerpt.Of(text)}' is outside the float32 range");
        }

        return single;
    }

    /// <summary>Numeric labels are compared as numbers ("1" equals "1.0"); other labels as trimmed text.</summary>
    private static string NormalizeLabel(string text, string source, long row, string column)
    {
        var trimmed = RequireText(text, source, row, column);
        if (double.TryParse(trimmed, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            if (!double.IsFinite(number))
            {
                throw new DatasetFormatException(source, row, column, $"'{InputExcerpt.Of(trimmed)}' is not a finite number");
            }

            return number.ToString("R", CultureInfo.InvariantCulture);
        }

        return trimmed;
    }

    private static string RequireText(string text, string source, long row, string column)
    {
        var trimmed = text.Trim();
        if (trimmed.Length == 0)
        {
            throw new DatasetFormatException(source, row, column, "the value is empty");
        }

        return trimmed;
    }
}
