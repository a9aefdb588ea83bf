using DataMarket.Valuation.Shapley;
using DataMarket.Valuation.Tests.References;

namespace DataMarket.Valuation.Tests.Shapley;

public class asymmetric_knn_shapley
{
    /// <summary>
    /// The hand-checked case from the issue: K = 3, test label 1, distance ranks u1 v0 u2 v1 u3 v2 v3 with labels
    /// 0 1 0 1 0 0 1, originals {u1, u2, u3} listed before {v0 .. v3}. Positions on a line make the ranks exact.
    /// </summary>
    [Fact]
    public void reproduces_the_hand_checked_example_and_its_symmetric_counterpart()
    {
        // Training order: u1 u2 u3 v0 v1 v2 v3.
        float[] positions = [1, 3, 5, 2, 4, 6, 7];
        int[] classes = [0, 0, 0, 1, 1, 0, 1];
        int[] groups = [0, 0, 0, 1, 1, 1, 1];
        var train = new TrainingSet(positions, 1, classes, groups, 2);
        var test = new TestSet([0f], 1, [1]);

        var asymmetric = KnnShapley.Asymmetric(train, test, 3);
        var symmetric = KnnShapley.Classification(train, test, 3);

        double[] expectedAsymmetric = [0, 0, 0, 1.0 / 6, 1.0 / 6, 0, 0];
        double[] expectedSymmetric = [-3.0 / 28, -3.0 / 28, -1.0 / 42, 19.0 / 84, 19.0 / 84, -1.0 / 42, 1.0 / 7];
        for (var i = 0; i < 7; i++)
        {
            Assert.Equal(expectedAsymmetric[i], asymmetric.Points[i].Value, 1e-14);
            Assert.Equal(expectedSymmetric[i], symmetric.Points[i].Value, 1e-14);
        }

        Assert.Equal(0, asymmetric.Groups[0].Value, 1e-14);
        Assert.Equal(1.0 / 3, asymmetric.Groups[1].Value, 1e-14);
        Assert.Equal(1.0 / 3, asymmetric.TotalUtility.Value, 1e-14);

        // Both references agree with the hand-checked numbers too.
        var utility = (IReadOnlyList<int> s) => BruteForceShapley.KnnUtility(s, positions.Select(p => new double[] { p }).ToArray(), classes, [0], 1, 3);
        var literal = AsymmetricBruteForce.OverRestrictedPermutations(groups, 2, utility);
        var games = AsymmetricBruteForce.ByGroupGames(groups, 2, utility);
        for (var i = 0; i < 7; i++)
        {
            Assert.Equal(expectedAsymmetric[i], literal[i], 1e-14);
            Assert.Equal(expectedAsymmetric[i], games[i], 1e-14);
        }
    }

    public static IEnumerable<object[]> Ks() => Enumerable.Range(1, 6).Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(Ks))]
    public void matches_the_group_game_brute_force_on_random_small_cases(int k)
    {
        var random = new Random(31 * k);
        for (var trial = 0; trial < 60; trial++)
        {
            var (points, classes, groups, groupCount) = RandomStructure(random);
            var n = points.Length;
            var testPoints = Enumerable.Range(0, 2).Select(_ => new double[] { random.Next(4), random.Next(4) }).ToArray();
            var testClasses = testPoints.Select(_ => random.Next(2)).ToArray();

            var result = KnnShapley.Asymmetric(
                new TrainingSet(knn_shapley_classification.Flatten(points), 2, classes, groups, groupCount),
                new TestSet(knn_shapley_classification.Flatten(testPoints), 2, testClasses),
                k);

            var expected = new double[n];
            for (var j = 0; j < testPoints.Length; j++)
            {
                var perTest = AsymmetricBruteForce.ByGroupGames(groups, groupCount, s => BruteForceShapley.KnnUtility(s, points, classes, testPoints[j], testClasses[j], k));
                for (var i = 0; i < n; i++)
                {
                    expected[i] += perTest[i] / testPoints.Length;
                }
            }

            for (var i = 0; i < n; i++)
            {
                Assert.Equal(expected[i], result.Points[i].Value, 1e-12);
            }
        }
    }

    [Fact]
    public void the_literal_restricted_permutation_average_agrees_on_tiny_cases()
    {
        var random = new Random(99);
        for (var trial = 0; trial < 40; trial++)
        {
            var k = 1 + random.Next(4);
            var earlier = random.Next(5);
            var size = 1 + random.Next(4);
            var n = earlier + size;
            var groups = Enumerable.Range(0, n).Select(i => i < earlier ? 0 : 1).ToArray();
            var points = Enumerable.Range(0, n).Select(_ => new double[] { random.Next(4), random.Next(4) }).ToArray();
            var classes = Enumerable.Range(0, n).Select(_ => random.Next(2)).ToArray();
            double[] testPoint = [random.Next(4), random.Next(4)];
            var testClass = random.Next(2);

            // With no earlier points the only group is group 1; shift so group indices start at 0.
            var groupCount = earlier == 0 ? 1 : 2;
            if (earlier == 0)
            {
                groups = new int[n];
            }

            var result = KnnShapley.Asymmetric(new TrainingSet(knn_shapley_classification.Flatten(points), 2, classes, groups, groupCount), new TestSet(testPoint.Select(v => (float)v).ToArray(), 2, [testClass]), k);
            var literal = AsymmetricBruteForce.OverRestrictedPermutations(groups, groupCount, s => BruteForceShapley.KnnUtility(s, points, classes, testPoint, testClass, k));
            for (var i = 0; i < n; i++)
            {
                Assert.Equal(literal[i], result.Points[i].Value, 1e-12);
            }
        }
    }

    [Fact]
    public void each_group_earns_exactly_what_it_adds_to_the_groups_before_it()
    {
        var random = new Random(4);
        var (train, classes, test, testClasses) = knn_shapley_classification.RandomProblem(random, 240, testPoints: 12, features: 3, classCount: 3, span: 5);
        var groups = Enumerable.Range(0, 240).Select(_ => random.Next(5)).ToArray();
        var result = KnnShapley.Asymmetric(new TrainingSet(knn_shapley_classification.Flatten(train), 3, classes, groups, 5), new TestSet(knn_shapley_classification.Flatten(test), 3, testClasses), 4);

        for (var a = 0; a < 5; a++)
        {
            var expected = Enumerable.Range(0, test.Length).Average(j =>
                BruteForceShapley.KnnUtility(Enumerable.Range(0, 240).Where(i => groups[i] <= a), train, classes, test[j], testClasses[j], 4)
                - BruteForceShapley.KnnUtility(Enumerable.Range(0, 240).Where(i => groups[i] < a), train, classes, test[j], testClasses[j], 4));
            Assert.Equal(expected, result.Groups[a].Value, 1e-12);
            var sum = Enumerable.Range(0, 240).Where(i => groups[i] == a).Sum(i => result.Points[i].Value);
            Assert.Equal(expected, sum, 1e-10);
        }

        Assert.Equal(result.TotalUtility.Value, result.Points.Sum(p => p.Value), 1e-10);
    }

    [Fact]
    public void identical_points_in_one_group_get_identical_values()
    {
        var random = new Random(12);
        for (var trial = 0; trial < 50; trial++)
        {
            var (points, classes, groups, groupCount) = RandomStructure(random);
            var target = groups[^1];
            var first = Array.IndexOf(groups, target);

            // Insert a copy of the group's first point right after it: the copy must sit next to the original in
            // training index too, or a third point at the same distance could fall between them in the tie-break
            // and the two would no longer be interchangeable in the utility.
            points = [.. points[..(first + 1)], points[first], .. points[(first + 1)..]];
            classes = [.. classes[..(first + 1)], classes[first], .. classes[(first + 1)..]];
            groups = [.. groups[..(first + 1)], target, .. groups[(first + 1)..]];
            var testPoints = Enumerable.Range(0, 3).Select(_ => new float[] { random.Next(4), random.Next(4) }).ToArray();
            var result = KnnShapley.Asymmetric(
                new TrainingSet(knn_shapley_classification.Flatten(points), 2, classes, groups, groupCount),
                new TestSet(testPoints.SelectMany(p => p).ToArray(), 2, [0, 1, random.Next(2)]),
                1 + random.Next(5));
            Assert.Equal(result.Points[first].Value, result.Points[first + 1].Value, 1e-12);
        }
    }

    [Fact]
    public void with_one_group_equals_plain_knn_shapley_and_later_groups_leave_earlier_values_alone()
    {
        var random = new Random(21);
        var (train, classes, test, testClasses) = knn_shapley_classification.RandomProblem(random, 150, testPoints: 10, features: 2, classCount: 2, span: 6);
        var flat = knn_shapley_classification.Flatten(train);
        var testSet = new TestSet(knn_shapley_classification.Flatten(test), 2, testClasses);

        var plain = KnnShapley.Classification(new TrainingSet(flat, 2, classes), testSet, 5);
        var single = KnnShapley.Asymmetric(new TrainingSet(flat, 2, classes), testSet, 5);
        for (var i = 0; i < 150; i++)
        {
            Assert.Equal(plain.Points[i].Value, single.Points[i].Value, 1e-12);
            Assert.Equal(plain.Points[i].StandardError, single.Points[i].StandardError, 1e-12);
        }

        // The first 100 points alone as one group, then the same 100 points before 50 later ones.
        var firstHundred = KnnShapley.Asymmetric(new TrainingSet(flat[..200], 2, classes[..100]), testSet, 5);
        var withLater = KnnShapley.Asymmetric(new TrainingSet(flat, 2, classes, Enumerable.Range(0, 150).Select(i => i < 100 ? 0 : 1).ToArray(), 2), testSet, 5);
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(firstHundred.Points[i].Value, withLater.Points[i].Value, 1e-12);
        }
    }

    [Fact]
    public void truncated_monte_carlo_over_restricted_permutations_converges_to_the_exact_values()
    {
        var random = new Random(8);
        var (train, classes, test, testClasses) = knn_shapley_classification.RandomProblem(random, 16, testPoints: 1, features: 2, classCount: 2, span: 5);
        var groups = Enumerable.Range(0, 16).Select(i => i / 6).ToArray();
        var exact = KnnShapley.Asymmetric(new TrainingSet(knn_shapley_classification.Flatten(train), 2, classes, groups, 3), new TestSet(knn_shapley_classification.Flatten(test), 2, testClasses), 3);

        var estimate = MonteCarloShapley.Truncated(16, s => BruteForceShapley.KnnUtility(s, train, classes, test[0], testClasses[0], 3), 3000, new Random(1), tolerance: 0, groups);
        for (var i = 0; i < 16; i++)
        {
            // Marginals are multiples of 1/3, so 3000 permutations leave a standard error below 0.01.
            Assert.Equal(exact.Points[i].Value, estimate[i], 0.05);
        }
    }

    /// <summary>0..7 earlier points in 0..2 groups, then a group of 1..6 points, sometimes a later group of 1..3.</summary>
    internal static (double[][] Points, int[] Classes, int[] Groups, int GroupCount) RandomStructure(Random random)
    {
        var earlier = random.Next(8);
        var earlierGroups = earlier == 0 ? 0 : 1 + random.Next(Math.Min(2, earlier));
        var size = 1 + random.Next(6);
        var later = random.Next(2) == 0 ? 0 : 1 + random.Next(3);
        var groups = new List<int>();
        for (var i = 0; i < earlier; i++)
        {
            // Make sure every earlier group is non-empty: the first points seed them in turn.
            groups.Add(i < earlierGroups ? i : random.Next(earlierGroups));
        }

        groups.AddRange(Enumerable.Repeat(earlierGroups, size));
        groups.AddRange(Enumerable.Repeat(earlierGroups + 1, later));
        var groupCount = earlierGroups + 1 + (later > 0 ? 1 : 0);

        // Shuffle so group membership is not tied to training index (the tie-break).
        var shuffled = groups.ToArray();
        random.Shuffle(shuffled);
        var points = shuffled.Select(_ => new double[] { random.Next(4), random.Next(4) }).ToArray();
        var classes = shuffled.Select(_ => random.Next(2)).ToArray();
        return (points, classes, shuffled, groupCount);
    }
}
