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

    /// <summary>
    /// Valuations one buyer may have pending or running at once; one more is answered 429 with the reason, so one
    /// buyer's large jobs cannot fill the queue in front of everyone else's.
    /// </summary>
    public int MaxActiveValuationsPerBuyer { get; set; } = 8;

    /// <summary>Retries of a status event whose update failed, before it goes to the error queue.</summary>
    public RetryOptions StatusRetry { get; set; } = new();
}

/// <summary>Exponential backoff: <see cref="Limit"/> retries, the first after <see cref="MinInterval"/>, growing up to <see cref="MaxInterval"/>.</summary>
public sealed class RetryOptions
{
    public int Limit { get; set; } = 8;

    public TimeSpan MinInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan MaxInterval { get; set; } = TimeSpan.FromSeconds(60);
}
