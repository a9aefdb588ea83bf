namespace DataMarket.Catalog.Infrastructure;

public enum CatalogDatabase
{
    Postgres,
    Sqlite,
}

/// <summary>Bound from the <c>Catalog</c> section; the connection string from <c>ConnectionStrings:Catalog</c>.</summary>
public sealed class CatalogOptions
{
    public const string SectionName = "Catalog";

    public CatalogDatabase Database { get; set; } = CatalogDatabase.Postgres;

    public string? ConnectionString { get; set; }

    /// <summary>Largest accepted upload; larger bodies are refused before anything is stored.</summary>
    public long MaxUploadBytes { get; set; } = 1L << 30;

    /// <summary>How often the outbox relay looks for unsent messages when nothing wakes it sooner.</summary>
    public TimeSpan OutboxPollInterval { get; set; } = TimeSpan.FromSeconds(1);
}
