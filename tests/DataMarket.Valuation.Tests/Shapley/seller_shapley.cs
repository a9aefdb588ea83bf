using DataMarket.Valuation.Shapley;
using DataMarket.Valuation.Tests.References;

namespace DataMarket.Valuation.Tests.Shapley;

public class seller_shapley
{
    public static IEnumerable<object[]> Ks() => Enumerable.Range(1, 6).Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(Ks))]
    public void exact_values_match_brute_force_over_seller_coalitions(int k)
    {
        var random = new Random(17 * k);
        for (var trial = 0; trial < 40; trial++)
        {
            var sellers = 1 + random.Next(6);
            var n = 1 + random.Next(14);
            var (train, classes, test, testClasses) = knn_shapley_classification.RandomProblem(random, n, testPoints: 2, features: 2, classCount: 2, span: 4);
            var groups = Enumerable.Range(0, n).Select(_ => random.Next(sellers)).ToArray();

            var result = SellerShapley.Exact(new TrainingSet(knn_shapley_classification.Flatten(train), 2, classes, groups, sellers), new TestSet(knn_shapley_classification.Flatten(test), 2, testClasses), k);

            var expected = ExpectedSellerValues(train, classes, test, testClasses, groups, sellers, k);
            for (var s = 0; s < sellers; s++)
            {
                Assert.Equal(expected[s], result.Groups[s].Value, 1e-12);
            }

            Assert.True(result.Exact);
            Assert.Equal(result.TotalUtility.Value, result.Groups.Sum(g => g.Value), 1e-12);
        }
    }

    [Fact]
    public void exact_values_match_brute_force_with_a_dozen_sellers()
    {
        var random = new Random(3);
        var (train, classes, test, testClasses) = knn_shapley_classification.RandomProblem(random, 70, testPoints: 3, features: 2, classCount: 3, span: 6);
        var groups = Enumerable.Range(0, 70).Select(_ => random.Next(12)).ToArray();
        var result = SellerShapley.Exact(new TrainingSet(knn_shapley_classification.Flatten(train), 2, classes, groups, 12), new TestSet(knn_shapley_classification.Flatten(test), 2, testClasses), 4);

        var expected = ExpectedSellerValues(train, classes, test, testClasses, groups, 12, 4);
        for (var s = 0; s < 12; s++)
        {
            Assert.Equal(expected[s], result.Groups[s].Value, 1e-12);
        }
    }

    [Fact]
    public void sampled_values_agree_with_exact_ones_within_their_standard_errors()
    {
        var random = new Random(5);
        var (train, classes, test, testClasses) = knn_shapley_classification.RandomProblem(random, 400, testPoints: 40, features: 3, classCount: 3, span: 8);
        var groups = Enumerable.Range(0, 400).Select(_ => random.Next(25)).ToArray();
        var trainingSet = new TrainingSet(knn_shapley_classification.Flatten(train), 3, classes, groups, 25);
        var testSet = new TestSet(knn_shapley_classification.Flatten(test), 3, testClasses);

        var exact = SellerShapley.Exact(trainingSet, testSet, 5);
        var sampled = SellerShapley.Sampled(trainingSet, testSet, 5, permutationsPerTestPoint: 300, seed: 1);

        Assert.False(sampled.Exact);
        Assert.Equal(300, sampled.PermutationsPerTestPoint);
        for (var s = 0; s < 25; s++)
        {
            // The exact values over these test points differ from the sampled ones only by the permutation noise,
            // which is a part of the sampled standard error; 4 standard errors leaves room for 25 comparisons.
            Assert.InRange(exact.Groups[s].Value, sampled.Groups[s].Value - (4 * sampled.Groups[s].StandardError) - 1e-3, sampled.Groups[s].Value + (4 * sampled.Groups[s].StandardError) + 1e-3);
        }

        Assert.Equal(exact.TotalUtility.Value, sampled.Groups.Sum(g => g.Value), 1e-12);

        var again = SellerShapley.Sampled(trainingSet, testSet, 5, permutationsPerTestPoint: 300, seed: 1);
        Assert.Equal(sampled.Groups.Select(g => g.Value), again.Groups.Select(g => g.Value));
    }

    [Fact]
    public void a_seller_who_copies_another_takes_half_as_a_player_but_little_under_asymmetric_shapley()
    {
        // Seller 0 lists points; seller 1 lists exact copies of them. As players they are symmetric.
        // Continuous coordinates: a tie between two different points would let the index tie-break favour one seller.
        var random = new Random(9);
        double[] Point() => [random.NextDouble(), random.NextDouble()];
        var train = Enumerable.Range(0, 30).Select(_ => Point()).ToArray();
        var classes = Enumerable.Range(0, 30).Select(_ => random.Next(2)).ToArray();
        var test = Enumerable.Range(0, 20).Select(_ => Point()).ToArray();
        var testClasses = Enumerable.Range(0, 20).Select(_ => random.Next(2)).ToArray();
        var doubled = train.Concat(train).ToArray();
        var doubledClasses = classes.Concat(classes).ToArray();
        var groups = Enumerable.Range(0, 60).Select(i => i < 30 ? 0 : 1).ToArray();
        var trainingSet = new TrainingSet(knn_shapley_classification.Flatten(doubled), 2, doubledClasses, groups, 2);
        var testSet = new TestSet(knn_shapley_classification.Flatten(test), 2, testClasses);

        var sellers = SellerShapley.Exact(trainingSet, testSet, 3);
        Assert.Equal(sellers.Groups[0].Value, sellers.Groups[1].Value, 1e-12);

        // Asymmetric Shapley with the original listed first leaves the original its whole stand-alone value and gives
        // the copier only what the duplicates add to the KNN utility, which is far less than half.
        var asymmetric = KnnShapley.Asymmetric(trainingSet, testSet, 3);
        var originalsAlone = KnnShapley.Classification(new TrainingSet(knn_shapley_classification.Flatten(train), 2, classes), testSet, 3);
        Assert.Equal(originalsAlone.TotalUtility.Value, asymmetric.Groups[0].Value, 1e-12);
        Assert.Equal(sellers.TotalUtility.Value - originalsAlone.TotalUtility.Value, asymmetric.Groups[1].Value, 1e-12);
        Assert.True(Math.Abs(asymmetric.Groups[1].Value) < sellers.Groups[1].Value / 4);
    }

    private static double[] ExpectedSellerValues(double[][] train, int[] classes, double[][] test, int[] testClasses, int[] groups, int sellers, int k)
    {
        var expected = new double[sellers];
        for (var j = 0; j < test.Length; j++)
        {
            var perTest = BruteForceShapley.SubsetValues(sellers, coalition =>
                BruteForceShapley.KnnUtility(Enumerable.Range(0, train.Length).Where(i => coalition.Contains(groups[i])), train, classes, test[j], testClasses[j], k));
            for (var s = 0; s < sellers; s++)
            {
                expected[s] += perTest[s] / test.Length;
            }
        }

        return expected;
    }
}
