using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Security.Claims;
using DataMarket.Gateway.Application;
using DataMarket.Gateway.Infrastructure;
using DataMarket.ServiceDefaults.Security;

namespace DataMarket.Gateway.Web;

public sealed record WebTerms(Guid ListingId, string SellerId, long Reserve, long? ListPrice, string Licence, DateTimeOffset PublishedAt);

public sealed record WebTermsLine(string ListingId, string SellerId, long Reserve, long? ListPrice, string Licence);

public sealed record WebShare(string SellerId, long Amount, double Weight, double Value);

public sealed record WebQuote(
    Guid Id, Guid ValuationId, IReadOnlyList<WebTermsLine> Listings, long Price, decimal Theta, double Gain, string GainPolicy, long Floor, long? Ceiling,
    long Fee, long Net, IReadOnlyList<WebShare> Shares, bool EqualSplit, string Currency, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt);

public sealed record WebPurchaseShare(string SellerId, long Amount, double Weight);

public sealed record WebPurchasedListing(Guid ListingId, string SellerId, string Licence);

public sealed record WebPurchase(
    Guid Id, Guid QuoteId, string Status, string Currency, long Gross, long Fee, IReadOnlyList<WebPurchaseShare> Shares,
    IReadOnlyList<WebPurchasedListing> Listings, DateTimeOffset PurchasedAt, DateTimeOffset RefundableUntil, DateTimeOffset? RefundedAt);

public sealed record WebStatementLine(string Currency, long Earned, long Held, long Paid);

public sealed record WebStatementPayout(string Currency, long Paid, string Status, string? ProviderTransferId);

public sealed record WebStatement(string SellerId, string Period, IReadOnlyList<WebStatementLine> Ledger, IReadOnlyList<WebStatementPayout> Payouts);

public sealed record WebDestination(string SellerId, string Provider, string AccountId, DateTimeOffset RegisteredAt);

public sealed record WebPayout(string SellerId, string Currency, long Amount, string Status, string? ProviderTransferId, string? Reason);

public sealed record WebReconciliation(long LedgerPayouts, long LedgerTotal, long ProviderTransfers, long ProviderTotal, IReadOnlyList<string> Mismatches, bool Clean);

public sealed record WebSettlementRun(
    string Period, string Status, DateTimeOffset StartedAt, DateTimeOffset? CompletedAt, IReadOnlyList<WebPayout> Payouts,
    IReadOnlyList<string> WaitingForDestination, WebReconciliation? Reconciliation);

public sealed record WebLedgerCheck(string Name, bool Passed, string Detail);

public sealed record WebLedgerVerification(bool Passed, IReadOnlyList<WebLedgerCheck> Checks, string Text);

/// <summary>
/// The web UI's calls to the settlement service (terms, quotes, purchases, downloads, statements, settlement runs).
/// A call that moves money, or decides where money goes, is written to the audit log exactly as the proxy writes the
/// same call made with an API key (<see cref="MoneyAuditTransform"/>): who, what and how the service answered.
/// </summary>
public sealed class SettlementClient(HttpClient http, ServiceTokenIssuer tokens, GatewayOptions options, AccountService accounts, ILogger<SettlementClient> logger)
    : ServiceClient(http, tokens)
{
    /// <summary>Settlement is optional in distributed mode: without its address the pages say it is not running.</summary>
    public bool Available => options.SettlementAddress is not null;

    public static void Configure(HttpClient http, GatewayOptions options) => http.BaseAddress = new Uri(options.SettlementAddress ?? options.CatalogAddress);

    public Task<WebTerms?> TermsAsync(ClaimsPrincipal user, Guid listingId, CancellationToken ct) =>
        FindAsync<WebTerms>(user, $"/api/terms/{listingId}", ct);

    public Task<WebTerms> PublishTermsAsync(ClaimsPrincipal user, Guid listingId, long reserve, long? listPrice, string? licence, CancellationToken ct) =>
        SendAsync<WebTerms>(user, HttpMethod.Put, $"/api/terms/{listingId}", JsonContent.Create(new { reserve, listPrice, licence }), ct);

    public Task<WebQuote> CreateQuoteAsync(ClaimsPrincipal user, Guid valuationId, CancellationToken ct) =>
        SendAsync<WebQuote>(user, HttpMethod.Post, "/api/quotes", JsonContent.Create(new { valuationId }), ct);

    public Task<WebQuote?> QuoteAsync(ClaimsPrincipal user, Guid quoteId, CancellationToken ct) =>
        FindAsync<WebQuote>(user, $"/api/quotes/{quoteId}", ct);

    /// <summary>Buys a quote; the key makes a resent form (a double click, a reload) answer the first purchase.</summary>
    public Task<WebPurchase> PurchaseAsync(ClaimsPrincipal user, Guid quoteId, string idempotencyKey, CancellationToken ct) =>
        SendAsync<WebPurchase>(user, HttpMethod.Post, "/api/purchases", JsonContent.Create(new { quoteId }), ct, idempotencyKey);

    public Task<List<WebPurchase>> PurchasesAsync(ClaimsPrincipal user, CancellationToken ct) =>
        SendAsync<List<WebPurchase>>(user, HttpMethod.Get, "/api/purchases", null, ct);

    /// <summary>The purchased listing's data as the service streams it (the caller disposes the response).</summary>
    public Task<HttpResponseMessage> DownloadAsync(ClaimsPrincipal user, Guid purchaseId, Guid listingId, CancellationToken ct) =>
        SendRawAsync(user, HttpMethod.Get, $"/api/purchases/{purchaseId}/download?listing={listingId}", null, ct);

    public Task<WebStatement> StatementAsync(ClaimsPrincipal user, string period, CancellationToken ct) =>
        SendAsync<WebStatement>(user, HttpMethod.Get, $"/api/sellers/{Uri.EscapeDataString(user.AccountId())}/statement?period={Uri.EscapeDataString(period)}", null, ct);

    public Task<WebDestination> RegisterDestinationAsync(ClaimsPrincipal user, CancellationToken ct) =>
        SendAsync<WebDestination>(user, HttpMethod.Post, $"/api/sellers/{Uri.EscapeDataString(user.AccountId())}/destination", null, ct);

    public Task<List<WebSettlementRun>> SettlementsAsync(ClaimsPrincipal user, CancellationToken ct) =>
        SendAsync<List<WebSettlementRun>>(user, HttpMethod.Get, "/api/settlements", null, ct);

    /// <summary>Asks the scheduler to run the period now (202); the run itself proceeds in the settlement service.</summary>
    public async Task RunSettlementAsync(ClaimsPrincipal user, string period, CancellationToken ct)
    {
        using var response = await SendRawAsync(user, HttpMethod.Post, $"/api/settlements/{Uri.EscapeDataString(period)}/run", null, ct);
    }

    public Task<WebLedgerVerification> VerifyLedgerAsync(ClaimsPrincipal user, CancellationToken ct) =>
        SendAsync<WebLedgerVerification>(user, HttpMethod.Get, "/api/settlements/ledger-verification", null, ct);

    /// <summary>Months a seller's earnings page shows: this one and the <paramref name="count"/> - 1 before it.</summary>
    public static IReadOnlyList<string> RecentPeriods(DateTimeOffset now, int count)
    {
        var month = new DateTime(now.UtcDateTime.Year, now.UtcDateTime.Month, 1, 0, 0, 0, DateTimeKind.Utc);
        return Enumerable.Range(0, count).Select(i => month.AddMonths(-i).ToString("yyyy-MM", CultureInfo.InvariantCulture)).ToList();
    }

    protected override async Task OnAnsweredAsync(ClaimsPrincipal user, HttpMethod method, string path, HttpStatusCode status, CancellationToken ct)
    {
        var route = path.Split('?')[0];
        if (MoneyAuditTransform.Action(method.Method, route) is not { } action)
        {
            return;
        }

        try
        {
            await accounts.RecordAsync(user.AccountId(), action, $"{route} answered {(int)status}", CancellationToken.None);
        }
        catch (Exception exception)
        {
            // As for the proxy: the service has acted; the page still shows the answer, and the log keeps the failure.
            logger.LogError(exception, "Could not audit {Action} {Path} by {Account} (answered {Status})", action, route, user.AccountId(), (int)status);
        }
    }
}

/// <summary>Money in minor units shown as people read it: 1234 USD is "12.34 USD".</summary>
public static class Money
{
    public static string Format(long minorUnits, string currency) => $"{Amount(minorUnits)} {currency}";

    /// <summary>The amount alone, for terms (a listing's prices are in the market's one settlement currency).</summary>
    public static string Amount(long minorUnits) =>
        string.Create(CultureInfo.InvariantCulture, $"{(minorUnits < 0 ? "-" : "")}{Math.Abs(minorUnits / 100)}.{Math.Abs(minorUnits % 100):00}");

    /// <summary>A price typed in major units ("12.5", "12.50", "12") as minor units; null when it is not one.</summary>
    public static long? Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text) || !decimal.TryParse(text.Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var major))
        {
            return null;
        }

        var minor = major * 100;
        return minor == decimal.Truncate(minor) && minor <= long.MaxValue ? (long)minor : null;
    }
}
