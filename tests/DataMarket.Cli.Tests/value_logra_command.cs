using System.Globalization;
using DataMarket.Compute;
using DataMarket.Learning.Models;
using DataMarket.Learning.Serialization;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.LoGra;

namespace DataMarket.Cli.Tests;

public sealed class value_logra_command
{
    private static readonly string Train = Blobs(40, seed: 1);
    private static readonly string Test = Blobs(8, seed: 2);

    internal static string Blobs(int rows, int seed)
    {
        var random = new SeededRandom((ulong)seed);
        var text = new System.Text.StringBuilder("x0,x1,label\n");
        for (var i = 0; i < rows; i++)
        {
            var c = i % 2;
            text.Append(CultureInfo.InvariantCulture, $"{3 * c + random.NextNormal():F3},{2 * c + random.NextNormal():F3},{"ab"[c]}\n");
        }

        return text.ToString();
    }

    [Fact]
    public async Task writes_values_in_input_order_equal_to_the_library_and_the_pairwise_matrix()
    {
        using var folder = new TempFolder();
        var output = folder.File("out.csv");
        var pairwise = folder.File("pairwise.csv");

        var (exitCode, _, error) = await CliRunner.RunAsync("value", "logra", "--train", folder.File("train.csv", Train), "--test", folder.File("test.csv", Test),
            "--rank", "8", "--epochs", "5", "--mode", "cosine", "--out", output, "--pairwise", pairwise);

        Assert.True(exitCode == 0, error);
        Assert.Contains("logging gradients: 40/40", error);
        var lines = File.ReadAllLines(output);
        Assert.Equal("index,value,stderr", lines[0]);
        Assert.Equal(41, lines.Length);
        var expected = LograValuation.ValueTabular(Load(Train), Load(Test), new LograValuationOptions
        {
            Projection = new ProjectionOptions { Rank = 8 },
            Epochs = 5,
            Mode = ScoreMode.Cosine,
        });
        var matrix = File.ReadAllLines(pairwise).Skip(1).Select(l => l.Split(',').Skip(1).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        Assert.Equal(8, matrix.Length);
        for (var i = 0; i < 40; i++)
        {
            var fields = lines[i + 1].Split(',');
            Assert.Equal(i, int.Parse(fields[0], CultureInfo.InvariantCulture));
            Assert.Equal(expected.Values[i].Value, double.Parse(fields[1], CultureInfo.InvariantCulture));
            Assert.Equal(expected.Values[i].StandardError, double.Parse(fields[2], CultureInfo.InvariantCulture));
            Assert.Equal(expected.Values[i].Value, matrix.Average(row => row[i]), 1e-9 * (1 + Math.Abs(expected.Values[i].Value)));
        }
    }

    [Fact]
    public async Task values_text_with_a_byte_level_gpt_and_reuses_a_store_only_for_the_same_model()
    {
        using var folder = new TempFolder();
        var train = folder.File("train.jsonl", string.Join("\n", Enumerable.Range(0, 12).Select(i => $"{{\"text\":\"seller {i} lists {new string('x', i)} data\"}}")));
        var test = folder.File("test.jsonl", "{\"text\":\"seller 3 lists xxx data\"}\n{\"text\":\"b\"}\n");
        var store = Path.Combine(folder.Path, "store");
        string[] common = ["value", "logra", "--train", train, "--test", test, "--model", "gpt", "--epochs", "1", "--store", store];

        var first = await CliRunner.RunAsync([.. common, "--rank", "4", "--out", folder.File("a.csv")]);
        var second = await CliRunner.RunAsync([.. common, "--rank", "4", "--out", folder.File("b.csv")]);
        var other = await CliRunner.RunAsync([.. common, "--rank", "4", "--seed", "2", "--out", folder.File("c.csv")]);
        var otherRank = await CliRunner.RunAsync([.. common, "--rank", "3", "--out", folder.File("d.csv")]);

        Assert.True(first.ExitCode == 0, first.Error);
        Assert.Equal(13, File.ReadAllLines(folder.File("a.csv")).Length);
        Assert.True(second.ExitCode == 0, second.Error);
        Assert.DoesNotContain("logging gradients", second.Error);
        Assert.Equal(File.ReadAllText(folder.File("a.csv")), File.ReadAllText(folder.File("b.csv")));
        Assert.Equal(2, other.ExitCode);
        Assert.Contains("the store was logged from model", other.Error);
        Assert.False(File.Exists(folder.File("c.csv")));
        Assert.Equal(2, otherRank.ExitCode);
        Assert.Contains("is not the one asked for", otherRank.Error);
    }

    public static TheoryData<string[], string> BadArguments() => new()
    {
        { ["--rank", "65"], "Rank 65 is larger than layer 'layers.0' (2 -> 64); use a rank of at most 64" },
        { ["--rank", "0"], "--rank must be at least 1" },
        { ["--model", "gpt"], "--model gpt needs JSON lines with a \"text\" field" },
        { ["--model", "missing.safetensors"], "--model must be mlp, gpt or an existing .safetensors checkpoint" },
    };

    [Fact]
    public async Task zero_epochs_is_refused()
    {
        using var folder = new TempFolder();
        var output = folder.File("out.csv");
        var (exitCode, _, error) = await CliRunner.RunAsync(["value", "logra", "--train", folder.File("train.csv", Train), "--test", folder.File("test.csv", Test),
            "--epochs", "0", "--out", output]);
        Assert.Equal(2, exitCode);
        Assert.Contains("--epochs must be at least 1", error);
        Assert.False(File.Exists(output));
    }

    [Theory]
    [MemberData(nameof(BadArguments))]
    public async Task bad_arguments_exit_with_code_2_and_write_nothing(string[] extra, string message)
    {
        using var folder = new TempFolder();
        var output = folder.File("out.csv");
        var (exitCode, _, error) = await CliRunner.RunAsync(["value", "logra", "--train", folder.File("train.csv", Train), "--test", folder.File("test.csv", Test),
            "--epochs", "1", "--store", Path.Combine(folder.Path, "store"), "--out", output, .. extra]);

        Assert.Equal(2, exitCode);
        Assert.Contains(message, error);
        Assert.False(File.Exists(output));
        Assert.False(Directory.Exists(Path.Combine(folder.Path, "store")));
    }

    [Fact]
    public async Task an_empty_test_task_or_a_checkpoint_of_another_architecture_is_bad_input()
    {
        using var folder = new TempFolder();
        var output = folder.File("out.csv");
        var checkpoint = folder.File("other.safetensors");
        Checkpoint.Save(checkpoint, new MlpModel<float>(new MlpOptions(2, [8], 2)));

        var empty = await CliRunner.RunAsync("value", "logra", "--train", folder.File("train.csv", Train), "--test", folder.File("test.csv", "x0,x1,label\n"), "--out", output);
        var mismatch = await CliRunner.RunAsync("value", "logra", "--train", folder.File("train.csv"), "--test", folder.File("test2.csv", Test), "--model", checkpoint, "--out", output);

        Assert.Equal(2, empty.ExitCode);
        Assert.Contains("test.csv: the file has a header but no data rows", empty.Error);
        Assert.Equal(2, mismatch.ExitCode);
        Assert.Contains("the checkpoint does not fit the proxy model", mismatch.Error);
        Assert.False(File.Exists(output));
    }

    private static TabularDataset Load(string csv) =>
        DatasetReader.Load(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(csv)), new DatasetReadOptions { SourceName = "x.csv" });
}
