using System.Numerics;
using DataMarket.Settlement;
using DataMarket.Settlement.Split;
using FsCheck;
using FsCheck.Fluent;

namespace DataMarket.Settlement.Tests;

/// <summary>
/// The split's promises on generated sales. Values are integers over 1024 (exact in a double), so the tests check
/// net x w_i against the payouts in exact integer arithmetic, independently of the split's own code.
/// </summary>
public class revenue_split_properties
{
    private static readonly Config Config = Config.QuickThrowOnFailure.WithMaxTest(300);

    public sealed record Sale(long Gross, decimal Rate, long Minimum, int[] Numerators)
    {
        public IReadOnlyList<ValuedSeller> Sellers => Numerators.Select((n, i) => new ValuedSeller($"s{i:D3}", n / 1024.0)).ToList();

        public override string ToString() => $"gross={Gross} rate={Rate} min={Minimum} values=[{string.Join(",", Numerators)}]/1024";
    }

    private static Arbitrary<Sale> Sales() =>
        (from grossKind in Gen.Choose(0, 3)
         from small in Gen.Choose(0, 100_000)
         from big in Gen.Choose(0, int.MaxValue)
         from rate in Gen.Choose(0, 500)
         from minimum in Gen.Choose(0, 2_000)
         from sellers in Gen.Choose(1, 12)
         // Few distinct values so ties (equal values) and non-positive values turn up often.
         from numerators in Gen.ArrayOf(Gen.Choose(-3, 6).Select(v => v * 97), sellers)
         let gross = grossKind switch { 0 => small, 1 => (long)big * 1_000, 2 => long.MaxValue - small, _ => small % 7 }
         select new Sale(gross, rate / 1000m, minimum, numerators)).ToArbitrary();

    [Fact]
    public void payouts_and_fee_sum_to_gross_and_no_payout_is_negative()
    {
        Prop.ForAll(Sales(), sale =>
        {
            var split = RevenueSplit.Allocate(sale.Gross, new FeePolicy(sale.Rate, sale.Minimum), sale.Sellers);
            var total = split.Shares.Aggregate(BigInteger.Zero, (sum, s) => sum + s.Amount) + split.Fee;
            return total == sale.Gross && split.Shares.All(s => s.Amount >= 0) && split.Fee >= 0 && split.Net == sale.Gross - split.Fee;
        }).Check(Config);
    }

    [Fact]
    public void fee_is_the_rate_rounded_up_with_a_minimum_and_never_more_than_gross()
    {
        Prop.ForAll(Sales(), sale =>
        {
            var split = RevenueSplit.Allocate(sale.Gross, new FeePolicy(sale.Rate, sale.Minimum), sale.Sellers);
            // ceil(rate x gross) with rate = r / 1000, in integers: (r * gross + 999) / 1000.
            var byRate = ((BigInteger)(long)(sale.Rate * 1000) * sale.Gross + 999) / 1000;
            var expected = BigInteger.Min(sale.Gross, BigInteger.Max(sale.Minimum, byRate));
            return split.Fee == expected;
        }).Check(Config);
    }

    [Fact]
    public void each_payout_is_within_a_cent_of_its_exact_share_and_non_positive_values_get_nothing()
    {
        Prop.ForAll(Sales(), sale =>
        {
            var split = RevenueSplit.Allocate(sale.Gross, new FeePolicy(sale.Rate, sale.Minimum), sale.Sellers);
            var positive = sale.Numerators.Select(n => (BigInteger)Math.Max(n, 0)).ToArray();
            var total = positive.Aggregate(BigInteger.Zero, (a, b) => a + b);
            if (total.IsZero)
            {
                // Equal split, said so: every seller within a cent of net / n.
                return split.EqualSplit
                    && split.Shares.All(s => BigInteger.Abs((BigInteger)s.Amount * sale.Numerators.Length - split.Net) < sale.Numerators.Length);
            }

            // |payout - net * n_i / total| < 1  <=>  |payout * total - net * n_i| < total.
            return !split.EqualSplit && split.Shares.Select((s, i) =>
                    BigInteger.Abs((BigInteger)s.Amount * total - (BigInteger)split.Net * positive[i]) < total
                    && (positive[i] > 0 || s.Amount == 0))
                .All(ok => ok);
        }).Check(Config);
    }

    [Fact]
    public void sellers_with_equal_values_are_paid_within_a_cent_of_each_other()
    {
        Prop.ForAll(Sales(), sale =>
        {
            var split = RevenueSplit.Allocate(sale.Gross, new FeePolicy(sale.Rate, sale.Minimum), sale.Sellers);
            return sale.Numerators.Select((n, i) => (n, i)).GroupBy(x => x.n)
                .All(g => g.Max(x => split.Shares[x.i].Amount) - g.Min(x => split.Shares[x.i].Amount) <= 1);
        }).Check(Config);
    }

    [Fact]
    public void leftover_cents_go_to_the_largest_remainders_then_the_lower_seller_id()
    {
        // net 100, three equal sellers: 33 each and the spare cent to the lowest id.
        var split = RevenueSplit.Allocate(100, new FeePolicy(0m), [new("c", 1), new("a", 1), new("b", 1)]);
        Assert.Equal([33L, 34L, 33L], split.Shares.Select(s => s.Amount));

        // 2:1 of 10 -> 6.67 and 3.33: the larger remainder (0.67) wins the cent.
        var uneven = RevenueSplit.Allocate(10, new FeePolicy(0m), [new("a", 1), new("b", 2)]);
        Assert.Equal([3L, 7L], uneven.Shares.Select(s => s.Amount));
    }

    [Fact]
    public void a_sale_where_no_value_is_positive_splits_equally_and_says_so()
    {
        var split = RevenueSplit.Allocate(1_000, new FeePolicy(0.1m, 50), [new("b", -0.2), new("a", 0)]);
        Assert.True(split.EqualSplit);
        Assert.Equal(100, split.Fee);
        Assert.Equal([450L, 450L], split.Shares.Select(s => s.Amount));
    }

    [Fact]
    public void extreme_values_still_split_exactly()
    {
        var split = RevenueSplit.Allocate(long.MaxValue, new FeePolicy(0m), [new("a", double.MaxValue), new("b", double.Epsilon), new("c", 1e-300)]);
        Assert.Equal(long.MaxValue, split.Shares.Sum(s => (decimal)s.Amount));
        Assert.Equal(long.MaxValue, split.Shares[0].Amount);
    }

    [Theory]
    [InlineData(-1L, "0.1", 0L, "gross")]
    [InlineData(100L, "1.5", 0L, "fee_rate")]
    [InlineData(100L, "-0.1", 0L, "fee_rate")]
    [InlineData(100L, "0.1", -5L, "fee_min")]
    public void bad_sale_terms_are_refused_naming_the_field(long gross, string rate, long minimum, string field)
    {
        var error = Assert.Throws<SettlementInputException>(() => RevenueSplit.Allocate(gross, new FeePolicy(decimal.Parse(rate, System.Globalization.CultureInfo.InvariantCulture), minimum), [new("a", 1)]));
        Assert.Equal(field, error.Field);
    }

    [Fact]
    public void a_non_finite_or_repeated_seller_value_is_refused_naming_the_seller()
    {
        Assert.Equal("values[b]", Assert.Throws<SettlementInputException>(() => RevenueSplit.Allocate(10, new FeePolicy(0m), [new("a", 1), new("b", double.NaN)])).Field);
        Assert.Equal("values[a]", Assert.Throws<SettlementInputException>(() => RevenueSplit.Allocate(10, new FeePolicy(0m), [new("a", 1), new("a", 2)])).Field);
        Assert.Throws<SettlementInputException>(() => RevenueSplit.Allocate(10, new FeePolicy(0m), []));
    }
}
