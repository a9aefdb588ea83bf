using DataMarket.Valuation.Shapley;

namespace DataMarket.Valuation.Tests.Shapley;

public class mislabel_detection
{
    [Fact]
    public void lowest_values_find_flipped_labels_with_roc_auc_above_0_98()
    {
        // Deterministic stand-in for a real dataset: 10 Gaussian classes in 16 dimensions, 3000 training points of
        // which 10% have their label flipped to another class, and 600 clean test points from the same clusters.
        // Centres uniform in a cube of side 4 with unit noise: neighbouring classes overlap a little, and the AUC here
        // (0.9955) sits near the notes' digits anchor (0.996) rather than at a trivial 1.0.
        const double Spread = 4;
        const int classes = 10, features = 16, trainCount = 3000, testCount = 600;
        var random = new Random(2024);
        var centres = Enumerable.Range(0, classes * features).Select(_ => (float)(random.NextDouble() * Spread - (Spread / 2))).ToArray();

        (float[] Features, int[] Labels) Draw(int count)
        {
            var points = new float[count * features];
            var labels = new int[count];
            for (var i = 0; i < count; i++)
            {
                labels[i] = random.Next(classes);
                for (var f = 0; f < features; f++)
                {
                    points[(i * features) + f] = centres[(labels[i] * features) + f] + (float)Gaussian(random);
                }
            }

            return (points, labels);
        }

        var (trainFeatures, trainLabels) = Draw(trainCount);
        var (testFeatures, testLabels) = Draw(testCount);
        var flipped = new bool[trainCount];
        foreach (var i in Enumerable.Range(0, trainCount).OrderBy(_ => random.Next()).Take(trainCount / 10))
        {
            flipped[i] = true;
            trainLabels[i] = (trainLabels[i] + 1 + random.Next(classes - 1)) % classes;
        }

        var result = KnnShapley.Classification(new TrainingSet(trainFeatures, features, trainLabels), new TestSet(testFeatures, features, testLabels), 5);

        var auc = RocAuc(result.Points.Select(p => -p.Value).ToArray(), flipped);
        Assert.True(auc >= 0.98, $"ROC AUC {auc:F4}");
    }

    /// <summary>Probability that a random positive scores above a random negative, ties counting half (Mann-Whitney).</summary>
    internal static double RocAuc(double[] scores, bool[] positive)
    {
        var ranked = scores.Select((s, i) => (Score: s, Positive: positive[i])).OrderBy(p => p.Score).ToArray();
        double rankSum = 0;
        var i = 0;
        while (i < ranked.Length)
        {
            var j = i;
            while (j < ranked.Length && ranked[j].Score == ranked[i].Score)
            {
                j++;
            }

            var averageRank = (i + 1 + j) / 2.0;
            rankSum += ranked[i..j].Count(p => p.Positive) * averageRank;
            i = j;
        }

        double positives = positive.Count(p => p), negatives = positive.Length - positives;
        return (rankSum - (positives * (positives + 1) / 2)) / (positives * negatives);
    }

    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    [Fact]
    public void roc_auc_helper_scores_known_orderings()
    {
        Assert.Equal(1.0, RocAuc([3, 2, 1, 0], [true, true, false, false]));
        Assert.Equal(0.0, RocAuc([0, 1, 2, 3], [true, true, false, false]));
        Assert.Equal(0.5, RocAuc([1, 1, 1, 1], [true, false, true, false]));
    }
}
