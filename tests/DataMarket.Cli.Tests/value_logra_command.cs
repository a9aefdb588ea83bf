using System.Globalization;
using DataMarket.Torch.Influence;
using DataMarket.Torch.Models;

namespace DataMarket.Cli.Tests;

public sealed class value_logra_command
{
    private static readonly string Train = Blobs(40, seed: 1);
    private static readonly string Test = Blobs(8, seed: 2);

    internal static string Blobs(int rows, int seed)
    {
        var random = new Random(seed);
        var text = new System.Text.StringBuilder("x0,x1,label\n");
        for (var i = 0; i < rows; i++)
        {
            var c = i % 2;
            text.Append(CultureInfo.InvariantCulture, $"{3 * c + 2 * random.NextDouble() - 1:F3},{2 * c + 2 * random.NextDouble() - 1:F3},{"ab"[c]}\n");
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
        Assert.Contains("logging [####################] 40/40 training rows", error);
        Assert.Contains("scoring [####################] 8/8 test points", error);
        var lines = File.ReadAllLines(output);
        Assert.Equal("index,value,stderr", lines[0]);
        Assert.Equal(41, lines.Length);
        var expected = TabularInfluence.Value(Load(Train), Load(Test), new TabularInfluenceOptions
        {
            Logra = new TorchLograOptions { Rank = 8 },
            Training = new TrainingOptions(Epochs: 5, BatchSize: 32, Seed: 1),
            Mode = InfluenceMode.Cosine,
        });
        var matrix = File.ReadAllLines(pairwise).Skip(1).Select(l => l.Split(',').Skip(1).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        Assert.Equal(8, matrix.Length);
        for (var i = 0; i < 40; i++)
        {
            var fields = lines[i + 1].Split(',');
            Assert.Equal(i, int.Parse(fields[0], CultureInfo.InvariantCulture));
            Assert.Equal(expected.Values[i], double.Parse(fields[1], CultureInfo.InvariantCulture));
            Assert.Equal(expected.StandardErrors[i], double.Parse(fields[2], CultureInfo.InvariantCulture));
            Assert.Equal(expected.Values[i], matrix.Average(row => row[i]), 1e-9 * (1 + Math.Abs(expected.Values[i])));
        }
    }

    [Fact]
    public async Task values_text_with_a_byte_level_gpt_the_same_bits_for_the_same_seed()
    {
        using var folder = new TempFolder();
        var train = folder.File("train.jsonl", string.Join("\n", Enumerable.Range(0, 12).Select(i => $"{{\"text\":\"seller {i} lists {new string('x', i)} data\"}}")));
        var test = folder.File("test.jsonl", "{\"text\":\"seller 3 lists xxx data\"}\n{\"text\":\"b\"}\n");
        string[] common = ["value", "logra", "--train", train, "--test", test, "--model", "gpt", "--epochs", "1", "--rank", "4"];

        var first = await CliRunner.RunAsync([.. common, "--out", folder.File("a.csv")]);
        var second = await CliRunner.RunAsync([.. common, "--out", folder.File("b.csv")]);
        var other = await CliRunner.RunAsync([.. common, "--seed", "2", "--out", folder.File("c.csv")]);

        Assert.True(first.ExitCode == 0, first.Error);
        Assert.Contains("scoring [####################] 2/2 test points", first.Error);
        var values = File.ReadAllLines(folder.File("a.csv"));
        Assert.Equal(13, values.Length);
        Assert.Contains(values.Skip(1), line => double.Parse(line.Split(',')[1], CultureInfo.InvariantCulture) != 0);
        Assert.True(second.ExitCode == 0, second.Error);
        Assert.Equal(File.ReadAllText(folder.File("a.csv")), File.ReadAllText(folder.File("b.csv")));
        Assert.True(other.ExitCode == 0, other.Error);
        Assert.NotEqual(File.ReadAllText(folder.File("a.csv")), File.ReadAllText(folder.File("c.csv")));
    }

    public static TheoryData<string[], string> BadArguments() => new()
    {
        { ["--layers", "attn"], "No Linear layer name contains attn" },
        { ["--rank", "0"], "--rank must be at least 1" },
        { ["--model", "gpt"], "--model gpt needs JSON lines with a \"text\" field" },
        { ["--model", "missing.safetensors"], "--model must be mlp, gpt or an existing checkpoint (.safetensors, .pt, .pth, .bin)" },
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
            "--epochs", "1", "--out", output, .. extra]);

        Assert.Equal(2, exitCode);
        Assert.Contains(message, error);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task an_empty_test_task_or_a_checkpoint_of_another_architecture_is_bad_input()
    {
        using var folder = new TempFolder();
        var output = folder.File("out.csv");
        var checkpoint = folder.File("other.safetensors");
        var gpt = ModelConfig.ForGpt(contextLength: 8, layers: 1, heads: 2, width: 8);
        Checkpoints.Save(new ByteGpt(gpt), gpt, checkpoint);

        var empty = await CliRunner.RunAsync("value", "logra", "--train", folder.File("train.csv", Train), "--test", folder.File("test.csv", "x0,x1,label\n"), "--out", output);
        // Labels as class indices, as a checkpoint needs; the architecture is what does not fit.
        string Indexed(string csv) => csv.Replace(",a\n", ",0\n", StringComparison.Ordinal).Replace(",b\n", ",1\n", StringComparison.Ordinal);
        var mismatch = await CliRunner.RunAsync("value", "logra", "--train", folder.File("train2.csv", Indexed(Train)), "--test", folder.File("test2.csv", Indexed(Test)), "--model", checkpoint, "--out", output);
        var named = await CliRunner.RunAsync("value", "logra", "--train", folder.File("train.csv"), "--test", folder.File("test.csv", Test), "--model", checkpoint, "--out", output);

        Assert.Equal(2, empty.ExitCode);
        Assert.Contains("test.csv: the file has a header but no data rows", empty.Error);
        Assert.Equal(2, mismatch.ExitCode);
        Assert.Contains("a gpt checkpoint cannot value tabular data", mismatch.Error);
        Assert.Equal(2, named.ExitCode);
        Assert.Contains("a checkpoint needs class indices 0, 1, ... as labels, got 'a'", named.Error);
        Assert.False(File.Exists(output));
    }

    // The CLI numbers the classes in sorted order: a = 0, b = 1.
    private static TabularData Load(string csv)
    {
        var rows = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(',')).ToArray();
        return new TabularData(rows.SelectMany(r => r.Take(2).Select(v => float.Parse(v, CultureInfo.InvariantCulture))).ToArray(), 2,
            rows.Select(r => r[2] == "a" ? 0 : 1).ToArray());
    }
}
