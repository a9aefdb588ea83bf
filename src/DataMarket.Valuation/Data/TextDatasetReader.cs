using System.Text;
using System.Text.Json;

namespace DataMarket.Valuation.Data;

/// <summary>Text examples: JSON lines with a string field "text"; row R is line R.</summary>
public static class TextDatasetReader
{
    public const string TextField = "text";

    public static string[] Load(string path, string sourceName)
    {
        using var stream = DatasetReader.OpenFile(path, sourceName);
        return Load(stream, sourceName);
    }

    public static string[] Load(Stream stream, string sourceName)
    {
        using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, leaveOpen: true);
        var texts = new List<string>();
        long row = 0;
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            row++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            try
            {
                using var document = JsonDocument.Parse(line);
                if (document.RootElement.ValueKind != JsonValueKind.Object || !document.RootElement.TryGetProperty(TextField, out var text))
                {
                    throw new DatasetFormatException(sourceName, row, TextField, "the object has no 'text' field");
                }

                if (text.ValueKind != JsonValueKind.String)
                {
                    throw new DatasetFormatException(sourceName, row, TextField, "'text' must be a string");
                }

                texts.Add(text.GetString()!);
            }
            catch (JsonException exception)
            {
                throw new DatasetFormatException(sourceName, row, null, $"the line is not valid JSON ({exception.Message})");
            }
        }

        if (texts.Count == 0)
        {
            throw new DatasetFormatException(sourceName, null, null, "the file is empty (expected one JSON object with a 'text' field per line)");
        }

        return texts.ToArray();
    }

    /// <summary>True when the first non-blank line of a JSONL file is an object with a "text" field (a text task).</summary>
    public static bool IsTextFile(string path)
    {
        if (!path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) && !path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        try
        {
            foreach (var line in File.ReadLines(path))
            {
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }

                using var document = JsonDocument.Parse(line);
                return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty(TextField, out _)
                    && !document.RootElement.TryGetProperty("features", out _);
            }
        }
        catch (Exception exception) when (exception is JsonException or IOException or UnauthorizedAccessException)
        {
            return false;
        }

        return false;
    }
}
