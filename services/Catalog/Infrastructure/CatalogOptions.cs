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

    /// <summary>The largest proxy-model checkpoint a buyer may upload (<c>Catalog__MaxModelBytes</c>; 256 MiB).</summary>
    public long MaxModelBytes { get; set; } = 256L << 20;

    /// <summary>How often the outbox relay looks for unsent messages when nothing wakes it sooner.</summary>
    public TimeSpan OutboxPollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Valuations one buyer may have pending or running at once; one more is answered 429 with the reason, so one
    /// buyer's large jobs cannot fill the queue in front of everyone else's.
    /// </summary>
    public int MaxActiveValuationsPerBuyer { get; set; } = 8;

    /// <summary>Retries of a status event whose update failed, before it goes to the error queue.</summary>
    public RetryOptions StatusRetry { get; set; } = new();

    /// <summary>Delivery of finished valuations' notices to the buyers' callback URLs.</summary>
    public CallbackOptions Callbacks { get; set; } = new();
}

/// <summary>
/// Callback URLs are the buyer's, so the catalog must not be turned into a way into the private network: by default
/// only https URLs whose host resolves to public addresses are called, without following redirects.
/// </summary>
public sealed class CallbackOptions
{
    /// <summary>Accept http:// as well as https:// (local development and tests).</summary>
    public bool AllowHttp { get; set; }

    /// <summary>Call hosts on loopback, private, link-local or shared address ranges (local development and tests).</summary>
    public bool AllowPrivateAddresses { get; set; }

    /// <summary>Deliveries tried before giving up; the delay doubles from <see cref="FirstRetry"/> up to an hour.</summary>
    public int MaxAttempts { get; set; } = 8;

    public TimeSpan FirstRetry { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the dispatcher looks for due notices when nothing wakes it sooner.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);
}

/// <summary>Exponential backoff: <see cref="Limit"/> retries, the first after <see cref="MinInterval"/>, growing up to <see cref="MaxInterval"/>.</summary>
public sealed class RetryOptions
{
    public int Limit { get; set; } = 8;

    public TimeSpan MinInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan MaxInterval { get; set; } = TimeSpan.FromSeconds(60);
}
