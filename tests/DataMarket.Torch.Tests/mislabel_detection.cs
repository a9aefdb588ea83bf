using DataMarket.Torch.Influence;

namespace DataMarket.Torch.Tests;

public class mislabel_detection
{
    public mislabel_detection() => TorchRuntime.Initialize("cpu");

    [Fact]
    public void self_influence_finds_flipped_digit_labels_with_auc_at_least_0_95()
    {
        using var folder = new ScratchFolder();
        PyTorchReference.Run("digits.py", folder.File("digits.json"));
        var json = PyTorchReference.ReadJson(folder.File("digits.json"));
        var features = PyTorchReference.Flatten(json.GetProperty("x"));
        var labels = json.GetProperty("y").EnumerateArray().Select(e => e.GetInt32()).ToArray();

        // Flip 10% of the labels to another class, chosen by a fixed seed.
        var random = new Random(13);
        var flipped = new bool[labels.Length];
        foreach (var row in Enumerable.Range(0, labels.Length).OrderBy(_ => random.Next()).Take(labels.Length / 10))
        {
            labels[row] = (labels[row] + 1 + random.Next(9)) % 10;
            flipped[row] = true;
        }

        var train = new TabularData(features, 64, labels);
        var result = TabularInfluence.Value(train, train,
            new TabularInfluenceOptions { Mode = InfluenceMode.Self, Logra = new TorchLograOptions { Rank = 16 } });

        var auc = Auc(result.Values, flipped);
        Assert.True(auc >= 0.95, $"ROC AUC of self-influence against the flipped rows: {auc:F4}");
    }

    // Probability that a flipped row scores above a clean one (ties count half).
    private static double Auc(double[] scores, bool[] positive)
    {
        var order = Enumerable.Range(0, scores.Length).OrderBy(i => scores[i]).ToArray();
        double rankSum = 0;
        var i = 0;
        while (i < order.Length)
        {
            var j = i;
            while (j + 1 < order.Length && scores[order[j + 1]] == scores[order[i]])
            {
                j++;
            }

            var rank = (i + j) / 2.0 + 1;
            for (var k = i; k <= j; k++)
            {
                if (positive[order[k]])
                {
                    rankSum += rank;
                }
            }

            i = j + 1;
        }

        double positives = positive.Count(p => p), negatives = positive.Length - positives;
        return (rankSum - positives * (positives + 1) / 2) / (positives * negatives);
    }
}
