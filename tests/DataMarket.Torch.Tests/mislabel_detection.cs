using DataMarket.Torch.Influence;

namespace DataMarket.Torch.Tests;

public class mislabel_detection
{
    public mislabel_detection() => TorchRuntime.Initialize("cpu");

    [Fact]
    public void self_influence_finds_flipped_digit_labels_with_auc_at_least_0_95()
    {
        var digits = counterfactual_validity.Digits();
        var features = digits.Features;
        var labels = digits.Labels;

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

        var auc = Benchmarks.ValidityBenchmark.Auc(result.Values, flipped);
        Assert.True(auc >= 0.95, $"ROC AUC of self-influence against the flipped rows: {auc:F4}");
    }
}
