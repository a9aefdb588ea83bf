using DataMarket.Valuation.Shapley;
using FsCheck;
using FsCheck.Fluent;

namespace DataMarket.Settlement.Tests;

/// <summary>The tiered valuation that the split uses: copiers go to a later tier and cannot gain by copying.</summary>
public class replication_tiers
{
    public sealed record Market(int K, int[] Coordinates, int[] Labels, int[] SellerOf, int Sellers, int CopiedSeller, int Copies, int[] TestCoordinates, int[] TestLabels)
    {
        public override string ToString() =>
            $"K={K} sellers={Sellers} copied={CopiedSeller}x{Copies} coords=[{string.Join(",", Coordinates)}] labels=[{string.Join(",", Labels)}] sellerOf=[{string.Join(",", SellerOf)}] test=[{string.Join(",", TestCoordinates)}]/[{string.Join(",", TestLabels)}]";

        /// <summary>Independent sellers with distinct rows (the grid point carries the row index), then the copies as new sellers.</summary>
        public (TrainingSet Original, TrainingSet WithCopies) Sets()
        {
            var n = Labels.Length;
            var features = new List<float>();
            var classes = new List<int>();
            var groups = new List<int>();
            for (var i = 0; i < n; i++)
            {
                features.AddRange([Coordinates[2 * i], Coordinates[(2 * i) + 1] + (i * 0.001f)]);
                classes.Add(Labels[i]);
                groups.Add(SellerOf[i]);
            }

            var original = new TrainingSet([.. features], 2, [.. classes], [.. groups], Sellers);
            for (var c = 0; c < Copies; c++)
            {
                for (var i = 0; i < n; i++)
                {
                    if (SellerOf[i] == CopiedSeller)
                    {
                        features.AddRange([original.Row(i)[0], original.Row(i)[1]]);
                        classes.Add(Labels[i]);
                        groups.Add(Sellers + c);
                    }
                }
            }

            return (original, new TrainingSet([.. features], 2, [.. classes], [.. groups], Sellers + Copies));
        }

        public TestSet Test => new(TestCoordinates.Select(c => (float)c).ToArray(), 2, TestLabels);
    }

    private static Arbitrary<Market> Markets() =>
        (from n in Gen.Choose(1, 10)
         from k in Gen.Choose(1, 4)
         from sellers in Gen.Choose(1, 3)
         from coordinates in Gen.ArrayOf(Gen.Choose(0, 4), 2 * n)
         from labels in Gen.ArrayOf(Gen.Choose(0, 2), n)
         from sellerOf in Gen.ArrayOf(Gen.Choose(0, sellers - 1), n)
         from copied in Gen.Choose(0, sellers - 1)
         from copies in Gen.Choose(1, 3)
         from testCount in Gen.Choose(1, 3)
         from testCoordinates in Gen.ArrayOf(Gen.Choose(0, 4), 2 * testCount)
         from testLabels in Gen.ArrayOf(Gen.Choose(0, 2), testCount)
         select new Market(k, coordinates, labels, sellerOf, sellers, copied, copies, testCoordinates, testLabels)).ToArbitrary();

    [Fact]
    public void copies_as_new_sellers_leave_first_tier_values_unchanged_and_earn_together_at_most_their_marginal_value()
    {
        Prop.ForAll(Markets(), market =>
        {
            var (original, withCopies) = market.Sets();
            var before = ReplicationTiers.Assign(original);
            var after = ReplicationTiers.Assign(withCopies);
            var valuesBefore = KnnShapley.Tiered(original, before.TierOfGroup, market.Test, market.K);
            var valuesAfter = KnnShapley.Tiered(withCopies, after.TierOfGroup, market.Test, market.K);
            var copiedHasRows = market.SellerOf.Contains(market.CopiedSeller);

            // The independent sellers share tier 0; each copy copies the original and every copy before it, so
            // copy c (from 0) goes to tier c + 1.
            var tiersOk = before.TierOfGroup.All(t => t == 0)
                && after.TierOfGroup.Take(market.Sellers).All(t => t == 0)
                && after.TierOfGroup.Skip(market.Sellers).Select((t, c) => t == (copiedHasRows ? c + 1 : 0)).All(ok => ok);
            var unchanged = Enumerable.Range(0, market.Sellers).All(s => Math.Abs(valuesBefore.Groups[s].Value - valuesAfter.Groups[s].Value) <= 1e-12);

            // Marginal value of the copies, by brute force over the test points: U(everything) - U(original data).
            var marginal = market.TestLabels.Select((_, j) => Utility(withCopies, market, j, Enumerable.Range(0, withCopies.Count)) - Utility(withCopies, market, j, Enumerable.Range(0, original.Count))).Average();
            var copiesTotal = valuesAfter.Groups.Skip(market.Sellers).Sum(v => v.Value);
            return tiersOk && unchanged && copiesTotal <= marginal + 1e-12;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(200));
    }

    /// <summary>KNN classification utility written from its definition: label matches among the K nearest of S, over K.</summary>
    private static double Utility(TrainingSet train, Market market, int testPoint, IEnumerable<int> subset)
    {
        var x = market.TestCoordinates[2 * testPoint];
        var y = market.TestCoordinates[(2 * testPoint) + 1];
        var nearest = subset
            .OrderBy(i => ((train.Row(i)[0] - x) * (train.Row(i)[0] - x)) + ((train.Row(i)[1] - y) * (train.Row(i)[1] - y)))
            .ThenBy(i => i)
            .Take(market.K);
        return nearest.Count(i => train.Classes[i] == market.TestLabels[testPoint]) / (double)market.K;
    }

    [Fact]
    public void a_seller_is_pushed_back_only_past_the_policy_fraction_and_only_behind_an_earlier_listing()
    {
        // Seller 0 has 10 rows; seller 1 copies one of them (10%: not more than the fraction) then two (20%).
        TrainingSet Market(int copied, bool copierFirst)
        {
            var features = new List<float>();
            var groups = new List<int>();
            for (var i = 0; i < 10; i++)
            {
                features.AddRange([i, 0]);
                groups.Add(copierFirst ? 1 : 0);
            }

            for (var i = 0; i < 10; i++)
            {
                features.AddRange(i < copied ? [i, 0] : [i, 100 + i]);
                groups.Add(copierFirst ? 0 : 1);
            }

            return new TrainingSet([.. features], 2, new int[20], [.. groups], 2);
        }

        Assert.Equal([0, 0], ReplicationTiers.Assign(Market(1, false)).TierOfGroup);
        var copy = ReplicationTiers.Assign(Market(2, false));
        Assert.Equal([0, 1], copy.TierOfGroup);
        Assert.Equal(new CopyFinding(1, 0, 2, 10), Assert.Single(copy.Copies));
        // The same rows with the copier listed first: the later seller is the one that repeats an earlier listing.
        Assert.Equal([0, 1], ReplicationTiers.Assign(Market(2, true)).TierOfGroup);
        // Different labels are not copies.
        var relabelled = Market(5, false);
        var classes = Enumerable.Range(0, 20).Select(i => i < 10 ? 0 : 1).ToArray();
        Assert.Equal([0, 0], ReplicationTiers.Assign(new TrainingSet(relabelled.Features, 2, classes, relabelled.Groups, 2)).TierOfGroup);
    }

    [Fact]
    public void near_duplicates_count_within_the_policy_distance()
    {
        var features = new float[] { 0, 0, 5, 5, 0.05f, 0, 5, 5.05f };
        var train = new TrainingSet(features, 2, [0, 0, 0, 0], [0, 0, 1, 1], 2);
        Assert.Equal([0, 0], ReplicationTiers.Assign(train).TierOfGroup);
        Assert.Equal([0, 1], ReplicationTiers.Assign(train, new DuplicatePolicy { NearDuplicateDistance = 0.1 }).TierOfGroup);
        Assert.Throws<ValuationInputException>(() => ReplicationTiers.Assign(train, new DuplicatePolicy { Fraction = 1.5 }));
    }

    [Fact]
    public void tiered_values_are_the_asymmetric_values_over_tiers_kept_per_seller()
    {
        // Sellers 0 and 2 share tier 0, seller 1 is in tier 1: point values equal the asymmetric game over tiers.
        var features = new float[] { 0, 0, 1, 0, 2, 0, 3, 0, 0, 1, 4, 4 };
        var classes = new[] { 0, 1, 0, 0, 1, 0 };
        var sellers = new[] { 0, 1, 2, 1, 0, 2 };
        var test = new TestSet([0.5f, 0.2f, 3, 1], 2, [0, 1]);
        var tiered = KnnShapley.Tiered(new TrainingSet(features, 2, classes, sellers, 3), [0, 1, 0], test, 2);
        var byTier = KnnShapley.Asymmetric(new TrainingSet(features, 2, classes, sellers.Select(s => s == 1 ? 1 : 0).ToArray(), 2), test, 2);
        for (var i = 0; i < classes.Length; i++)
        {
            Assert.Equal(byTier.Points[i].Value, tiered.Points[i].Value, 12);
        }

        for (var s = 0; s < 3; s++)
        {
            Assert.Equal(Enumerable.Range(0, 6).Where(i => sellers[i] == s).Sum(i => byTier.Points[i].Value), tiered.Groups[s].Value, 12);
        }

        Assert.Equal(byTier.Groups[1].Value, tiered.Groups[1].Value, 12);
    }
}
