using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
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
        bench.Subcommands.Add(BuildLograValidity());
        bench.Subcommands.Add(BenchScaleOut.Build());
        bench.Subcommands.Add(SettlementBenchCommand.Build());
        return bench;
    }

    private static Command BuildLogra()
    {
        var ranks = new Option<string>("--ranks") { Description = "Comma-separated projection ranks per side.", DefaultValueFactory = _ => "8,16,32" };
        var storeRows = new Option<int>("--store-rows") { Description = "Training rows in the scored store.", DefaultValueFactory = _ => 20_000 };
        var command = new Command("logra", "LoGra on TorchSharp (byte GPT): gradient logging vs full per-example gradients with a dense projection of equal size (whole gradient, and per layer), and store scoring as a fraction of the GEMM rate, per rank; rates per CPU-second.") { ranks, storeRows };
        command.SetAction(parse =>
        {
            var list = parse.GetValue(ranks)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(r => int.TryParse(r, NumberStyles.None, CultureInfo.InvariantCulture, out var rank) && rank > 0 ? rank : -1).ToArray();
            if (list.Length == 0 || list.Any(r => r < 1) || parse.GetValue(storeRows) < 1)
            {
                parse.InvocationConfiguration.Error.WriteLine("error: --ranks must list positive integers and --store-rows must be at least 1");
                return ExitCodes.BadInput;
            }

            if (StartTorch(parse.InvocationConfiguration.Error) is { } failed)
            {
                return failed;
            }

            var output = parse.InvocationConfiguration.Output;
            var results = DataMarket.Torch.Benchmarks.LograBenchmark.Run(list, storeRows: parse.GetValue(storeRows), log: parse.InvocationConfiguration.Error.WriteLine);
            output.WriteLine($"byte GPT {DataMarket.Torch.Benchmarks.LograBenchmark.Gpt.Layers} layers, width {DataMarket.Torch.Benchmarks.LograBenchmark.Gpt.Width}, context {DataMarket.Torch.Benchmarks.LograBenchmark.Gpt.ContextLength}; every Linear layer watched; store {parse.GetValue(storeRows):N0} rows x 256 queries");
            output.WriteLine("rates per CPU-second of the measuring thread; dense: the whole per-example gradient (full grad values) times a dense full grad x dimension matrix; layer: each layer's gradient times its own dense matrix");
            output.WriteLine("rank  dimension  full grad  fwd+bwd ex/s  logra ex/s  dense ex/s  logra/dense  layer ex/s  logra/layer  scoring pairs/s  gemm pairs/s  scoring/gemm");
            foreach (var r in results)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Rank,4}  {r.Dimension,9}  {r.FullGradientSize,9}  {r.ForwardBackwardPerSecond,12:F0}  {r.LograPerSecond,10:F0}  {r.DensePerSecond,10:F0}  {r.LoggingSpeedup,10:F1}x  {r.LayerDensePerSecond,10:F0}  {r.LayerDenseSpeedup,10:F1}x  {r.ScoringPairsPerSecond,15:E2}  {r.GemmPairsPerSecond,12:E2}  {r.ScoringToGemm,12:P0}"));
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private static Command BuildLograValidity()
    {
        var data = new Option<FileInfo>("--data") { Description = "Labelled table (CSV or JSONL), e.g. the UCI digits; needs at least 1,200 rows.", Required = true };
        var labelColumn = new Option<string>("--label-column") { Description = "Name of the label column.", DefaultValueFactory = _ => DataMarket.Valuation.Data.DatasetReadOptions.DefaultLabelColumn };
        var subsets = new Option<int>("--subsets") { Description = "Random half-size subsets for the LDS.", DefaultValueFactory = _ => 50 };
        var rank = new Option<int>("--rank") { Description = "Projection rank per side.", DefaultValueFactory = _ => 16 };
        var command = new Command("logra-validity", "Counterfactual validity of LoGra values on TorchSharp: LDS over retrained half-size subsets, and test loss after removing the highest, lowest or a random 10% by value.") { data, labelColumn, subsets, rank };
        command.SetAction(parse =>
        {
            var error = parse.InvocationConfiguration.Error;
            if (parse.GetValue(subsets) < 2 || parse.GetValue(rank) < 1)
            {
                error.WriteLine("error: --subsets must be at least 2 and --rank at least 1");
                return ExitCodes.BadInput;
            }

            if (StartTorch(error) is { } failed)
            {
                return failed;
            }

            try
            {
                var table = ValueKnnShapleyCommand.LoadFile(parse.GetValue(data)!, parse.GetValue(labelColumn)!, expectedFeatures: null);
                var classes = table.Labels.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
                var report = DataMarket.Torch.Benchmarks.ValidityBenchmark.Run(
                    new DataMarket.Torch.Influence.TabularData(table.Features, table.FeatureCount, table.Labels.Select(l => classes[l]).ToArray()),
                    new DataMarket.Torch.Benchmarks.ValidityOptions { Subsets = parse.GetValue(subsets), Rank = parse.GetValue(rank) }, error.WriteLine);
                var output = parse.InvocationConfiguration.Output;
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"full model test loss {report.FullModelLoss:F4}"));
                foreach (var (method, lds) in report.Lds)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"LDS {method,-20} {lds:F3}"));
                }

                foreach (var (removal, loss, standardError) in report.Removals)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"remove {removal,-12} test loss {loss:F5} ± {standardError:F5}"));
                }

                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"elapsed {report.Elapsed.TotalSeconds:F0} s"));
                return ExitCodes.Success;
            }
            catch (Exception exception) when (exception is DataMarket.Valuation.Data.DatasetFormatException or ArgumentException)
            {
                error.WriteLine($"error: {exception.Message}");
                return ExitCodes.BadInput;
            }
        });
        return command;
    }

    private static Command BuildCompute()
    {
        var steps = new Option<int>("--steps") { Description = "Timed training steps (MLP; the GPT takes a third).", DefaultValueFactory = _ => 30 };
        var python = new Option<string>("--python") { Description = "Python with python3-torch for the baseline (Debian: apt install python3-torch); 'none' skips it.", DefaultValueFactory = _ => "/usr/bin/python3" };
        var command = new Command("compute", "Proxy-model training throughput on TorchSharp vs python3-torch on the same MLP and GPT sizes, in one run.") { steps, python };
        command.SetAction(parse =>
        {
            var error = parse.InvocationConfiguration.Error;
            if (parse.GetValue(steps) < 1)
            {
                error.WriteLine("error: --steps must be at least 1");
                return ExitCodes.BadInput;
            }

            if (StartTorch(error) is { } failed)
            {
                return failed;
            }

            var output = parse.InvocationConfiguration.Output;
            var ours = DataMarket.Torch.Benchmarks.TrainingBenchmark.MeasureTorch(parse.GetValue(steps));
            IReadOnlyList<DataMarket.Torch.Benchmarks.TrainingMeasurement> baseline = [];
            if (parse.GetValue(python) is { } interpreter && interpreter != "none")
            {
                var (results, problem) = DataMarket.Torch.Benchmarks.TrainingBenchmark.MeasurePython(interpreter, parse.GetValue(steps));
                if (problem is not null)
                {
                    error.WriteLine($"baseline skipped: {problem}");
                }

                baseline = results ?? [];
            }

            output.WriteLine($"one intra-op thread each; AdamW; median step of {parse.GetValue(steps)} (GPT: a third as many)");
            foreach (var m in ours.Concat(baseline))
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{m.Model,-4} {m.Shape,-42} batch {m.BatchSize,3}  {m.Engine,-20} {m.SecondsPerStep * 1e3,8:F1} ms/step  {m.ExamplesPerSecond,9:F0} examples/s"));
            }

            foreach (var m in ours)
            {
                if (baseline.FirstOrDefault(b => b.Model == m.Model) is { } b)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{m.Model}: torchsharp / python3-torch = {m.ExamplesPerSecond / b.ExamplesPerSecond:F2}x"));
                }
            }

            return ExitCodes.Success;
        });
        return command;
    }

    // Loads libtorch on the configured device (DATAMARKET_TORCH_DEVICE) and says which; null when it loaded.
    private static int? StartTorch(TextWriter error)
    {
        try
        {
            DataMarket.Torch.TorchRuntime.InitializeFromEnvironment();
            error.WriteLine($"torch: {DataMarket.Torch.TorchRuntime.Description}");
            return null;
        }
        catch (DataMarket.Torch.TorchUnavailableException exception)
        {
            error.WriteLine($"error: {exception.Message}");
            return ExitCodes.Failure;
        }
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
