using System.Globalization;

namespace DataMarket.Catalog.Application;

/// <summary>
/// Length and character rules for everything a caller names: display names may hold any printable text (pages
/// encode it when they show it), identifiers and keys only a small safe alphabet.
/// </summary>
public static class NameRules
{
    public const int MaxNameLength = 200;
    public const int MaxDescriptionLength = 2000;
    public const int MaxFileNameLength = 255;
    public const int MaxActorIdLength = 200;
    public const int MaxIdempotencyKeyLength = 200;

    /// <summary>Printable text: no control characters and no bidirectional overrides that make text read differently than it is.</summary>
    public static bool IsPrintable(string? text, bool allowLineBreaks = false)
    {
        if (text is null)
        {
            return true;
        }

        foreach (var ch in text)
        {
            if (allowLineBreaks && ch is '\n' or '\r' or '\t')
            {
                continue;
            }

            var category = CharUnicodeInfo.GetUnicodeCategory(ch);
            if (category is UnicodeCategory.Control or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                || ch is >= '\u202A' and <= '\u202E' || ch is >= '\u2066' and <= '\u2069')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A plain file name: printable, not "." or "..", and without folder separators.</summary>
    public static bool IsPlainFileName(string? name) =>
        !string.IsNullOrWhiteSpace(name) && name.Length <= MaxFileNameLength && IsPrintable(name)
        && name.IndexOfAny(['/', '\\', ':']) < 0 && name is not ("." or "..");

    /// <summary>Account ids as the gateway issues them: letters, digits and <c>. _ - @ :</c>.</summary>
    public static bool IsActorId(string? id) =>
        !string.IsNullOrEmpty(id) && id.Length <= MaxActorIdLength && id.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '.' or '_' or '-' or '@' or ':');

    public static bool IsIdempotencyKey(string? key) =>
        !string.IsNullOrEmpty(key) && key.Length <= MaxIdempotencyKeyLength && key.All(ch => ch is > ' ' and <= '~');
}
