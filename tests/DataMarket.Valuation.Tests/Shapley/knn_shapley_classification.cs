using DataMarket.Valuation.Shapley;
using DataMarket.Valuation.Tests.References;

namespace DataMarket.Valuation.Tests.Shapley;

public class knn_shapley_classification
{
    public static IEnumerable<object[]> Cases()
    {
        for (var n = 1; n <= 8; n++)
        {
            for (var k = 1; k <= 6; k++)
            {
                yield return [n, k];
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void matches_brute_force_enumeration_of_subsets(int n, int k)
    {
        var random = new Random(1000 * n + k);
        for (var trial = 0; trial < 4; trial++)
        {
            // Small integer features make ties frequent and keep float32 and float64 distances exact.
            var (train, classes, test, testClasses) = RandomProblem(random, n, testPoints: 3, features: 2, classCount: 3, span: 3);
            var trainingSet = new TrainingSet(Flatten(train), 2, classes);
            var testSet = new TestSet(Flatten(test), 2, testClasses);

            var result = KnnShapley.Classification(trainingSet, testSet, k);

            var expected = new double[n];
            for (var j = 0; j < test.Length; j++)
            {
                var perTest = BruteForceShapley.SubsetValues(n, s => BruteForceShapley.KnnUtility(s, train, classes, test[j], testClasses[j], k));
                for (var i = 0; i < n; i++)
                {
                    expected[i] += perTest[i] / test.Length;
                }
            }

            for (var i = 0; i < n; i++)
            {
                Assert.Equal(expected[i], result.Points[i].Value, 12);
            }
        }
    }

    [Fact]
    public void values_sum_to_the_utility_of_the_whole_training_set()
    {
        var random = new Random(7);
        var (train, classes, test, testClasses) = RandomProblem(random, 300, testPoints: 40, features: 5, classCount: 4, span: 10);
        var result = KnnShapley.Classification(new TrainingSet(Flatten(train), 5, classes), new TestSet(Flatten(test), 5, testClasses), 7);

        var expectedUtility = Enumerable.Range(0, test.Length)
            .Average(j => BruteForceShapley.KnnUtility(Enumerable.Range(0, train.Length).ToList(), train, classes, test[j], testClasses[j], 7));
        Assert.Equal(expectedUtility, result.TotalUtility.Value, 12);
        Assert.Equal(expectedUtility, result.Points.Sum(p => p.Value), 10);
    }

    [Fact]
    public void group_values_are_sums_of_their_points_and_carry_standard_errors()
    {
        var random = new Random(11);
        var (train, classes, test, testClasses) = RandomProblem(random, 60, testPoints: 25, features: 3, classCount: 2, span: 6);
        var groups = Enumerable.Range(0, 60).Select(i => i % 3).ToArray();
        var result = KnnShapley.Classification(new TrainingSet(Flatten(train), 3, classes, groups, 3), new TestSet(Flatten(test), 3, testClasses), 5);

        for (var g = 0; g < 3; g++)
        {
            var sum = Enumerable.Range(0, 60).Where(i => groups[i] == g).Sum(i => result.Points[i].Value);
            Assert.Equal(sum, result.Groups[g].Value, 12);
            Assert.True(result.Groups[g].StandardError > 0);
        }

        // The standard error is the sample standard deviation over test points divided by sqrt(M).
        var perTest = new double[test.Length];
        for (var j = 0; j < test.Length; j++)
        {
            var single = KnnShapley.Classification(new TrainingSet(Flatten(train), 3, classes), new TestSet(test[j].Select(v => (float)v).ToArray(), 3, [testClasses[j]]), 5);
            perTest[j] = single.Points[4].Value;
        }

        var mean = perTest.Average();
        var sd = Math.Sqrt(perTest.Sum(v => (v - mean) * (v - mean)) / (perTest.Length - 1));
        Assert.Equal(mean, result.Points[4].Value, 12);
        Assert.Equal(sd / Math.Sqrt(perTest.Length), result.Points[4].StandardError, 12);
    }

    [Fact]
    public void test_points_valued_in_blocks_give_the_same_values_as_one_at_a_time()
    {
        // 37 test points are shared out in blocks of four with a short last block; every block reuses buffers.
        var random = new Random(37);
        var (train, classes, test, testClasses) = RandomProblem(random, 3000, testPoints: 37, features: 9, classCount: 3, span: 7);
        var trainingSet = new TrainingSet(Flatten(train), 9, classes);
        var together = KnnShapley.Classification(trainingSet, new TestSet(Flatten(test), 9, testClasses), 4);
        var asymmetricTogether = KnnShapley.Asymmetric(trainingSet, new TestSet(Flatten(test), 9, testClasses), 4);

        var expected = new double[3000];
        for (var j = 0; j < test.Length; j++)
        {
            var single = KnnShapley.Classification(trainingSet, new TestSet(Flatten([test[j]]), 9, [testClasses[j]]), 4);
            for (var i = 0; i < expected.Length; i++)
            {
                expected[i] += single.Points[i].Value / test.Length;
            }
        }

        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], together.Points[i].Value, 1e-12);
            Assert.Equal(expected[i], asymmetricTogether.Points[i].Value, 1e-12);
        }
    }

    [Fact]
    public void the_same_input_gives_the_same_bits_on_every_run()
    {
        // Blocks big enough that every core takes some, so which thread finishes first varies from run to run;
        // the values must not.
        var random = new Random(41);
        var (train, classes, test, testClasses) = RandomProblem(random, 4000, testPoints: 64, features: 4, classCount: 3, span: 6);
        var groups = Enumerable.Range(0, 4000).Select(i => i % 7).ToArray();
        var trainingSet = new TrainingSet(Flatten(train), 4, classes, groups, 7);
        var testSet = new TestSet(Flatten(test), 4, testClasses);
        var first = KnnShapley.Classification(trainingSet, testSet, 5);

        for (var run = 0; run < 30; run++)
        {
            var again = KnnShapley.Classification(trainingSet, testSet, 5);
            Assert.Equal(first.Points, again.Points);
            Assert.Equal(first.Groups, again.Groups);
            Assert.Equal(first.TotalUtility, again.TotalUtility);
        }
    }

    [Fact]
    public void a_single_test_point_has_no_standard_error()
    {
        var result = KnnShapley.Classification(new TrainingSet([0f, 1f], 1, [0, 1]), new TestSet([0f], 1, [0]), 1);
        Assert.True(double.IsNaN(result.Points[0].StandardError));
        Assert.Equal(1.0, result.Points.Sum(p => p.Value), 12);
    }

    internal static (double[][] Train, int[] Classes, double[][] Test, int[] TestClasses) RandomProblem(
        Random random, int n, int testPoints, int features, int classCount, int span)
    {
        double[] Point() => Enumerable.Range(0, features).Select(_ => (double)random.Next(span)).ToArray();
        var train = Enumerable.Range(0, n).Select(_ => Point()).ToArray();
        var classes = Enumerable.Range(0, n).Select(_ => random.Next(classCount)).ToArray();
        var test = Enumerable.Range(0, testPoints).Select(_ => Point()).ToArray();
        var testClasses = Enumerable.Range(0, testPoints).Select(_ => random.Next(classCount)).ToArray();
        return (train, classes, test, testClasses);
    }

    internal static float[] Flatten(double[][] rows) => rows.SelectMany(r => r.Select(v => (float)v)).ToArray();
}
