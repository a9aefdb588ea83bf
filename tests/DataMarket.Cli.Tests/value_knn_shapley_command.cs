using System.Globalization;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Shapley;

namespace DataMarket.Cli.Tests;

public sealed class value_knn_shapley_command
{
    private const string Train = "x0,x1,label\n0,0,a\n1,0,a\n0,1,b\n5,5,b\n5,6,a\n6,5,b\n2,2,a\n";
    private const string Test = "x0,x1,label\n0.5,0.2,a\n5.5,5.5,b\n1,1,b\n";

    [Fact]
    public async Task writes_one_row_per_training_row_in_input_order_with_round_trip_precision()
    {
        using var folder = new TempFolder();
        var output = folder.File("out.csv");

        var (exitCode, _, error) = await CliRunner.RunAsync(
            "value", "knn-shapley", "--train", folder.File("train.csv", Train), "--test", folder.File("test.csv", Test), "--k", "2", "--out", output);

        Assert.Equal(0, exitCode);
        Assert.Equal(string.Empty, error);
        var lines = File.ReadAllLines(output);
        Assert.Equal("index,value,stderr", lines[0]);
        Assert.Equal(8, lines.Length);

        var train = Load(Train);
        var test = Load(Test);
        var expected = DatasetValuation.KnnShapleyClassification([new TrainingPart("t", "g", train)], test, 2).PartValues[0];
        for (var i = 0; i < 7; i++)
        {
            var fields = lines[i + 1].Split(',');
            Assert.Equal(i, int.Parse(fields[0], CultureInfo.InvariantCulture));
            // Exact equality: the printed text must round-trip to the same double.
            Assert.Equal(expected[i].Value, double.Parse(fields[1], CultureInfo.InvariantCulture));
            Assert.Equal(expected[i].StandardError, double.Parse(fields[2], CultureInfo.InvariantCulture));
        }

        var total = lines.Skip(1).Sum(l => double.Parse(l.Split(',')[1], CultureInfo.InvariantCulture));
        var utility = DatasetValuation.KnnShapleyClassification([new TrainingPart("t", "g", train)], test, 2).TotalUtility.Value;
        Assert.Equal(utility, total, 12);
    }

    [Fact]
    public async Task reads_json_lines_and_a_custom_label_column()
    {
        using var folder = new TempFolder();
        var train = folder.File("train.jsonl", "{\"features\":[0,0],\"y\":1}\n{\"features\":[1,1],\"y\":0}\n{\"features\":[3,3],\"y\":1}\n");
        var test = folder.File("test.jsonl", "{\"features\":[0.1,0],\"y\":1}\n");
        var output = folder.File("out.csv");

        var (exitCode, _, _) = await CliRunner.RunAsync("value", "knn-shapley", "--train", train, "--test", test, "--k", "1", "--label-column", "y", "--out", output);

        Assert.Equal(0, exitCode);
        // K=1, nearest point matches: it gets 1/2 + 1/3-ish shares; simplest check is efficiency: U(D) = 1.
        var values = File.ReadAllLines(output).Skip(1).Select(l => double.Parse(l.Split(',')[1], CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(3, values.Length);
        Assert.Equal(1.0, values.Sum(), 12);
        Assert.True(values[0] > values[1]);
    }

    public static TheoryData<string, string, string> BadInputs() => new()
    {
        { "x0,x1,label\n0,0,a\n1,zz,a\n", Test, "row 2, column 'x1': 'zz' is not a number" },
        { "x0,x1,label\n0,0,a\n1,1\n", Test, "row 2: the row has 2 fields but the header has 3" },
        { "x0,x1,x2,label\n0,0,0,a\n", Test, "test.csv: the test file has 2 feature columns but the training file" },
        { "x0,x1,x2,label\n0,0,0,a\n", Test, "only in the training file: x2" },
        { "x0,x1,class\n0,0,a\n", Test, "column 'label': the header has no label column 'label'" },
        { Train, "", "the file is empty" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task bad_input_names_file_row_and_column_exits_non_zero_and_writes_nothing(string train, string test, string message)
    {
        using var folder = new TempFolder();
        var output = folder.File("out.csv");

        var (exitCode, _, error) = await CliRunner.RunAsync(
            "value", "knn-shapley", "--train", folder.File("train.csv", train), "--test", folder.File("test.csv", test), "--out", output);

        Assert.Equal(2, exitCode);
        Assert.Contains(message, error);
        Assert.Contains(".csv", error);
        Assert.False(File.Exists(output));
        Assert.Equal(2, Directory.GetFiles(folder.Path).Length);
    }

    [Fact]
    public async Task k_below_one_is_refused()
    {
        using var folder = new TempFolder();
        var output = folder.File("out.csv");
        var (exitCode, _, error) = await CliRunner.RunAsync(
            "value", "knn-shapley", "--train", folder.File("train.csv", Train), "--test", folder.File("test.csv", Test), "--k", "0", "--out", output);
        Assert.Equal(2, exitCode);
        Assert.Contains("--k must be at least 1", error);
        Assert.False(File.Exists(output));
    }

    [Theory]
    [InlineData("--k", "abc")]
    [InlineData("--k", "99999999999")]
    [InlineData("--no-such-flag", "1")]
    public async Task option_values_the_parser_rejects_exit_2(string option, string value)
    {
        using var folder = new TempFolder();
        var (exitCode, _, error) = await CliRunner.RunAsync(
            "value", "knn-shapley", "--train", folder.File("train.csv", Train), "--test", folder.File("test.csv", Test), option, value, "--out", folder.File("out.csv"));
        Assert.Equal(2, exitCode);
        Assert.Contains("error:", error);
        Assert.Contains("--help", error);
    }

    [Fact]
    public async Task an_unknown_command_exits_2()
    {
        var (exitCode, _, error) = await CliRunner.RunAsync("no-such-command");
        Assert.Equal(2, exitCode);
        Assert.Contains("no-such-command", error);
    }

    [Fact]
    public async Task an_output_in_a_missing_or_unwritable_folder_is_bad_input_not_a_crash()
    {
        using var folder = new TempFolder();
        var train = folder.File("train.csv", Train);
        var test = folder.File("test.csv", Test);

        var missing = Path.Combine(folder.Path, "no-such-folder", "out.csv");
        var (exitCode, _, error) = await CliRunner.RunAsync("value", "knn-shapley", "--train", train, "--test", test, "--out", missing);
        Assert.Equal(2, exitCode);
        Assert.Contains("does not exist", error);
        Assert.False(Directory.Exists(Path.GetDirectoryName(missing)));

        // A folder where the output file should be: the move into place fails whoever runs the test (root included).
        var occupied = Path.Combine(folder.Path, "occupied");
        Directory.CreateDirectory(occupied);
        (exitCode, _, error) = await CliRunner.RunAsync("value", "knn-shapley", "--train", train, "--test", test, "--out", occupied);
        Assert.Equal(2, exitCode);
        Assert.Contains("cannot write the output", error);
        Assert.DoesNotContain("   at ", error);
    }

    [Fact]
    public async Task an_empty_name_in_the_group_order_is_refused()
    {
        using var folder = new TempFolder();
        var train = folder.File("train.csv", "x0,x1,seller,label\n0,0,a,a\n1,1,b,b\n");
        var (exitCode, _, error) = await CliRunner.RunAsync(
            "value", "asymmetric-knn-shapley", "--train", train, "--test", folder.File("test.csv", Test), "--group-column", "seller",
            "--group-order", "a,,b", "--out", folder.File("out.csv"));
        Assert.Equal(2, exitCode);
        Assert.Contains("empty group name at position 2", error);
    }

    [Fact]
    public async Task group_names_that_look_like_spreadsheet_formulas_are_neutralised_in_the_output()
    {
        using var folder = new TempFolder();
        var train = folder.File("train.csv", "x0,x1,seller,label\n0,0,=HYPERLINK(1),a\n1,1,@SUM(A1),b\n0.5,0.5,+cmd,a\n");
        var output = folder.File("out.csv");
        var (exitCode, _, error) = await CliRunner.RunAsync(
            "value", "knn-shapley", "--train", train, "--test", folder.File("test.csv", Test), "--group-column", "seller", "--by-group", "--k", "1", "--out", output);
        Assert.True(exitCode == 0, error);
        var groups = File.ReadAllLines(output).Skip(1).Select(l => l.Split(',')[0]).ToList();
        Assert.Equal(3, groups.Count);
        Assert.All(groups, g => Assert.StartsWith("'", g));
    }

    private static TabularDataset Load(string csv) =>
        DatasetReader.Load(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(csv)), new DatasetReadOptions { SourceName = "x.csv" });
}
