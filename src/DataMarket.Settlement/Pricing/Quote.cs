using DataMarket.Settlement.Split;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Settlement.Pricing;

/// <summary>A seller's value in a bundle, from the tiered valuation of the buyer's task.</summary>
public sealed record SellerEstimate(string SellerId, ValueEstimate Value);

/// <summary>
/// A priced offer of a bundle of listings to one buyer for one task. It never changes: a new price is a new quote.
/// <see cref="Split"/> is what a purchase at <see cref="PriceBreakdown.Price"/> pays each seller.
/// </summary>
public sealed record Quote(
    Guid Id,
    string BuyerId,
    string TaskId,
    IReadOnlyList<ListingTerms> Listings,
    IReadOnlyList<SellerEstimate> Values,
    GainPolicy GainPolicy,
    PriceBreakdown Pricing,
    SplitResult Split,
    string Currency,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt,
    decimal? Fraction = null)
{
    public static readonly TimeSpan DefaultLifetime = TimeSpan.FromHours(24);

    public long Price => Pricing.Price;

    /// <summary>
    /// Prices the bundle and splits that price by the sellers' values. Every seller with a listing in the bundle needs
    /// a value, and every value must belong to a seller in the bundle.
    /// </summary>
    public static Quote Create(
        Guid id,
        string buyerId,
        string taskId,
        IReadOnlyList<ListingTerms> listings,
        IReadOnlyList<SellerEstimate> values,
        decimal theta,
        GainPolicy gainPolicy,
        FeePolicy fee,
        string currency,
        DateTimeOffset now,
        TimeSpan lifetime)
    {
        ArgumentNullException.ThrowIfNull(listings);
        ArgumentNullException.ThrowIfNull(values);
        if (string.IsNullOrWhiteSpace(buyerId))
        {
            throw new SettlementInputException("buyer_id", "is empty");
        }

        if (lifetime <= TimeSpan.Zero)
        {
            throw new SettlementInputException("lifetime", $"must be positive, got {lifetime}");
        }

        var duplicate = listings.GroupBy(l => l.ListingId, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new SettlementInputException($"listings[{duplicate.Key}]", "the listing appears more than once in the bundle");
        }

        var sellers = listings.Select(l => l.SellerId).Distinct(StringComparer.Ordinal).ToList();
        var valued = values.ToDictionary(v => v.SellerId, StringComparer.Ordinal);
        var unvalued = sellers.FirstOrDefault(s => !valued.ContainsKey(s));
        if (unvalued is not null)
        {
            throw new SettlementInputException($"values[{unvalued}]", "the seller has a listing in the bundle but no value");
        }

        var stray = values.FirstOrDefault(v => !sellers.Contains(v.SellerId, StringComparer.Ordinal));
        if (stray is not null)
        {
            throw new SettlementInputException($"values[{stray.SellerId}]", "the seller has no listing in the bundle");
        }

        var pricing = QuotePricing.Price(listings, theta, QuotePricing.Gain(values.Select(v => v.Value), gainPolicy));
        var split = RevenueSplit.Allocate(pricing.Price, fee, sellers.Select(s => new ValuedSeller(s, valued[s].Value.Value)).ToList());
        return new Quote(id, buyerId, taskId, listings, values, gainPolicy, pricing, split, currency, now, now + lifetime);
    }

    /// <summary>
    /// A posted-price quote for one version (nested sample of <paramref name="fraction"/>) of one listing: the price is
    /// the listing's published curve at that fraction, and the whole net goes to its seller.
    /// </summary>
    public static Quote ForVersion(
        Guid id, string buyerId, ListingTerms listing, PriceCurve curve, decimal fraction, FeePolicy fee, string currency, DateTimeOffset now, TimeSpan lifetime)
    {
        ArgumentNullException.ThrowIfNull(listing);
        ArgumentNullException.ThrowIfNull(curve);
        if (string.IsNullOrWhiteSpace(buyerId))
        {
            throw new SettlementInputException("buyer_id", "is empty");
        }

        var price = curve.PriceOf(fraction);
        var values = new[] { new SellerEstimate(listing.SellerId, new ValueEstimate(1.0, 0.0)) };
        var pricing = new PriceBreakdown(0m, 0.0, price, price, price, price);
        var split = RevenueSplit.Allocate(price, fee, [new ValuedSeller(listing.SellerId, 1.0)]);
        return new Quote(id, buyerId, $"version:{fraction}", [listing], values, GainPolicy.Estimate, pricing, split, currency, now, now + lifetime, fraction);
    }

    /// <summary>Refuses a purchase of this quote by <paramref name="buyerId"/> at <paramref name="now"/>: someone else's quote reads as unknown.</summary>
    public void CheckPurchasableBy(string buyerId, DateTimeOffset now)
    {
        if (!string.Equals(buyerId, BuyerId, StringComparison.Ordinal))
        {
            throw new SettlementInputException("quote_id", $"no quote {Id} for this buyer");
        }

        if (now >= ExpiresAt)
        {
            throw new SettlementInputException("quote_id", $"quote {Id} expired at {ExpiresAt:O}");
        }
    }
}
