using System.Text;

namespace DataMarket.Valuation.Data;

/// <summary>Splits one CSV line (RFC 4180 quoting within the line; fields may not span lines).</summary>
public static class CsvLine
{
    public static List<string> Split(string line, string source, long row, int maxFieldLength)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        var inQuotes = false;
        for (var i = 0; i < line.Length; i++)
        {
            var ch = line[i];
            if (inQuotes)
            {
                if (ch == '"')
                {
                    if (i + 1 < line.Length && line[i + 1] == '"')
                    {
                        field.Append('"');
                        i++;
                    }
                    else
                    {
                        inQuotes = false;
                    }
                }
                else
                {
                    Append(field, ch, maxFieldLength, source, row, fields.Count);
                }
            }
            else if (ch == ',')
            {
                fields.Add(field.ToString());
                field.Clear();
            }
            else if (ch == '"' && field.Length == 0)
            {
                inQuotes = true;
            }
            else
            {
                Append(field, ch, maxFieldLength, source, row, fields.Count);
            }
        }

        if (inQuotes)
        {
            throw new DatasetFormatException(source, row == 0 ? null : row, null, "a quoted field is not closed on this line");
        }

        fields.Add(field.ToString());
        return fields;
    }

    private static void Append(StringBuilder field, char ch, int maxFieldLength, string source, long row, int index)
    {
        if (field.Length >= maxFieldLength)
        {
            throw new DatasetFormatException(source, row == 0 ? null : row, null,
                $"field {index + 1} is longer than {maxFieldLength} characters");
        }

        field.Append(ch);
    }
}
