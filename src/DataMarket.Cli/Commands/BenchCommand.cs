using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DataMarket.Learning.Benchmarks;
using DataMarket.Valuation.Shapley;
using Spectre.Console;

namespace DataMarket.Cli.Commands;

/// <summary><c>datamarket bench ...</c>: speed measurements that print ratios against a baseline run in the same process.</summary>
public static class BenchCommand
{
    public static Command Build()
    {
        var bench = new Command("bench", "Measure DataMarket's speed on this machine.");
        bench.Subcommands.Add(BuildShapley());
        bench.Subcommands.Add(BuildCompute());
        bench.Subcommands.Add(LedgerCommand.BuildBench());
        bench.Subcommands.Add(BuildLogra());
        bench.Subcommands.Add(BenchScaleOut.Build());
        return bench;
    }

    private static Command BuildLogra()
    {
        var rank = new Option<int?>("--rank") { Description = "Projection rank per side." };
        var storeRows = new Option<int?>("--store-rows") { Description = "Training rows in the scored store." };
        var command = new Command("logra", "LoGra gradient logging vs full per-example gradients with a dense projection of equal size; store size, peak memory and query throughput against the GEMM rate.") { rank, storeRows };
        command.SetAction(parse =>
        {
            var options = new DataMarket.Valuation.LoGra.LograBenchmarkOptions();
            if (parse.GetValue(rank) is { } r)
            {
                options = options with { Rank = r };
            }

            if (parse.GetValue(storeRows) is { } rows)
            {
                options = options with { StoreRows = rows };
            }

            var output = parse.InvocationConfiguration.Output;
            var report = DataMarket.Valuation.LoGra.LograBenchmark.Run(options, parse.InvocationConfiguration.Error.WriteLine);
            output.Write(DataMarket.Valuation.LoGra.LograBenchmark.Format(report));
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command BuildCompute()
    {
        var quick = new Option<bool>("--quick") { Description = "Shorter measurements (noisier)." };
        var noTraining = new Option<bool>("--no-training") { Description = "GEMM only." };
        var command = new Command("compute", "GEMM GFLOP/s of every available backend, the managed/OpenBLAS ratio, and MLP/GPT training throughput.") { quick, noTraining };
        command.SetAction(parse =>
        {
            var options = new ComputeBenchmarkOptions { IncludeTraining = !parse.GetValue(noTraining) };
            if (parse.GetValue(quick))
            {
                options = options with { SecondsPerGemmMeasurement = 0.15, TrainingSteps = 8 };
            }

            var output = parse.InvocationConfiguration.Output;
            var report = ComputeBenchmark.Run(options, output.WriteLine);
            output.WriteLine(ComputeBenchmark.Format(report));
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command BuildShapley()
    {
        var n = new Option<int>("--n") { Description = "Training points.", DefaultValueFactory = _ => 1_000_000 };
        var m = new Option<int>("--m") { Description = "Test points.", DefaultValueFactory = _ => 1_000 };
        var d = new Option<int>("--d") { Description = "Features.", DefaultValueFactory = _ => 32 };
        var k = new Option<int>("--k") { Description = "Neighbours.", DefaultValueFactory = _ => 5 };
        var baselinePoints = new Option<int>("--baseline-test-points") { Description = "Test points the baselines run on (they are slow).", DefaultValueFactory = _ => 5 };
        var numpy = new Option<bool>("--numpy") { Description = "Also time a vectorised NumPy implementation (needs python3 with NumPy, e.g. Debian's python3-numpy)." };
        var deviceOption = DeviceOption.Create();
        deviceOption.DefaultValueFactory = _ => "cpu";
        deviceOption.Description = "Where the timed valuation runs: cpu (default), gpu, gpu-emulated or auto. On a device other than the CPU the same job also runs on the CPU, timed in the same run, and the values are compared.";
        var command = new Command("shapley", "Exact KNN-Shapley: CPU seconds per test point, against baselines timed in the same run.") { n, m, d, k, baselinePoints, numpy, deviceOption };
        command.SetAction(parse =>
        {
            var console = AnsiConsole.Console;
            var (trainingPoints, testPoints, features, neighbours) = (parse.GetValue(n), parse.GetValue(m), parse.GetValue(d), parse.GetValue(k));
            using var device = DeviceOption.Open(parse, deviceOption);
            console.MarkupLine($"KNN-Shapley classification: N={trainingPoints:N0} training points, M={testPoints:N0} test points, d={features}, K={neighbours}, {Environment.ProcessorCount} cores, device {Markup.Escape(device.Name)}");
            var result = console.Progress().Start(progress =>
            {
                var task = progress.AddTask("valuing", maxValue: testPoints);
                return ShapleyBenchmark.RunClassification(trainingPoints, testPoints, features, neighbours,
                    progress: new Progress<int>(done => task.Value = done), device: device);
            });
            ShapleyBenchmarkResult? cpuRun = null;
            if (device.Kind != DataMarket.Valuation.Gpu.DeviceKind.Cpu)
            {
                cpuRun = ShapleyBenchmark.RunClassification(trainingPoints, testPoints, features, neighbours);
            }

            var baselineCount = Math.Clamp(parse.GetValue(baselinePoints), 1, testPoints);
            var (train, test) = ShapleyBenchmark.GenerateProblem(trainingPoints, baselineCount, features);
            var baselinePerPoint = StraightforwardCpuSecondsPerTestPoint(train, test, neighbours);

            var table = new Table().AddColumns("measure", "value");
            table.AddRow("device", Markup.Escape(device.Name));
            table.AddRow("wall seconds", Format(result.WallSeconds));
            if (cpuRun is not null)
            {
                table.AddRow("CPU path wall seconds, same job", Format(cpuRun.WallSeconds));
                table.AddRow("speed-up of the device over the CPU path (wall)", Format(cpuRun.WallSeconds / result.WallSeconds) + "x");
                table.AddRow("largest value difference from the CPU path", Format(result.MaxDifferenceFrom(cpuRun)));
            }

            table.AddRow("CPU seconds", Format(result.CpuSeconds));
            table.AddRow("CPU seconds per test point", Format(result.CpuSecondsPerTestPoint));
            table.AddRow($"baseline CPU seconds per test point ({baselineCount} points)", Format(baselinePerPoint));
            table.AddRow("speed-up over baseline", Format(baselinePerPoint / result.CpuSecondsPerTestPoint) + "x");
            if (parse.GetValue(numpy))
            {
                var numpyPerPoint = NumPyBaseline.CpuSecondsPerTestPoint(train, test, neighbours, out var why);
                table.AddRow($"NumPy CPU seconds per test point ({baselineCount} points)", numpyPerPoint is { } v ? Format(v) : $"not measured: {Markup.Escape(why!)}");
                if (numpyPerPoint is { } perPoint)
                {
                    table.AddRow("speed-up over NumPy", Format(perPoint / result.CpuSecondsPerTestPoint) + "x");
                }
            }

            table.AddRow("target: under 0.1 CPU-s per test point", result.CpuSecondsPerTestPoint < 0.1 ? "met" : "not met");
            console.Write(table);
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>
    /// The straightforward way, as a baseline: double-precision distances, a comparison sort of (distance, index)
    /// pairs, then the recursion, one thread.
    /// </summary>
    private static double StraightforwardCpuSecondsPerTestPoint(TrainingSet train, TestSet test, int k)
    {
        var n = train.Count;
        var pairs = new (double Distance, int Index)[n];
        var values = new double[n];
        // Single-threaded, so the process's CPU time over the loop is the baseline's own.
        var process = Process.GetCurrentProcess();
        var cpuBefore = process.TotalProcessorTime;
        for (var j = 0; j < test.Count; j++)
        {
            var t = test.Row(j);
            for (var i = 0; i < n; i++)
            {
                var row = train.Row(i);
                double sum = 0;
                for (var f = 0; f < row.Length; f++)
                {
                    var diff = (double)row[f] - t[f];
                    sum += diff * diff;
                }

                pairs[i] = (sum, i);
            }

            Array.Sort(pairs);
            var next = train.Classes[pairs[n - 1].Index] == test.Classes[j] ? 1.0 : 0.0;
            var current = next * Math.Min(k, n) / ((double)n * k);
            values[pairs[n - 1].Index] += current;
            for (var rank = n - 1; rank >= 1; rank--)
            {
                var match = train.Classes[pairs[rank - 1].Index] == test.Classes[j] ? 1.0 : 0.0;
                current += (match - next) / k * Math.Min(k, rank) / rank;
                values[pairs[rank - 1].Index] += current;
                next = match;
            }
        }

        process.Refresh();
        return (process.TotalProcessorTime - cpuBefore).TotalSeconds / test.Count;
    }

    private static string Format(double value) => value.ToString("G4", CultureInfo.InvariantCulture);
}
