using DataMarket.Settlement.Pricing;
using DataMarket.Settlement.Split;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Settlement.Tests;

public class quote_pricing
{
    private static readonly DateTimeOffset Now = new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    // theta x gain inside the bounds, rounded half up: 1000 x 0.1235 = 123.5 -> 124.
    [InlineData("1000", 0.1235, 100L, 500L, 124L)]
    [InlineData("1000", 0.05, 100L, 500L, 100L)]   // below the reserves
    [InlineData("1000", 0.9, 100L, 500L, 500L)]    // above the list prices
    [InlineData("1000", -0.3, 100L, 500L, 100L)]   // a harmful bundle still costs the reserves
    public void price_is_theta_times_gain_clamped_to_reserves_and_list_prices(string theta, double gain, long reserve, long list, long expected)
    {
        var listings = new[] { new ListingTerms("l1", "s1", reserve / 2, list / 2), new ListingTerms("l2", "s2", reserve - (reserve / 2), list - (list / 2)) };
        var price = QuotePricing.Price(listings, decimal.Parse(theta, System.Globalization.CultureInfo.InvariantCulture), gain);
        Assert.Equal(expected, price.Price);
        Assert.Equal(reserve, price.Floor);
        Assert.Equal(list, price.Ceiling);
    }

    [Fact]
    public void a_listing_without_a_list_price_leaves_the_price_unbounded_above()
    {
        var price = QuotePricing.Price([new ListingTerms("l1", "s1", 10, 20), new ListingTerms("l2", "s2", 10, null)], 1_000_000m, 0.5);
        Assert.Null(price.Ceiling);
        Assert.Equal(500_000, price.Price);
    }

    [Fact]
    public void the_lower_95_policy_prices_the_sum_of_the_sellers_lower_bounds()
    {
        var values = new[] { new ValueEstimate(0.2, 0.01), new ValueEstimate(0.1, 0.02) };
        var expected = 0.2 - (ValueEstimate.Z95 * 0.01) + 0.1 - (ValueEstimate.Z95 * 0.02);
        Assert.Equal(expected, QuotePricing.Gain(values, GainPolicy.Lower95), 12);
        Assert.Equal(0.3, QuotePricing.Gain(values, GainPolicy.Estimate), 12);
    }

    [Fact]
    public void a_quote_splits_its_price_by_the_sellers_values_and_keeps_its_terms()
    {
        var quote = Quote.Create(
            Guid.NewGuid(), "buyer-1", "task-1",
            [new ListingTerms("l1", "s1", 0, null), new ListingTerms("l2", "s2", 0, null), new ListingTerms("l3", "s1", 0, null)],
            [new SellerEstimate("s1", new ValueEstimate(0.3, 0.01)), new SellerEstimate("s2", new ValueEstimate(0.1, 0.01))],
            10_000m, GainPolicy.Estimate, new FeePolicy(0.1m, 0), "USD", Now, TimeSpan.FromHours(1));
        Assert.Equal(4_000, quote.Price);
        Assert.Equal(400, quote.Split.Fee);
        Assert.Equal([2_700L, 900L], quote.Split.Shares.Select(s => s.Amount));
        Assert.Equal(Now.AddHours(1), quote.ExpiresAt);
    }

    [Fact]
    public void an_expired_or_someone_elses_quote_cannot_be_bought()
    {
        var quote = Quote.Create(Guid.NewGuid(), "buyer-1", "task-1", [new ListingTerms("l1", "s1", 100, 200)], [new SellerEstimate("s1", new ValueEstimate(0.1, 0))],
            1_000m, GainPolicy.Estimate, new FeePolicy(0m), "USD", Now, TimeSpan.FromMinutes(5));
        quote.CheckPurchasableBy("buyer-1", Now.AddMinutes(4));
        Assert.Contains("expired", Assert.Throws<SettlementInputException>(() => quote.CheckPurchasableBy("buyer-1", Now.AddMinutes(5))).Message);
        Assert.Contains("no quote", Assert.Throws<SettlementInputException>(() => quote.CheckPurchasableBy("buyer-2", Now)).Message);
    }

    [Fact]
    public void bad_terms_are_refused_naming_the_field()
    {
        Assert.Equal("listings[l1].list_price", Assert.Throws<SettlementInputException>(() => new ListingTerms("l1", "s1", 500, 400)).Field);
        Assert.Equal("listings[l1].reserve", Assert.Throws<SettlementInputException>(() => new ListingTerms("l1", "s1", -1, null)).Field);
        Assert.Equal("theta", Assert.Throws<SettlementInputException>(() => QuotePricing.Price([new ListingTerms("l1", "s1", 0, null)], -1m, 0.1)).Field);
        Assert.Equal("gain", Assert.Throws<SettlementInputException>(() => QuotePricing.Price([new ListingTerms("l1", "s1", 0, null)], 1m, double.NaN)).Field);
        // Absurd: beyond the largest accepted price, or beyond any number at all.
        Assert.Equal("price", Assert.Throws<SettlementInputException>(() => QuotePricing.Price([new ListingTerms("l1", "s1", 0, null)], 1e15m, 1.0)).Field);
        Assert.Equal("theta", Assert.Throws<SettlementInputException>(() => QuotePricing.Price([new ListingTerms("l1", "s1", 0, null)], 1e20m, 1e20)).Field);
        // Reserves whose sum overflows a long.
        Assert.Equal("listings.reserve", Assert.Throws<SettlementInputException>(() => QuotePricing.Price([new ListingTerms("l1", "s1", long.MaxValue, null), new ListingTerms("l2", "s2", 1, null)], 1m, 0)).Field);
        Assert.Equal("values[s2]", Assert.Throws<SettlementInputException>(() => Quote.Create(Guid.NewGuid(), "b", "t", [new ListingTerms("l1", "s1", 0, null), new ListingTerms("l2", "s2", 0, null)],
            [new SellerEstimate("s1", new ValueEstimate(0.1, 0))], 1m, GainPolicy.Estimate, new FeePolicy(0m), "USD", Now, TimeSpan.FromHours(1))).Field);
    }
}
