using DataMarket.Valuation.Data;
using DataMarket.Valuation.Shapley;
using DataMarket.ValuationWorker.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace DataMarket.Services.Tests;

public sealed class logra_engine
{
    private sealed class Collect : IProgress<int>
    {
        public List<int> Reports { get; } = [];

        public void Report(int value) => Reports.Add(value);
    }

    private static TabularDataset Data(int rows, int seed)
    {
        var random = new Random(seed);
        var labels = Enumerable.Range(0, rows).Select(i => i % 3 == 0 ? "b" : "a").ToArray();
        var features = labels.SelectMany(l => new[] { (float)(random.NextDouble() + (l == "b" ? 2 : 0)), (float)random.NextDouble() }).ToArray();
        return new TabularDataset(features, 2, labels);
    }

    [Fact]
    public void reports_progress_per_fixed_block_of_test_points_and_sums_seller_values_over_their_rows()
    {
        var engine = new LograEngine(null, NullLogger<LograEngine>.Instance);
        var parts = new[] { new TrainingPart("l1", "s1", Data(30, 1)), new TrainingPart("l2", "s2", Data(20, 2)), new TrainingPart("l3", "s1", Data(10, 3)) };
        var progress = new Collect();

        var result = engine.Value(parts, Data(40, 4), checkpoint: null, progress, CancellationToken.None);

        // Test points are scored 16 at a time; the worker turns these into ValuationProgressed messages.
        Assert.Equal([0, 16, 32, 40], progress.Reports);
        Assert.Equal(["s1", "s2"], result.GroupOrder);
        Assert.Equal([30, 20, 10], result.PartValues.Select(p => p.Length));
        var s1 = result.PartValues[0].Concat(result.PartValues[2]).Sum(v => v.Value);
        Assert.Equal(s1, result.GroupValues["s1"].Value, 9);
        Assert.Equal(result.PartValues.SelectMany(p => p).Sum(v => v.Value), result.TotalUtility.Value, 9);
        Assert.True(result.GroupValues["s2"].StandardError > 0);
    }
}
