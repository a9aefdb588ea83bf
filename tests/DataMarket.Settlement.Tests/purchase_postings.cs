using DataMarket.Contracts;
using DataMarket.Settlement.Postings;
using DataMarket.Settlement.Split;
using FsCheck;
using FsCheck.Fluent;

namespace DataMarket.Settlement.Tests;

public class purchase_postings
{
    private static Arbitrary<(long Gross, int Rate, double[] Values)> Sales() =>
        (from gross in Gen.Choose(0, 5_000_000).Select(g => (long)g)
         from rate in Gen.Choose(0, 300)
         from sellers in Gen.Choose(1, 8)
         from values in Gen.ArrayOf(Gen.Choose(-2, 9).Select(v => v / 8.0), sellers)
         select (gross, rate, values)).ToArbitrary();

    private static Dictionary<string, long> Apply(IEnumerable<TransferLine> lines, Dictionary<string, long>? balances = null)
    {
        balances ??= new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            // Net credit per account: credits minus debits.
            balances[line.CreditAccount] = balances.GetValueOrDefault(line.CreditAccount) + line.Amount;
            balances[line.DebitAccount] = balances.GetValueOrDefault(line.DebitAccount) - line.Amount;
        }

        return balances;
    }

    [Fact]
    public void a_full_refund_restores_every_balance()
    {
        Prop.ForAll(Sales(), sale =>
        {
            var split = RevenueSplit.Allocate(sale.Gross, new FeePolicy(sale.Rate / 1000m, 30), sale.Values.Select((v, i) => new ValuedSeller($"seller-{i}", v)).ToList());
            var purchase = Guid.NewGuid();
            var balances = Apply(PurchasePostings.Sale(purchase, "buyer-1", "USD", split));
            var heldBefore = split.Shares.All(s => balances.GetValueOrDefault($"seller_held:{s.SellerId}:USD") == s.Amount);
            Apply(PurchasePostings.Refund(purchase, "buyer-1", "USD", split), balances);
            return heldBefore && balances.Values.All(b => b == 0);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(200));
    }

    [Fact]
    public void a_sale_moves_gross_in_and_fee_and_shares_out_of_the_buyer_with_stable_ids()
    {
        var split = RevenueSplit.Allocate(1_000, new FeePolicy(0.1m), [new ValuedSeller("a", 3), new ValuedSeller("b", 1), new ValuedSeller("c", 0)]);
        var purchase = Guid.NewGuid();
        var lines = PurchasePostings.Sale(purchase, "buyer-1", "usd", split);
        var balances = Apply(lines);
        Assert.Equal(0, balances["buyer:buyer-1:USD"]);
        Assert.Equal(100, balances["platform_fees:platform:USD"]);
        Assert.Equal(675, balances["seller_held:a:USD"]);
        Assert.Equal(225, balances["seller_held:b:USD"]);
        Assert.False(balances.ContainsKey("seller_held:c:USD"));
        Assert.Equal(lines.Select(l => l.TransferId), PurchasePostings.Sale(purchase, "buyer-1", "usd", split).Select(l => l.TransferId));
        Assert.Equal(lines.Count, lines.Select(l => l.TransferId).Distinct().Count());

        var released = Apply(PurchasePostings.Release(purchase, "USD", split), balances);
        Assert.Equal(0, released["seller_held:a:USD"]);
        Assert.Equal(675, released["seller_payable:a:USD"]);
    }
}
