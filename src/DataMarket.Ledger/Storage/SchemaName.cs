using System.Text.RegularExpressions;

namespace DataMarket.Ledger.Storage;

internal static partial class SchemaName
{
    /// <summary>Schema names are spliced into DDL, so only plain lower-case identifiers are accepted.</summary>
    public static string Validate(string schema)
    {
        ArgumentException.ThrowIfNullOrEmpty(schema);
        if (!Identifier().IsMatch(schema))
        {
            throw new ArgumentException($"Schema name '{schema}' must match [a-z_][a-z0-9_]{{0,62}}.", nameof(schema));
        }

        return schema;
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex Identifier();
}
