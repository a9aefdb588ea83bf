using System.Globalization;

namespace DataMarket.Cli.Tests;

/// <summary><c>value logra --device</c>: the scoring GEMM on the GPU path (here ILGPU's CPU accelerator) against the CPU path.</summary>
public sealed class value_logra_device
{
    private static double[] Values(string path) =>
        File.ReadAllLines(path).Skip(1).Select(line => double.Parse(line.Split(',')[1], CultureInfo.InvariantCulture)).ToArray();

    [Fact]
    public async Task gpu_emulated_scoring_gives_the_cpu_values_within_1e_4_relative_and_says_where_it_ran()
    {
        using var folder = new TempFolder();
        var train = folder.File("train.csv", value_logra_command.Blobs(30, seed: 1));
        var test = folder.File("test.csv", value_logra_command.Blobs(6, seed: 2));
        string[] common = ["value", "logra", "--train", train, "--test", test, "--rank", "4", "--epochs", "3"];

        var cpu = await CliRunner.RunAsync([.. common, "--out", folder.File("cpu.csv")]);
        var gpu = await CliRunner.RunAsync([.. common, "--device", "gpu-emulated", "--out", folder.File("gpu.csv")]);

        Assert.True(cpu.ExitCode == 0, cpu.Error);
        Assert.True(gpu.ExitCode == 0, gpu.Error);
        Assert.Contains("scoring device: gpu-emulated", gpu.Error);
        Assert.DoesNotContain("scoring device", cpu.Error);
        var expected = Values(folder.File("cpu.csv"));
        var actual = Values(folder.File("gpu.csv"));
        var scale = expected.Max(Math.Abs);
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-4 * scale, $"row {i}: {actual[i]:R} on the GPU path, {expected[i]:R} on the CPU");
        }
    }
}
