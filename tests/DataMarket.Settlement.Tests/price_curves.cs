using DataMarket.Settlement.Pricing;
using FsCheck;
using FsCheck.Fluent;

namespace DataMarket.Settlement.Tests;

public class price_curves
{
    [Fact]
    public void a_concave_curve_through_the_origin_is_published_sorted()
    {
        var curve = PriceCurve.Publish([new(1m, 1_000), new(0.25m, 400), new(0.5m, 650)]);
        Assert.Equal([0.25m, 0.5m, 1m], curve.Points.Select(p => p.Fraction));
        Assert.Equal(650, curve.PriceOf(0.5m));
    }

    [Fact]
    public void a_falling_price_is_refused_naming_both_fractions()
    {
        var error = Assert.Throws<SettlementInputException>(() => PriceCurve.Publish([new(0.25m, 400), new(0.5m, 300)]));
        Assert.Equal("versions[0.5].price", error.Field);
        Assert.Contains("0.25", error.Message);
    }

    [Fact]
    public void a_curve_where_two_small_samples_undercut_a_larger_one_is_refused_naming_the_fractions()
    {
        // Two quarter samples cost 200 but the half costs 300: buy the quarters instead.
        var error = Assert.Throws<SettlementInputException>(() => PriceCurve.Publish([new(0.25m, 100), new(0.5m, 300), new(1m, 600)]));
        Assert.Equal("versions[0.5].price", error.Field);
        Assert.Contains("fractions 0.25 and 0.25", error.Message);
    }

    [Fact]
    public void every_published_curve_is_non_decreasing_and_subadditive_on_its_grid()
    {
        var curves =
            from count in Gen.Choose(1, 6)
            from fractions in Gen.ArrayOf(Gen.Choose(1, 20), count)
            from prices in Gen.ArrayOf(Gen.Choose(0, 100), count)
            select fractions.Distinct().Select((f, i) => new VersionPrice(f / 20m, prices[i])).ToArray();
        Prop.ForAll(curves.ToArbitrary(), versions =>
        {
            PriceCurve published;
            try
            {
                published = PriceCurve.Publish(versions);
            }
            catch (SettlementInputException)
            {
                return true;
            }

            var p = published.Points;
            return p.Zip(p.Skip(1)).All(pair => pair.First.Price <= pair.Second.Price)
                && p.All(a => p.All(b => p.Where(c => a.Fraction + b.Fraction >= c.Fraction).All(c => c.Price <= a.Price + b.Price)));
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(300));
    }

    [Fact]
    public void a_smaller_version_is_a_prefix_of_a_larger_one_and_the_same_every_time()
    {
        var quarter = NestedSample.Rows(1_000, 0.25m, seed: 7);
        var half = NestedSample.Rows(1_000, 0.5m, seed: 7);
        Assert.Equal(250, quarter.Length);
        Assert.Equal(500, half.Length);
        Assert.Equal(quarter, half[..250]);
        Assert.Equal(half, NestedSample.Rows(1_000, 0.5m, seed: 7));
        Assert.Equal(500, half.Distinct().Count());
        Assert.NotEqual(half, NestedSample.Rows(1_000, 0.5m, seed: 8));
    }

    [Fact]
    public void bad_versions_are_refused()
    {
        Assert.Throws<SettlementInputException>(() => PriceCurve.Publish([new(0m, 1)]));
        Assert.Throws<SettlementInputException>(() => PriceCurve.Publish([new(1.5m, 1)]));
        Assert.Throws<SettlementInputException>(() => PriceCurve.Publish([new(0.5m, -1)]));
        Assert.Throws<SettlementInputException>(() => PriceCurve.Publish([new(0.5m, 1), new(0.5m, 2)]));
        Assert.Throws<SettlementInputException>(() => PriceCurve.Publish([]));
    }
}
