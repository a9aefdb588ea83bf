using DataMarket.Valuation.Data;

namespace DataMarket.Catalog.Application;

public enum CatalogErrorKind
{
    Invalid,
    NotFound,
    Conflict,
    Unauthorized,
    Forbidden,
    TooLarge,
    /// <summary>A quota is used up (HTTP 429); the message says which and how to proceed.</summary>
    QuotaExceeded,
}

/// <summary>A request the catalog refuses; the API turns it into a problem-details response.</summary>
public sealed class CatalogException : Exception
{
    public CatalogException(CatalogErrorKind kind, string message, IReadOnlyDictionary<string, string[]>? errors = null)
        : base(message)
    {
        Kind = kind;
        Errors = errors;
    }

    private CatalogException(DatasetFormatException data)
        : base(data.Message, data)
    {
        Kind = CatalogErrorKind.Invalid;
        Data = data;
    }

    public CatalogErrorKind Kind { get; }

    public IReadOnlyDictionary<string, string[]>? Errors { get; }

    /// <summary>Set when the problem is in an uploaded file: names its file, row and column.</summary>
    public new DatasetFormatException? Data { get; }

    public static CatalogException BadData(DatasetFormatException data) => new(data);

    /// <summary>Names the kind of thing only: a refusal repeats no id, so it cannot confirm what exists for someone else.</summary>
    public static CatalogException NotFound(string what) => new(CatalogErrorKind.NotFound, $"the {what} was not found (or is not yours)");
}
