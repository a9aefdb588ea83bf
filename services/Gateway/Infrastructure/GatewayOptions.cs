namespace DataMarket.Gateway.Infrastructure;

public enum GatewayDatabase
{
    Postgres,
    Sqlite,
}

/// <summary>Bound from the <c>Gateway</c> section; the accounts database from <c>ConnectionStrings:Gateway</c>.</summary>
public sealed class GatewayOptions
{
    public const string SectionName = "Gateway";

    public GatewayDatabase Database { get; set; } = GatewayDatabase.Postgres;

    public string? ConnectionString { get; set; }

    /// <summary>Base address of the catalog service (listings, tasks, valuations).</summary>
    public string CatalogAddress { get; set; } = "http://127.0.0.1:5090";

    /// <summary>Base address of the settlement service (quotes, purchases, settlements); its routes exist only when set.</summary>
    public string? SettlementAddress { get; set; }

    /// <summary>Largest accepted request body (uploads); the catalog applies its own limit too.</summary>
    public long MaxUploadBytes { get; set; } = 1L << 30;

    /// <summary>Valuation requests per buyer per minute; generous by default for the demo.</summary>
    public int ValuationRequestsPerMinute { get; set; } = 60;

    /// <summary>
    /// Session and antiforgery cookies carry the Secure flag (HTTPS only). Only a gateway reached over plain HTTP on
    /// loopback (<c>serve</c> on 127.0.0.1) turns it off; then they are Secure whenever the request came over HTTPS.
    /// </summary>
    public bool SecureCookies { get; set; } = true;

    /// <summary>Failed or successful key checks per client address per minute (guards against guessing keys).</summary>
    public int SignInAttemptsPerMinute { get; set; } = 600;
}
