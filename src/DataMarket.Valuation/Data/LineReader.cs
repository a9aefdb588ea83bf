using System.Text;

namespace DataMarket.Valuation.Data;

/// <summary>
/// Reads lines with a cap on their length while streaming, so a file with no newline (or one huge line) is rejected
/// after at most <see cref="DatasetReadOptions.MaxLineLength"/> characters instead of being read whole into memory.
/// </summary>
internal sealed class LineReader(TextReader reader, int maxLineLength, string source) : IDisposable
{
    private readonly char[] _buffer = new char[1 << 14];
    private readonly StringBuilder _line = new();
    private int _position;
    private int _length;
    private bool _skipLineFeed;

    /// <summary>The next line without its terminator, or null at the end; <paramref name="row"/> names the row in the error.</summary>
    public string? ReadLine(long? row)
    {
        _line.Clear();
        var any = false;
        while (true)
        {
            if (_position == _length)
            {
                _length = reader.Read(_buffer, 0, _buffer.Length);
                _position = 0;
                if (_length == 0)
                {
                    return any ? _line.ToString() : null;
                }
            }

            if (_skipLineFeed)
            {
                _skipLineFeed = false;
                if (_buffer[_position] == '\n')
                {
                    _position++;
                    continue;
                }
            }

            any = true;
            var span = _buffer.AsSpan(_position, _length - _position);
            var end = span.IndexOfAny('\r', '\n');
            var take = end < 0 ? span.Length : end;
            if (_line.Length + take > maxLineLength)
            {
                throw new DatasetFormatException(source, row, null,
                    $"the line is longer than {maxLineLength} characters (is the file in the right format, with one row per line?)");
            }

            _line.Append(span[..take]);
            _position += take;
            if (end >= 0)
            {
                _skipLineFeed = _buffer[_position] == '\r';
                _position++;
                return _line.ToString();
            }
        }
    }

    public void Dispose() => reader.Dispose();
}

/// <summary>Short, printable excerpts of input for error messages: never echo more than a few dozen characters back.</summary>
public static class InputExcerpt
{
    public const int DefaultLength = 40;

    public static string Of(string? text, int maxLength = DefaultLength)
    {
        if (string.IsNullOrEmpty(text))
        {
            return text ?? string.Empty;
        }

        var cut = text.Length > maxLength ? text[..maxLength] : text;
        var builder = new StringBuilder(cut.Length + 16);
        foreach (var ch in cut)
        {
            builder.Append(char.IsControl(ch) ? '?' : ch);
        }

        if (text.Length > maxLength)
        {
            builder.Append($"… ({text.Length} characters)");
        }

        return builder.ToString();
    }
}
