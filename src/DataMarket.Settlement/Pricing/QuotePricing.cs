using DataMarket.Valuation.Statistics;

namespace DataMarket.Settlement.Pricing;

/// <summary>Which gain a quote prices: the bundle's estimated value, or the sum of the sellers' lower 95% bounds (the buyer pays only for value the test task shows with confidence).</summary>
public enum GainPolicy
{
    Estimate,
    Lower95,
}

/// <summary>How a price came about: theta x gain rounded, and the bounds it was clamped to (no upper bound when a list price is missing).</summary>
public sealed record PriceBreakdown(decimal Theta, double Gain, long ValuePrice, long Floor, long? Ceiling, long Price);

/// <summary>
/// <c>price = clamp(round_half_up(theta x gain), sum of reserves, sum of list prices)</c>. theta is cents per 1.0 of
/// KNN utility; gain the bundle's total value from the tiered valuation.
/// </summary>
public static class QuotePricing
{
    /// <summary>Prices above this are refused as absurd rather than charged (a billion dollars in cents).</summary>
    public const long MaximumPrice = 100_000_000_000L;

    public static double Gain(IEnumerable<ValueEstimate> sellerValues, GainPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(sellerValues);
        return policy switch
        {
            GainPolicy.Estimate => sellerValues.Sum(v => v.Value),
            // A seller whose standard error is unknown (one test point) contributes its estimate.
            GainPolicy.Lower95 => sellerValues.Sum(v => double.IsFinite(v.StandardError) ? v.Lower95 : v.Value),
            _ => throw new SettlementInputException("gain_policy", $"unknown policy {policy}"),
        };
    }

    public static PriceBreakdown Price(IReadOnlyList<ListingTerms> listings, decimal theta, double gain)
    {
        ArgumentNullException.ThrowIfNull(listings);
        if (listings.Count == 0)
        {
            throw new SettlementInputException("listings", "a quote needs at least one listing");
        }

        if (theta < 0)
        {
            throw new SettlementInputException("theta", $"must be at least 0 cents per unit of utility, got {theta}");
        }

        if (!double.IsFinite(gain))
        {
            throw new SettlementInputException("gain", $"the valuation's gain must be a finite number, got {gain}");
        }

        var floor = Money.Sum(listings.Select(l => l.Reserve), "listings.reserve");
        long? ceiling = listings.All(l => l.ListPrice.HasValue) ? Money.Sum(listings.Select(l => l.ListPrice!.Value), "listings.list_price") : null;

        // |gain| <= 1 per test point's utility scale in practice, but nothing here relies on it: a product beyond a
        // decimal's range is as absurd as one beyond the maximum price.
        decimal raw;
        try
        {
            raw = Money.RoundHalfUp(theta * (decimal)gain);
        }
        catch (OverflowException)
        {
            throw new SettlementInputException("theta", $"theta ({theta}) x gain ({gain}) is beyond any price");
        }

        var clamped = Math.Max(raw, floor);
        if (ceiling is { } top)
        {
            clamped = Math.Min(clamped, top);
        }

        if (clamped > MaximumPrice)
        {
            throw new SettlementInputException("price", $"{clamped} cents exceeds the largest price accepted ({MaximumPrice} cents)");
        }

        var valuePrice = raw < long.MinValue ? long.MinValue : raw > long.MaxValue ? long.MaxValue : (long)raw;
        return new PriceBreakdown(theta, gain, valuePrice, floor, ceiling, (long)clamped);
    }
}
