namespace DataMarket.Cli.Tests;

public sealed class value_on_a_device
{
    private const string Train = "x0,x1,label,seller\n0,0,a,s1\n1,0,a,s1\n0,1,b,s2\n5,5,b,s2\n5,6,a,s1\n6,5,b,s2\n1,0,b,s2\n";
    private const string Test = "x0,x1,label\n0.5,0.2,a\n5.5,5.5,b\n1,1,b\n";

    [Theory]
    [InlineData("knn-shapley")]
    [InlineData("asymmetric-shapley")]
    public async Task gpu_kernels_on_the_cpu_accelerator_write_the_same_values_as_the_cpu(string method)
    {
        using var folder = new TempFolder();
        var train = folder.File("train.csv", Train);
        var test = folder.File("test.csv", Test);
        string[] extra = method == "asymmetric-shapley" ? ["--group-column", "seller", "--group-order", "s2,s1"] : ["--group-column", "seller"];

        var (cpuExit, _, cpuError) = await CliRunner.RunAsync(["value", method, "--train", train, "--test", test, "--k", "2", "--device", "cpu", "--out", folder.File("cpu.csv"), .. extra]);
        var (gpuExit, _, gpuError) = await CliRunner.RunAsync(["value", method, "--train", train, "--test", test, "--k", "2", "--device", "gpu-emulated", "--out", folder.File("gpu.csv"), .. extra]);

        Assert.Equal((0, ""), (cpuExit, cpuError));
        Assert.Equal((0, ""), (gpuExit, gpuError));
        Assert.Equal(File.ReadAllText(folder.File("cpu.csv")), File.ReadAllText(folder.File("gpu.csv")));
    }

    [Fact]
    public async Task a_gpu_that_is_not_there_falls_back_to_the_cpu_with_one_line()
    {
        using var folder = new TempFolder();
        var train = folder.File("train.csv", Train);
        var test = folder.File("test.csv", Test);

        var (exitCode, _, error) = await CliRunner.RunAsync(
            "value", "knn-shapley", "--train", train, "--test", test, "--k", "2", "--group-column", "seller", "--device", "gpu", "--out", folder.File("out.csv"));

        Assert.Equal(0, exitCode);
        Assert.True(File.Exists(folder.File("out.csv")));
        if (error.Length > 0)
        {
            // No NVIDIA GPU here: exactly one warning line saying so.
            var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains("using the CPU", line);
        }
    }

    [Fact]
    public async Task an_unknown_device_is_refused()
    {
        using var folder = new TempFolder();
        var (exitCode, _, error) = await CliRunner.RunAsync(
            "value", "knn-shapley", "--train", folder.File("train.csv", Train), "--test", folder.File("test.csv", Test), "--device", "tpu", "--out", folder.File("out.csv"));

        Assert.NotEqual(0, exitCode);
        Assert.Contains("tpu", error);
        Assert.False(File.Exists(folder.File("out.csv")));
    }
}
