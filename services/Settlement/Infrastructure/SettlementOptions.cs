namespace DataMarket.SettlementService.Infrastructure;

public enum SettlementStoreKind
{
    Postgres,
    Sqlite,
}

public enum RailsKind
{
    /// <summary>Simulated provider with its books in the settlement database (embedded default).</summary>
    Sandbox,
    /// <summary>Stripe through Stripe.net: PaymentIntents, Connect Express accounts, Transfers, Refunds, signed webhooks.</summary>
    Stripe,
}

public enum SandboxBehaviour
{
    /// <summary>Every charge and transfer succeeds.</summary>
    Succeed,
    /// <summary>Charges are declined and transfers fail for good (a closed account): permanent failures.</summary>
    Decline,
    /// <summary>Every call answers like a provider 500: a transient failure, retried by the next attempt.</summary>
    Fail,
    /// <summary>Every call times out: transient too.</summary>
    TimeOut,
}

/// <summary>
/// Bound from the <c>Settlement</c> section; the settlement database from <c>ConnectionStrings:Settlement</c>. Quotes,
/// purchases, runs and the sandbox rails' books are event streams in that database (its own schema or file, never
/// the ledger's).
/// </summary>
public sealed class SettlementOptions
{
    public const string SectionName = "Settlement";

    public SettlementStoreKind Store { get; set; } = SettlementStoreKind.Postgres;

    public string? ConnectionString { get; set; }

    /// <summary>PostgreSQL schema, or SQLite table prefix.</summary>
    public string Schema { get; set; } = "settlement";

    public string Currency { get; set; } = "USD";

    /// <summary>Cents the buyer's worth of one unit of utility is taken to be when the quote request names none.</summary>
    public decimal DefaultTheta { get; set; } = 100_000m;

    public decimal FeeRate { get; set; } = 0.10m;

    public long FeeMinimum { get; set; } = 50;

    public TimeSpan QuoteLifetime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Seller shares stay held this long after a purchase; refunds are accepted only inside it.</summary>
    public TimeSpan RefundWindow { get; set; } = TimeSpan.FromDays(14);

    /// <summary>Released balances below this wait for a later run.</summary>
    public long MinimumPayout { get; set; } = 100;

    /// <summary>Payouts whose statements a run appends as one event; a crash loses at most this many sellers' records (their payments are redone under the same keys, changing nothing).</summary>
    public int PayoutBatchSize { get; set; } = 1_000;

    /// <summary>
    /// Sellers a run pays at once: their ledger commands share the ledger's group commits and their provider calls
    /// overlap. Stripe's live-mode rate limit (about 100 requests/s) is the ceiling there; its 429s are transient and
    /// retried under the same key.
    /// </summary>
    public int PayoutConcurrency { get; set; } = 32;

    /// <summary>Quartz cron of the scheduled run (default: 02:00 UTC on the first of each month, settling the month before).</summary>
    public string Schedule { get; set; } = "0 0 2 1 * ?";

    /// <summary>Whether the cron trigger is scheduled at all (the CLI's one-shot commands switch it off).</summary>
    public bool ScheduleEnabled { get; set; } = true;

    /// <summary>Quartz's job store: clustered on PostgreSQL in server mode, in memory in embedded mode.</summary>
    public SchedulerOptions Scheduler { get; set; } = new();

    /// <summary>Which payment rails move the money.</summary>
    public RailsKind Rails { get; set; } = RailsKind.Sandbox;

    public SandboxOptions Sandbox { get; set; } = new();

    public StripeOptions Stripe { get; set; } = new();
}

/// <summary>
/// <c>Settlement:Stripe</c>. The two secrets (<see cref="ApiKey"/>, <see cref="WebhookSecret"/>) come from configuration
/// or the environment (<c>Settlement__Stripe__ApiKey</c>, <c>Settlement__Stripe__WebhookSecret</c>), never from a
/// committed file.
/// </summary>
public sealed class StripeOptions
{
    /// <summary>Secret key (sk_test_... or sk_live_...).</summary>
    public string? ApiKey { get; set; }

    /// <summary>Signing secret of the webhook endpoint (whsec_...); webhooks are refused while it is unset.</summary>
    public string? WebhookSecret { get; set; }

    /// <summary>Another API base (tests: a fake Stripe on loopback); null is Stripe's own.</summary>
    public string? ApiBase { get; set; }

    /// <summary>
    /// The payment method a server-side charge confirms with (test mode: <c>pm_card_visa</c>). A charge that needs
    /// the buyer (3-D Secure) stays pending and the purchase answers the PaymentIntent's client secret.
    /// </summary>
    public string PaymentMethod { get; set; } = "pm_card_visa";

    /// <summary>Where Stripe sends a seller after onboarding, and where an expired onboarding link leads.</summary>
    public string OnboardingReturnUrl { get; set; } = "http://localhost:5080/";

    public string OnboardingRefreshUrl { get; set; } = "http://localhost:5080/";

    /// <summary>Stripe.net's own retries of a failed request (same idempotency key) before the rails report it transient.</summary>
    public int MaxNetworkRetries { get; set; } = 2;

    /// <summary>How long one request may take before it counts as lost (transient).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);
}

public sealed class SchedulerOptions
{
    /// <summary>Null: in-memory store. Set: the persistent, clustered store on this PostgreSQL database.</summary>
    public string? PostgresConnectionString { get; set; }

    /// <summary>Nodes sharing this name (and the database) form one cluster; each trigger fires on one of them.</summary>
    public string InstanceName { get; set; } = "datamarket-settlement";
}

public sealed class SandboxOptions
{
    public SandboxBehaviour Behaviour { get; set; } = SandboxBehaviour.Succeed;
}
