using DataMarket.Valuation.Shapley;
using DataMarket.Valuation.Tests.References;

namespace DataMarket.Valuation.Tests.Shapley;

public class knn_shapley_regression
{
    public static IEnumerable<object[]> Cases()
    {
        for (var n = 1; n <= 9; n++)
        {
            for (var k = 1; k <= 6; k++)
            {
                yield return [n, k];
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void matches_brute_force_including_fewer_points_than_k(int n, int k)
    {
        var random = new Random(7919 * n + k);
        for (var trial = 0; trial < 3; trial++)
        {
            var (train, targets, test, testTargets) = RandomProblem(random, n, testPoints: 3, features: 2, span: 3);
            var result = KnnShapley.Regression(
                new RegressionTrainingSet(knn_shapley_classification.Flatten(train), 2, targets),
                new RegressionTestSet(knn_shapley_classification.Flatten(test), 2, testTargets),
                k);

            var expected = new double[n];
            var expectedTotal = 0.0;
            for (var j = 0; j < test.Length; j++)
            {
                double Utility(IEnumerable<int> s) => BruteForceShapley.KnnRegressionUtility(s, train, targets, test[j], testTargets[j], k);
                var perTest = BruteForceShapley.SubsetValues(n, s => Utility(s));
                for (var i = 0; i < n; i++)
                {
                    expected[i] += perTest[i] / test.Length;
                }

                expectedTotal += (Utility(Enumerable.Range(0, n)) - Utility([])) / test.Length;
            }

            for (var i = 0; i < n; i++)
            {
                Assert.Equal(expected[i], result.Points[i].Value, 1e-9);
            }

            Assert.Equal(expectedTotal, result.TotalUtility.Value, 1e-9);
            Assert.Equal(expectedTotal, result.Points.Sum(p => p.Value), 1e-9);
        }
    }

    [Fact]
    public void values_sum_to_the_gain_over_predicting_nothing_on_a_larger_problem()
    {
        var random = new Random(5);
        var (train, targets, test, testTargets) = RandomProblem(random, 500, testPoints: 30, features: 4, span: 20);
        var groups = Enumerable.Range(0, 500).Select(i => i % 4).ToArray();
        var result = KnnShapley.Regression(
            new RegressionTrainingSet(knn_shapley_classification.Flatten(train), 4, targets, groups, 4),
            new RegressionTestSet(knn_shapley_classification.Flatten(test), 4, testTargets),
            5);

        var expected = Enumerable.Range(0, test.Length).Average(j =>
            BruteForceShapley.KnnRegressionUtility(Enumerable.Range(0, 500), train, targets, test[j], testTargets[j], 5)
            + (testTargets[j] * testTargets[j]));
        Assert.Equal(expected, result.TotalUtility.Value, 1e-9);
        Assert.Equal(expected, result.Points.Sum(p => p.Value), 1e-8);
        Assert.Equal(expected, result.Groups.Sum(g => g.Value), 1e-8);
        Assert.All(result.Groups, g => Assert.True(g.StandardError > 0));
    }

    internal static (double[][] Train, double[] Targets, double[][] Test, double[] TestTargets) RandomProblem(
        Random random, int n, int testPoints, int features, int span)
    {
        double[] Point() => Enumerable.Range(0, features).Select(_ => (double)random.Next(span)).ToArray();
        double Target() => Math.Round((random.NextDouble() * 10) - 3, 3);
        var train = Enumerable.Range(0, n).Select(_ => Point()).ToArray();
        var targets = Enumerable.Range(0, n).Select(_ => Target()).ToArray();
        var test = Enumerable.Range(0, testPoints).Select(_ => Point()).ToArray();
        var testTargets = Enumerable.Range(0, testPoints).Select(_ => Target()).ToArray();
        return (train, targets, test, testTargets);
    }
}
