using DataMarket.Valuation.Shapley;
using DataMarket.Valuation.Tests.References;
using FsCheck;
using FsCheck.Fluent;

namespace DataMarket.Valuation.Tests.Shapley;

/// <summary>Identities every method must satisfy on any input, checked on FsCheck-generated problems.</summary>
public class shapley_identities
{
    private static readonly Config Config = Config.QuickThrowOnFailure.WithMaxTest(150);

    /// <summary>A small problem drawn from FsCheck's integers: sizes, K and coordinates that tie often.</summary>
    private static Arbitrary<Problem> Problems() =>
        (from n in Gen.Choose(0, 12)
         from k in Gen.Choose(1, 7)
         from groupCount in Gen.Choose(1, 4)
         from coordinates in Gen.ArrayOf(Gen.Choose(0, 3), 2 * (n + 2))
         from labels in Gen.ArrayOf(Gen.Choose(0, 2), n + 2)
         from groups in Gen.ArrayOf(Gen.Choose(0, groupCount - 1), n)
         from targets in Gen.ArrayOf(Gen.Choose(-20, 20), n + 2)
         select new Problem(n, k, groupCount, coordinates, labels, groups, targets)).ToArbitrary();

    [Fact]
    public void point_values_sum_to_the_utility_gain_for_every_method()
    {
        Prop.ForAll(Problems(), p =>
        {
            var plain = KnnShapley.Classification(p.Train, p.Test, p.K);
            var asymmetric = KnnShapley.Asymmetric(p.Train, p.Test, p.K);
            var regression = KnnShapley.Regression(p.RegressionTrain, p.RegressionTest, p.K);
            var sellers = SellerShapley.Exact(p.Train, p.Test, p.K);
            var utility = p.N == 0 ? 0 : BruteForceShapley.KnnUtility(Enumerable.Range(0, p.N), p.Points, p.Classes, p.TestPoint, p.TestClass, p.K);
            return Close(utility, plain.Points.Sum(v => v.Value))
                && Close(utility, asymmetric.Points.Sum(v => v.Value))
                && Close(utility, sellers.Groups.Sum(v => v.Value))
                && Close(regression.TotalUtility.Value, regression.Points.Sum(v => v.Value));
        }).Check(Config);
    }

    [Fact]
    public void asymmetric_group_totals_are_the_increments_over_earlier_groups()
    {
        Prop.ForAll(Problems(), p =>
        {
            var asymmetric = KnnShapley.Asymmetric(p.Train, p.Test, p.K);
            return Enumerable.Range(0, p.GroupCount).All(a =>
                Close(
                    BruteForceShapley.KnnUtility(Enumerable.Range(0, p.N).Where(i => p.Groups[i] <= a), p.Points, p.Classes, p.TestPoint, p.TestClass, p.K)
                    - BruteForceShapley.KnnUtility(Enumerable.Range(0, p.N).Where(i => p.Groups[i] < a), p.Points, p.Classes, p.TestPoint, p.TestClass, p.K),
                    asymmetric.Groups[a].Value));
        }).Check(Config);
    }

    [Fact]
    public void plain_values_match_brute_force_and_asymmetric_values_match_the_group_games()
    {
        Prop.ForAll(Problems(), p =>
        {
            double Utility(IEnumerable<int> s) => BruteForceShapley.KnnUtility(s, p.Points, p.Classes, p.TestPoint, p.TestClass, p.K);
            var plain = KnnShapley.Classification(p.Train, p.Test, p.K);
            var asymmetric = KnnShapley.Asymmetric(p.Train, p.Test, p.K);
            var expectedPlain = BruteForceShapley.SubsetValues(p.N, s => Utility(s));
            var expectedAsymmetric = AsymmetricBruteForce.ByGroupGames(p.Groups, p.GroupCount, s => Utility(s));
            return Enumerable.Range(0, p.N).All(i => Close(expectedPlain[i], plain.Points[i].Value) && Close(expectedAsymmetric[i], asymmetric.Points[i].Value));
        }).Check(Config);
    }

    private static bool Close(double expected, double actual) => Math.Abs(expected - actual) <= 1e-9 * Math.Max(1, Math.Abs(expected));

    /// <summary>N training points on a small grid plus one test point, with classes, groups and numeric targets.</summary>
    public sealed record Problem(int N, int K, int GroupCount, int[] Coordinates, int[] Labels, int[] Groups, int[] Targets)
    {
        public double[][] Points => Enumerable.Range(0, N).Select(i => new double[] { Coordinates[2 * i], Coordinates[(2 * i) + 1] }).ToArray();

        public int[] Classes => Labels[..N];

        public double[] TestPoint => [Coordinates[2 * N], Coordinates[(2 * N) + 1]];

        public int TestClass => Labels[N];

        public TrainingSet Train => new(Coordinates[..(2 * N)].Select(c => (float)c).ToArray(), 2, Classes, Groups, GroupCount);

        public TestSet Test => new(TestPoint.Select(c => (float)c).ToArray(), 2, [TestClass]);

        public RegressionTrainingSet RegressionTrain => new(Coordinates[..(2 * N)].Select(c => (float)c).ToArray(), 2, Targets[..N].Select(t => t / 4.0).ToArray(), Groups, GroupCount);

        public RegressionTestSet RegressionTest => new(TestPoint.Select(c => (float)c).ToArray(), 2, [Targets[N] / 4.0]);

        public override string ToString() =>
            $"N={N} K={K} groups={GroupCount} coordinates=[{string.Join(",", Coordinates)}] labels=[{string.Join(",", Labels)}] groupOf=[{string.Join(",", Groups)}] targets=[{string.Join(",", Targets)}]";
    }
}
