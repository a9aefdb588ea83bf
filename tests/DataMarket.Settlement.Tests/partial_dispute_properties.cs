using System.Numerics;
using DataMarket.Settlement.Postings;
using DataMarket.Settlement.Split;
using FsCheck;
using FsCheck.Fluent;

namespace DataMarket.Settlement.Tests;

/// <summary>
/// A dispute for part of a sale, split pro rata over the fee and the shares: checked on generated sales in exact
/// integer arithmetic (BigInteger), independently of the split's own 128-bit code.
/// </summary>
public class partial_dispute_properties
{
    private static readonly Config Config = Config.QuickThrowOnFailure.WithMaxTest(300);

    public sealed record Case(SplitResult Sale, long Amount)
    {
        public override string ToString() => $"amount={Amount} gross={Sale.Gross} fee={Sale.Fee} shares=[{string.Join(",", Sale.Shares.Select(s => s.Amount))}]";
    }

    private static Arbitrary<Case> Cases() =>
        (from grossKind in Gen.Choose(0, 2)
         from small in Gen.Choose(1, 100_000)
         from sellers in Gen.Choose(1, 10)
         from values in Gen.ArrayOf(Gen.Choose(-2, 5).Select(v => v * 13), sellers)
         from fraction in Gen.Choose(1, 1_000_000)
         let gross = grossKind switch { 0 => small, 1 => long.MaxValue - small, _ => small % 9 + 1 }
         let sale = RevenueSplit.Allocate(gross, new FeePolicy(0.1m, 50), values.Select((v, i) => new ValuedSeller($"s{i:D2}", v)).ToList())
         let amount = Math.Max(1, (long)((BigInteger)gross * fraction / 1_000_000))
         select new Case(sale, amount)).ToArbitrary();

    [Fact]
    public void the_parts_add_up_to_the_disputed_amount_and_none_exceeds_what_the_sale_gave_it()
    {
        Prop.ForAll(Cases(), c =>
        {
            var parts = DisputeSplit.ProRata(c.Amount, c.Sale);
            var total = parts.Shares.Aggregate((BigInteger)parts.Fee, (sum, s) => sum + s.Amount);
            return total == c.Amount && parts.Fee >= 0 && parts.Fee <= c.Sale.Fee
                && parts.Shares.Zip(c.Sale.Shares).All(p => p.First.SellerId == p.Second.SellerId && p.First.Amount >= 0 && p.First.Amount <= p.Second.Amount);
        }).Check(Config);
    }

    [Fact]
    public void each_part_is_within_a_cent_of_its_exact_pro_rata_share()
    {
        Prop.ForAll(Cases(), c =>
        {
            var parts = DisputeSplit.ProRata(c.Amount, c.Sale);
            // |taken x gross - amount x part| < gross, in exact integers.
            bool Close(long taken, long part) => BigInteger.Abs((BigInteger)taken * c.Sale.Gross - (BigInteger)c.Amount * part) < c.Sale.Gross;
            return Close(parts.Fee, c.Sale.Fee) && parts.Shares.Zip(c.Sale.Shares).All(p => Close(p.First.Amount, p.Second.Amount));
        }).Check(Config);
    }

    [Fact]
    public void a_dispute_while_held_then_the_release_of_what_it_left_pays_each_seller_its_share_less_its_disputed_part()
    {
        Prop.ForAll(Cases(), c =>
        {
            var purchase = Guid.NewGuid();
            var parts = DisputeSplit.ProRata(c.Amount, c.Sale);
            var left = c.Sale with { Shares = c.Sale.Shares.Zip(parts.Shares, (s, p) => s with { Amount = s.Amount - p.Amount }).ToList() };
            var balances = new Dictionary<string, BigInteger>(StringComparer.Ordinal);
            foreach (var line in PurchasePostings.Sale(purchase, "b1", "USD", c.Sale)
                         .Concat(PurchasePostings.HeldDispute(purchase, "dp_1", "b1", "USD", parts))
                         .Concat(PurchasePostings.Release(purchase, "USD", left)))
            {
                balances[line.DebitAccount] = balances.GetValueOrDefault(line.DebitAccount) - line.Amount;
                balances[line.CreditAccount] = balances.GetValueOrDefault(line.CreditAccount) + line.Amount;
            }

            BigInteger Of(string account) => balances.GetValueOrDefault(account);
            return Of("buyer:b1:USD") == 0
                && Of("payment_clearing:platform:USD") == -(BigInteger)(c.Sale.Gross - c.Amount)
                && Of("platform_fees:platform:USD") == c.Sale.Fee - parts.Fee
                && c.Sale.Shares.Zip(parts.Shares).All(p =>
                    Of($"seller_held:{p.First.SellerId}:USD") == 0
                    && Of($"seller_payable:{p.First.SellerId}:USD") + p.Second.Amount == p.First.Amount);
        }).Check(Config);
    }

    [Fact]
    public void the_whole_amount_takes_every_part_whole_and_ties_go_to_the_fee_then_the_lower_seller_id()
    {
        var sale = new SplitResult(1_000, 100, 900, [new SellerShare("s01", 450, 0.5), new SellerShare("s02", 450, 0.5)], false);
        var whole = DisputeSplit.ProRata(1_000, sale);
        Assert.Equal(100, whole.Fee);
        Assert.Equal([450L, 450L], whole.Shares.Select(s => s.Amount));

        // 1/1000 of each part: 0.1, 0.45, 0.45 cents; the one cent goes to the largest remainder (a seller), the lower id.
        var one = DisputeSplit.ProRata(1, sale);
        Assert.Equal(0, one.Fee);
        Assert.Equal([1L, 0L], one.Shares.Select(s => s.Amount));

        // Equal remainders (two thirds of a cent each): the two cents go to the fee, then to the lower id (s01, listed second).
        var even = new SplitResult(300, 100, 200, [new SellerShare("s02", 100, 0.5), new SellerShare("s01", 100, 0.5)], false);
        var split = DisputeSplit.ProRata(2, even);
        Assert.Equal(1, split.Fee);
        Assert.Equal([0L, 1L], split.Shares.Select(s => s.Amount));
    }

    [Fact]
    public void an_amount_outside_the_sale_is_refused_naming_the_field()
    {
        var sale = new SplitResult(1_000, 100, 900, [new SellerShare("s01", 900, 1)], false);
        Assert.Equal("amount", Assert.Throws<SettlementInputException>(() => DisputeSplit.ProRata(0, sale)).Field);
        Assert.Equal("amount", Assert.Throws<SettlementInputException>(() => DisputeSplit.ProRata(1_001, sale)).Field);
    }
}
