using System.Globalization;

namespace DataMarket.Cli.Tests;

public sealed class allocate_command
{
    [Fact]
    public async Task splits_gross_into_the_fee_and_shares_by_value_in_exact_cents()
    {
        using var folder = new TempFolder();
        var values = folder.File("v.csv", "group,value,stderr\nnorthwind,0.3,0.01\n\"acme, inc\",0.1,0.02\nnoisy,-0.05,0.01\n");
        var output = Path.Combine(folder.Path, "a.csv");

        var (exitCode, printed, error) = await CliRunner.RunAsync("allocate", "--values", values, "--gross", "10001", "--fee-rate", "0.15", "--fee-min", "50", "--out", output);

        Assert.True(exitCode == 0, error);
        var lines = File.ReadAllLines(output);
        Assert.Equal("party,amount", lines[0]);
        // fee = ceil(0.15 x 10001) = 1501; net 8500 split 3:1 -> 6375 and 2125; the harmful seller gets nothing.
        Assert.Equal(["northwind,6375", "\"acme, inc\",2125", "noisy,0", "platform_fee,1501"], lines[1..]);
        Assert.Equal(10001, lines[1..].Sum(l => long.Parse(l[(l.LastIndexOf(',') + 1)..], CultureInfo.InvariantCulture)));
        Assert.Contains("northwind", printed);
    }

    [Fact]
    public async Task when_no_value_is_positive_the_split_is_equal_and_says_so()
    {
        using var folder = new TempFolder();
        var values = folder.File("v.csv", "group,value,stderr\nb,-0.1,0\na,0,0\nc,-1,0\n");
        var output = Path.Combine(folder.Path, "a.csv");

        var (exitCode, printed, _) = await CliRunner.RunAsync("allocate", "--values", values, "--gross", "100", "--fee-rate", "0", "--out", output);

        Assert.Equal(0, exitCode);
        Assert.Equal(["b,33", "a,34", "c,33", "platform_fee,0"], File.ReadAllLines(output)[1..]);
        Assert.Contains("split equally", printed);
    }

    [Theory]
    [InlineData("group,value,stderr\na,0.1,0\nb,abc,0\n", "100", "0.1", "row 2")]
    [InlineData("group,value,stderr\na,0.1,0\na,0.2,0\n", "100", "0.1", "more than once")]
    [InlineData("seller,amount\na,1\n", "100", "0.1", "expected a header")]
    [InlineData("group,value,stderr\nplatform_fee,0.1,0\n", "100", "0.1", "platform")]
    [InlineData("group,value,stderr\na,0.1,0\n", "-5", "0.1", "gross")]
    [InlineData("group,value,stderr\na,0.1,0\n", "100", "2", "fee_rate")]
    [InlineData("group,value,stderr\n", "100", "0.1", "nobody to pay")]
    public async Task bad_input_is_a_clear_error_and_writes_nothing(string csv, string gross, string rate, string message)
    {
        using var folder = new TempFolder();
        var values = folder.File("v.csv", csv);
        var output = Path.Combine(folder.Path, "a.csv");

        var (exitCode, _, error) = await CliRunner.RunAsync("allocate", "--values", values, "--gross", gross, "--fee-rate", rate, "--out", output);

        Assert.Equal(2, exitCode);
        Assert.Contains(message, error);
        Assert.False(File.Exists(output));
    }
}
