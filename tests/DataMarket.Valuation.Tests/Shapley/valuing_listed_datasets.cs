using DataMarket.Valuation.Data;
using DataMarket.Valuation.Shapley;

namespace DataMarket.Valuation.Tests.Shapley;

public class valuing_listed_datasets
{
    [Fact]
    public void a_group_column_assigns_groups_per_row_and_the_precedence_order_names_the_results()
    {
        // One file with a seller column, laid out as the golden example: u1 u2 u3 from 'orig', v0..v3 from 'copy'.
        var data = new TabularDataset([1, 3, 5, 2, 4, 6, 7], 1, ["0", "0", "0", "1", "1", "0", "1"], ["orig", "orig", "orig", "copy", "copy", "copy", "copy"]);
        var test = new TabularDataset([0], 1, ["1"]);

        var result = DatasetValuation.AsymmetricKnnShapley([new TrainingPart("market.csv", "ignored", data)], test, 3, ["orig", "copy"]);

        Assert.Equal(["orig", "copy"], result.GroupOrder);
        Assert.Equal(0, result.GroupValues["orig"].Value, 1e-14);
        Assert.Equal(1.0 / 3, result.GroupValues["copy"].Value, 1e-14);
        Assert.Equal(1.0 / 6, result.PartValues[0][3].Value, 1e-14);

        // Listing the copier first instead gives it the symmetric-looking share of being first.
        var reversed = DatasetValuation.AsymmetricKnnShapley([new TrainingPart("market.csv", "ignored", data)], test, 3, ["copy", "orig"]);
        Assert.Equal(["copy", "orig"], reversed.GroupOrder);
        Assert.Equal(1.0 / 3, reversed.GroupValues["copy"].Value + reversed.GroupValues["orig"].Value, 1e-14);
        Assert.Equal(2.0 / 3, reversed.GroupValues["copy"].Value, 1e-14);
    }

    [Fact]
    public void regression_over_several_parts_keeps_part_order_and_groups()
    {
        var a = new TabularDataset([0, 1], 1, ["1", "2"]);
        var b = new TabularDataset([5, 6, 7], 1, ["10", "11", "12"]);
        var test = new TabularDataset([0.2f, 6.1f], 1, ["1.5", "11"]);
        var parts = new[] { new TrainingPart("a", "alice", a), new TrainingPart("b", "bob", b) };

        var result = DatasetValuation.KnnShapleyRegression(parts, test, 2);
        var (train, testSet, _) = DatasetValuation.EncodeRegression(parts, test);
        var direct = KnnShapley.Regression(train, testSet, 2);

        Assert.Equal(2, result.PartValues[0].Length);
        Assert.Equal(3, result.PartValues[1].Length);
        Assert.Equal(direct.Points[2].Value, result.PartValues[1][0].Value);
        Assert.Equal(direct.Groups[1].Value, result.GroupValues["bob"].Value);
        Assert.Equal(result.TotalUtility.Value, result.GroupValues.Values.Sum(v => v.Value), 1e-12);
    }

    [Fact]
    public void seller_values_are_exact_for_few_sellers_and_named()
    {
        var parts = Enumerable.Range(0, 4)
            .Select(s => new TrainingPart($"listing-{s}", $"seller-{s}", new TabularDataset([s, s + 0.5f, s + 0.25f], 1, ["0", "1", "1"])))
            .ToArray();
        var test = new TabularDataset([0.1f, 2.2f, 3.9f], 1, ["1", "0", "1"]);

        var result = DatasetValuation.SellerShapleyClassification(parts, test, 3);

        Assert.True(result.Exact);
        Assert.Equal(["seller-0", "seller-1", "seller-2", "seller-3"], result.GroupNames);
        Assert.Equal(result.TotalUtility.Value, result.Groups.Sum(g => g.Value), 1e-12);
    }
}
