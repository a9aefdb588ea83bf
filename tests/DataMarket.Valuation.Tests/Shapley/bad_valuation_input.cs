using System.Text;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Shapley;

namespace DataMarket.Valuation.Tests.Shapley;

public class bad_valuation_input
{
    private static readonly TrainingSet Train = new([0f, 1f, 2f], 1, [0, 1, 0], [0, 1, 1], 2);
    private static readonly TestSet Test = new([0.5f], 1, [1]);

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    public void k_below_one_is_rejected_by_every_method(int k)
    {
        var regressionTrain = new RegressionTrainingSet([0f, 1f], 1, [1.0, 2.0]);
        var regressionTest = new RegressionTestSet([0f], 1, [1.5]);
        var errors = new[]
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => KnnShapley.Classification(Train, Test, k)),
            Assert.Throws<ArgumentOutOfRangeException>(() => KnnShapley.Regression(regressionTrain, regressionTest, k)),
            Assert.Throws<ArgumentOutOfRangeException>(() => KnnShapley.Asymmetric(Train, Test, k)),
            Assert.Throws<ArgumentOutOfRangeException>(() => SellerShapley.Exact(Train, Test, k)),
            Assert.Throws<ArgumentOutOfRangeException>(() => SellerShapley.Sampled(Train, Test, k)),
            Assert.Throws<ArgumentOutOfRangeException>(() => DatasetValuation.KnnShapleyClassification([Part("a", "s", "1")], Dataset("1"), k)),
        };
        Assert.All(errors, e => Assert.Contains($"K (the number of neighbours) must be at least 1, got {k}", e.Message));
    }

    [Fact]
    public void a_group_left_out_of_the_order_is_named()
    {
        var error = Assert.Throws<ValuationInputException>(() => GroupOrder.Resolve(["alice", "bob", "carol"], ["bob", "alice"]));
        Assert.Contains("leaves out 'carol'", error.Message);
    }

    [Fact]
    public void an_order_naming_an_unknown_group_is_named()
    {
        var error = Assert.Throws<ValuationInputException>(() => GroupOrder.Resolve(["alice", "bob"], ["bob", "mallory", "alice"]));
        Assert.Contains("names 'mallory' but no training row belongs to it", error.Message);
    }

    [Fact]
    public void an_order_naming_a_group_twice_is_rejected()
    {
        var error = Assert.Throws<ValuationInputException>(() => GroupOrder.Resolve(["alice", "bob"], ["bob", "alice", "bob"]));
        Assert.Contains("'bob' more than once", error.Message);
    }

    [Fact]
    public void a_valid_order_maps_each_data_group_to_its_precedence()
    {
        Assert.Equal([2, 0, 1], GroupOrder.Resolve(["carol", "alice", "bob"], ["alice", "bob", "carol"]));
    }

    [Fact]
    public void asymmetric_valuation_of_datasets_checks_the_order()
    {
        var parts = new[] { Part("listing-1", "alice", "1"), Part("listing-2", "bob", "0") };
        Assert.Throws<ValuationInputException>(() => DatasetValuation.AsymmetricKnnShapley(parts, Dataset("1"), 1, ["alice"]));
        Assert.Throws<ValuationInputException>(() => DatasetValuation.AsymmetricKnnShapley(parts, Dataset("1"), 1, ["alice", "bob", "eve"]));
    }

    [Fact]
    public void a_regression_label_that_is_not_a_number_names_the_dataset_and_row()
    {
        var parts = new[] { Part("listing-1.csv", "alice", "1.5", "2", "high") };
        var error = Assert.Throws<DatasetFormatException>(() => DatasetValuation.KnnShapleyRegression(parts, Dataset("1"), 1));
        Assert.Equal("listing-1.csv", error.Source);
        Assert.Equal(3, error.Row);
        Assert.Equal("label", error.Column);
        Assert.Contains("regression needs a numeric label, got 'high'", error.Message);

        var testError = Assert.Throws<DatasetFormatException>(() => DatasetValuation.KnnShapleyRegression([Part("ok", "alice", "1")], Dataset("NaN"), 1, testName: "query.csv", labelColumn: "price"));
        Assert.Equal("query.csv", testError.Source);
        Assert.Equal("price", testError.Column);
        Assert.Equal(1, testError.Row);
    }

    [Fact]
    public void regression_labels_read_from_a_file_round_trip()
    {
        var csv = "x,label\n0,1.25\n1,-3e-2\n2,7\n";
        var data = DatasetReader.Load(new MemoryStream(Encoding.UTF8.GetBytes(csv)), new DatasetReadOptions { SourceName = "t.csv" });
        var (train, _, _) = DatasetValuation.EncodeRegression([new TrainingPart("t.csv", "s", data)], data);
        Assert.Equal([1.25, -0.03, 7.0], train.Targets);
    }

    internal static TrainingPart Part(string name, string group, params string[] labels) =>
        new(name, group, Dataset(labels));

    internal static TabularDataset Dataset(params string[] labels) =>
        new(Enumerable.Range(0, labels.Length).Select(i => (float)i).ToArray(), 1, labels);
}
