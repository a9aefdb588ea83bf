using System.Globalization;

namespace DataMarket.Cli.Tests;

public sealed class value_asymmetric_shapley_command
{
    // The golden example: K = 3, test label 1, distance ranks u1 v0 u2 v1 u3 v2 v3, groups {u} before {v}.
    private const string Train = "x,label,seller\n1,0,u\n2,1,v\n3,0,u\n4,1,v\n5,0,u\n6,0,v\n7,1,v\n";
    private const string Test = "x,label\n0,1\n";

    [Fact]
    public async Task reproduces_the_hand_checked_example()
    {
        using var folder = new TempFolder();
        var (exitCode, _, _) = await RunAsync(folder, "asymmetric-shapley", "--group-order", "u,v");

        Assert.Equal(0, exitCode);
        Assert.Equal([0, 1 / 6.0, 0, 1 / 6.0, 0, 0, 0], Values(folder), new Tolerance());
    }

    [Fact]
    public async Task plain_shapley_on_the_same_data_splits_value_symmetrically()
    {
        using var folder = new TempFolder();
        var (exitCode, _, _) = await RunAsync(folder, "knn-shapley");

        Assert.Equal(0, exitCode);
        Assert.Equal([-3 / 28.0, 19 / 84.0, -3 / 28.0, 19 / 84.0, -1 / 42.0, -1 / 42.0, 1 / 7.0], Values(folder), new Tolerance());
    }

    [Theory]
    [InlineData("asymmetric-shapley", "u,v", "u", 0.0)]
    [InlineData("knn-shapley", null, "u", -5 / 21.0)]
    public async Task by_group_writes_group_totals(string command, string? order, string group, double expected)
    {
        using var folder = new TempFolder();
        var extra = order is null ? new[] { "--by-group" } : ["--group-order", order, "--by-group"];
        var (exitCode, _, _) = await RunAsync(folder, command, extra);

        Assert.Equal(0, exitCode);
        var lines = File.ReadAllLines(Path.Combine(folder.Path, "out.csv"));
        Assert.Equal("group,value,stderr", lines[0]);
        var row = lines.Skip(1).Select(l => l.Split(',')).Single(f => f[0] == group);
        Assert.Equal(expected, double.Parse(row[1], CultureInfo.InvariantCulture), 12);
        Assert.Equal(1 / 3.0, lines.Skip(1).Sum(l => double.Parse(l.Split(',')[1], CultureInfo.InvariantCulture)), 12);
    }

    [Theory]
    [InlineData("u,w", "names 'w' but no training row belongs to it")]
    [InlineData("u", "leaves out 'v'")]
    [InlineData("u,v,u", "names 'u' more than once")]
    public async Task a_bad_group_order_is_a_clear_error_with_no_output(string order, string message)
    {
        using var folder = new TempFolder();
        var (exitCode, _, error) = await RunAsync(folder, "asymmetric-shapley", "--group-order", order);

        Assert.Equal(2, exitCode);
        Assert.Contains(message, error);
        Assert.False(File.Exists(Path.Combine(folder.Path, "out.csv")));
    }

    [Fact]
    public async Task regression_labels_that_are_not_numbers_are_a_clear_error_with_no_output()
    {
        using var folder = new TempFolder();
        var train = folder.File("train.csv", "x,label\n1,2.5\n2,high\n");
        var test = folder.File("test.csv", "x,label\n0,1\n");
        var output = Path.Combine(folder.Path, "out.csv");

        var (exitCode, _, error) = await CliRunner.RunAsync("value", "knn-shapley", "--task", "regression", "--train", train, "--test", test, "--out", output);

        Assert.Equal(2, exitCode);
        Assert.Contains("row 2", error);
        Assert.Contains("label", error);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task regression_values_sum_to_the_gain_over_the_empty_set()
    {
        using var folder = new TempFolder();
        var train = folder.File("train.csv", "x,label\n1,2\n2,4\n3,1\n");
        var test = folder.File("test.csv", "x,label\n0,3\n");
        var output = Path.Combine(folder.Path, "out.csv");

        var (exitCode, _, _) = await CliRunner.RunAsync("value", "knn-shapley", "--task", "regression", "--k", "2", "--train", train, "--test", test, "--out", output);

        Assert.Equal(0, exitCode);
        var sum = File.ReadAllLines(output).Skip(1).Sum(l => double.Parse(l.Split(',')[1], CultureInfo.InvariantCulture));
        // U(D) = -((2 + 4) / 2 - 3)^2 = 0 and U(empty) = -9, so the values sum to 9.
        Assert.Equal(9.0, sum, 12);
    }

    private static Task<(int ExitCode, string Output, string Error)> RunAsync(TempFolder folder, string command, params string[] extra) =>
        CliRunner.RunAsync(
        [
            "value", command,
            "--train", folder.File("train.csv", Train), "--test", folder.File("test.csv", Test),
            "--group-column", "seller", "--k", "3", "--out", Path.Combine(folder.Path, "out.csv"),
            .. extra,
        ]);

    private static double[] Values(TempFolder folder) =>
        File.ReadAllLines(Path.Combine(folder.Path, "out.csv")).Skip(1)
            .Select(l => double.Parse(l.Split(',')[1], CultureInfo.InvariantCulture)).ToArray();

    private sealed class Tolerance : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) < 1e-12;

        public int GetHashCode(double obj) => 0;
    }
}

public sealed class value_asymmetric_shapley_auto_order
{
    [Fact]
    public async Task auto_order_puts_a_copier_of_an_earlier_seller_in_a_later_tier_and_leaves_the_others_in_the_first()
    {
        using var folder = new TempFolder();
        // u and w are independent; copy repeats u's rows after u was listed.
        var train = folder.File("train.csv",
            "x,label,seller\n1,0,u\n3,1,u\n5,0,u\n2,1,w\n4,1,w\n6,0,w\n1,0,copy\n3,1,copy\n5,0,copy\n");
        var test = folder.File("test.csv", "x,label\n0,0\n3.2,1\n4.4,1\n");
        var tiered = Path.Combine(folder.Path, "tiered.csv");
        var alone = Path.Combine(folder.Path, "alone.csv");
        var withoutCopy = folder.File("train2.csv", "x,label,seller\n1,0,u\n3,1,u\n5,0,u\n2,1,w\n4,1,w\n6,0,w\n");

        var (exitCode, printed, error) = await CliRunner.RunAsync("value", "asymmetric-shapley", "--group-order", "auto", "--group-column", "seller", "--by-group", "--k", "2",
            "--train", train, "--test", test, "--out", tiered);
        var (aloneExit, _, _) = await CliRunner.RunAsync("value", "asymmetric-shapley", "--group-order", "auto", "--group-column", "seller", "--by-group", "--k", "2",
            "--train", withoutCopy, "--test", test, "--out", alone);

        Assert.True(exitCode == 0, error);
        Assert.Equal(0, aloneExit);
        Assert.Contains("tier 0: u", printed);
        Assert.Contains("tier 0: w", printed);
        Assert.Contains("tier 1: copy", printed);
        var withCopy = Groups(tiered);
        var before = Groups(alone);
        // First-tier sellers keep their values whatever the copy does.
        Assert.Equal(before["u"], withCopy["u"], 12);
        Assert.Equal(before["w"], withCopy["w"], 12);
    }

    [Fact]
    public async Task a_bad_duplicate_fraction_is_a_clear_error_with_no_output()
    {
        using var folder = new TempFolder();
        var train = folder.File("train.csv", "x,label,seller\n1,0,u\n");
        var test = folder.File("test.csv", "x,label\n0,0\n");
        var output = Path.Combine(folder.Path, "out.csv");

        var (exitCode, _, error) = await CliRunner.RunAsync("value", "asymmetric-shapley", "--group-order", "auto", "--duplicate-fraction", "1.5", "--group-column", "seller",
            "--train", train, "--test", test, "--out", output);

        Assert.Equal(2, exitCode);
        Assert.Contains("duplicate fraction", error);
        Assert.False(File.Exists(output));
    }

    private static Dictionary<string, double> Groups(string path) =>
        File.ReadAllLines(path).Skip(1).Select(l => l.Split(',')).ToDictionary(f => f[0], f => double.Parse(f[1], CultureInfo.InvariantCulture));
}
