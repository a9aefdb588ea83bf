using System.Globalization;

namespace DataMarket.Cli.Tests;

/// <summary>The torch benches run end to end at small sizes and print what they promise; speed itself is not asserted.</summary>
public sealed class bench_torch_commands
{
    [Fact]
    public async Task bench_logra_prints_one_row_per_rank_with_the_projected_width()
    {
        var (exitCode, output, error) = await CliRunner.RunAsync("bench", "logra", "--ranks", "4,8", "--store-rows", "64");

        Assert.True(exitCode == 0, error);
        // Data rows start with the rank: rank, dimension, full gradient, three rates, logra/dense, a rate, logra/layer,
        // two rates, "NN %".
        var rows = output.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length == 13 && int.TryParse(f[0], CultureInfo.InvariantCulture, out _)).ToArray();
        // Nine watched Linear layers (2 blocks x qkv, attn proj, fc, proj, plus lm_head), each k x k at rank k.
        Assert.Equal(["4", "8"], rows.Select(r => r[0]));
        Assert.Equal(["144", "576"], rows.Select(r => r[1]));
        Assert.All(rows, r => Assert.True(double.Parse(r[6].TrimEnd('x'), CultureInfo.InvariantCulture) > 0, string.Join(' ', r)));
    }

    [Fact]
    public async Task bench_compute_times_torchsharp_and_python3_torch_on_the_same_models()
    {
        var (exitCode, output, error) = await CliRunner.RunAsync("bench", "compute", "--steps", "2");

        Assert.True(exitCode == 0, error);
        Assert.DoesNotContain("baseline skipped", error, StringComparison.Ordinal);
        foreach (var model in new[] { "mlp", "gpt" })
        {
            Assert.Contains(output.Split('\n'), l => l.StartsWith(model, StringComparison.Ordinal) && l.Contains("torchsharp", StringComparison.Ordinal));
            Assert.Contains(output.Split('\n'), l => l.StartsWith(model, StringComparison.Ordinal) && l.Contains("python3-torch", StringComparison.Ordinal));
            Assert.Contains($"{model}: torchsharp / python3-torch = ", output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task bench_logra_validity_refuses_too_few_subsets()
    {
        using var folder = new TempFolder();
        var (exitCode, _, error) = await CliRunner.RunAsync("bench", "logra-validity", "--data", folder.File("d.csv", "x,label\n1,a\n"), "--subsets", "1");

        Assert.Equal(2, exitCode);
        Assert.Contains("--subsets must be at least 2", error, StringComparison.Ordinal);
    }
}
