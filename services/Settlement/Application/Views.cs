using DataMarket.Settlement.Pricing;

namespace DataMarket.SettlementService.Application;

public sealed record TermsView(Guid ListingId, string SellerId, long Reserve, long? ListPrice, string Licence, DateTimeOffset PublishedAt, IReadOnlyList<VersionPrice> Versions)
{
    public static TermsView From(TermsPublished t) => new(t.ListingId, t.SellerId, t.Reserve, t.ListPrice, t.Licence, t.PublishedAt, t.Versions ?? []);
}

public sealed record ShareView(string SellerId, long Amount, double Weight, double Value);

public sealed record QuoteView(
    Guid Id, string BuyerId, string TaskId, Guid ValuationId, IReadOnlyList<TermsLineView> Listings, long Price, decimal Theta, double Gain,
    string GainPolicy, long Floor, long? Ceiling, long Fee, long Net, IReadOnlyList<ShareView> Shares, bool EqualSplit, string Currency,
    DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt, decimal? Fraction = null)
{
    public static QuoteView From(QuoteIssued issued)
    {
        var q = issued.Quote;
        var values = q.Values.ToDictionary(v => v.SellerId, v => v.Value.Value, StringComparer.Ordinal);
        return new QuoteView(
            q.Id, q.BuyerId, q.TaskId, issued.ValuationId,
            q.Listings.Select(l => new TermsLineView(l.ListingId, l.SellerId, l.Reserve, l.ListPrice, l.Licence)).ToList(),
            q.Price, q.Pricing.Theta, q.Pricing.Gain, q.GainPolicy.ToString().ToLowerInvariant(), q.Pricing.Floor, q.Pricing.Ceiling,
            q.Split.Fee, q.Split.Net, q.Split.Shares.Select(s => new ShareView(s.SellerId, s.Amount, s.Weight, values[s.SellerId])).ToList(),
            q.Split.EqualSplit, q.Currency, q.CreatedAt, q.ExpiresAt, q.Fraction);
    }
}

public sealed record TermsLineView(string ListingId, string SellerId, long Reserve, long? ListPrice, string Licence);

public sealed record PurchaseView(
    Guid Id, Guid QuoteId, string BuyerId, string Status, string Currency, long Gross, long Fee, IReadOnlyList<PurchaseShare> Shares,
    IReadOnlyList<PurchasedListing> Listings, DateTimeOffset PurchasedAt, DateTimeOffset RefundableUntil, DateTimeOffset? RefundedAt,
    string? ClientSecret = null, string? FailureReason = null, DisputeView? Dispute = null);

/// <summary>
/// What a dispute took: <paramref name="Amount"/> of the sale, <paramref name="Fee"/> of it from the platform's fee and
/// <paramref name="Shares"/> from the sellers (taken from their held shares when <paramref name="WhileHeld"/>, owed by
/// them otherwise); <paramref name="Partial"/> when it is for less than the gross.
/// </summary>
public sealed record DisputeView(string DisputeId, long Amount, bool Partial, bool WhileHeld, long Fee, IReadOnlyList<PurchaseShare> Shares);

/// <param name="Ready">Payouts can go to the account; otherwise the seller finishes onboarding at <paramref name="OnboardingUrl"/>.</param>
public sealed record DestinationView(string SellerId, string Provider, string AccountId, DateTimeOffset RegisteredAt, bool Ready = true, string? OnboardingUrl = null);

public sealed record PayoutView(string SellerId, string Currency, long Amount, string Status, Guid LedgerTransferId, string IdempotencyKey, string? ProviderTransferId, string? Reason);

public sealed record SettlementRunView(
    string Period, string Status, DateTimeOffset StartedAt, DateTimeOffset? CompletedAt, IReadOnlyList<PayoutView> Payouts,
    IReadOnlyList<string> WaitingForDestination, Reconciliation? Reconciliation, IReadOnlyList<ReversalView>? Reversals = null);

/// <param name="Reversals">Transfers of earlier periods this period's run took (part of) back for the seller's dispute debt.</param>
public sealed record SellerStatementView(string SellerId, string Period, IReadOnlyList<LedgerStatementLineView> Ledger, IReadOnlyList<StatementWritten> Payouts, IReadOnlyList<ReversalView>? Reversals = null);

/// <summary>A run's reversal of an earlier transfer: <c>pending</c> (provider answer unknown; the next run resends the key), <c>reversed</c> or <c>refused</c>.</summary>
public sealed record ReversalView(string SellerId, string Currency, long Amount, string TransferId, string TransferPeriod, string IdempotencyKey, string Status, string? ProviderReversalId, string? Reason);

public sealed record LedgerStatementLineView(string Currency, long Earned, long Held, long Paid);

public sealed record LedgerVerificationView(bool Passed, IReadOnlyList<LedgerCheckView> Checks, string Text);

public sealed record LedgerCheckView(string Name, bool Passed, string Detail);

internal static class Gains
{
    public static GainPolicy Parse(string? policy) => policy is null ? GainPolicy.Estimate : Enum.Parse<GainPolicy>(policy, ignoreCase: true);
}
