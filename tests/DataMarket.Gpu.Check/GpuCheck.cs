using System.Diagnostics;
using System.Globalization;
using DataMarket.Valuation.Gpu;
using DataMarket.Valuation.Shapley;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Gpu.Check;

/// <summary>
/// Runs the GPU path against the CPU path in one process: equality checks (values of every exact KNN method within
/// 1e-9, streamed training blocks bit-identical to the resident run, orderings bit for bit, scoring GEMM with the
/// tiled kernel and with cuBLAS within 1e-4 relative), then the KNN-Shapley benchmark (GPU and CPU seconds for the
/// same job, the speed-up) and LoGra's streamed scoring throughput against the GPU's GEMM rate.
/// Exit codes: 0 all checks passed (or skipped for want of a GPU without --require-gpu), 1 a check failed,
/// 2 bad arguments, 4 no GPU and --require-gpu.
/// </summary>
public static class GpuCheck
{
    private const double ValueTolerance = 1e-9;

    public static int Run(string[] args, TextWriter output)
    {
        Options options;
        try
        {
            options = Options.Parse(args);
        }
        catch (ArgumentException exception)
        {
            output.WriteLine($"error: {exception.Message}");
            output.WriteLine(Options.Usage);
            return 2;
        }

        using var device = ValuationDevice.Select(options.Device);
        output.WriteLine($"device: {device.Name} ({device.Reason})");
        output.WriteLine($"host: {Environment.ProcessorCount} cores, {RuntimeInformationText()}");
        var cublas = CuBlasLibrary.Locate();
        output.WriteLine($"cuBLAS: {cublas.Detail}");
        if (device.Kind == DeviceKind.Cpu)
        {
            output.WriteLine("SKIPPED: no GPU device to check (the GPU checks and the benchmark need an NVIDIA GPU, or --emulated for ILGPU's CPU accelerator)");
            return options.RequireGpu ? 4 : 0;
        }

        var failures = 0;
        failures += Check(output, "classification values, tied data", () => CompareClassification(device, n: 2000, tests: 12, features: 3, span: 4, k: 5));
        failures += Check(output, "classification values, N < K", () => CompareClassification(device, n: 3, tests: 4, features: 2, span: 3, k: 7));
        failures += Check(output, "regression values, tied data", () => CompareRegression(device));
        failures += Check(output, "asymmetric values, tied data", () => CompareAsymmetric(device));
        failures += Check(output, "tiered values, tied data", () => CompareTiered(device));
        failures += Check(output, "seller values (exact), tied data", () => CompareSellers(device));
        failures += Check(output, "classification, streamed training blocks and several launches: bits of the resident run", () => CompareStreamed(device));
        failures += Check(output, $"ordering bit for bit, N={options.RankingPoints:N0}, d=13", () => CompareRanking(device, options.RankingPoints, 13));
        failures += Check(output, $"ordering bit for bit, N={options.RankingPoints:N0}, d=32", () => CompareRanking(device, options.RankingPoints, 32));
        failures += Check(output, "scoring GEMM (tiled kernel) within 1e-4 relative", () => CompareGemm(device, useCuBlas: false));
        if (device.Kind == DeviceKind.Gpu && cublas.Found)
        {
            failures += Check(output, "scoring GEMM (cuBLAS) within 1e-4 relative", () => CompareGemm(device, useCuBlas: true));
        }
        if (failures > 0)
        {
            output.WriteLine($"FAILED: {failures} check(s); the benchmark still runs, for its figures");
        }

        if (!options.SkipBenchmark)
        {
            failures += Benchmark(device, options, output);
        }

        output.WriteLine(failures == 0 ? "ALL CHECKS PASSED" : $"FAILED: {failures} check(s)");
        return failures == 0 ? 0 : 1;
    }

    private static string RuntimeInformationText() =>
        $"{System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}";

    private static int Check(TextWriter output, string name, Func<string> check)
    {
        var watch = Stopwatch.StartNew();
        try
        {
            var detail = check();
            output.WriteLine($"PASS {name}: {detail} ({watch.Elapsed.TotalSeconds:F2} s)");
            return 0;
        }
        catch (CheckFailedException exception)
        {
            output.WriteLine($"FAIL {name}: {exception.Message}");
            return 1;
        }
    }

    private static (float[] Features, int[] Labels) TiedPoints(Random random, int count, int features, int span, int classes)
    {
        // Small integers: many exact distance ties, decided by the training index on both paths.
        var points = new float[count * features];
        for (var i = 0; i < points.Length; i++)
        {
            points[i] = random.Next(span);
        }

        return (points, Enumerable.Range(0, count).Select(_ => random.Next(classes)).ToArray());
    }

    private static string CompareClassification(ValuationDevice device, int n, int tests, int features, int span, int k)
    {
        var random = new Random(n + tests);
        var (train, classes) = TiedPoints(random, n, features, span, 3);
        var (test, testClasses) = TiedPoints(random, tests, features, span, 3);
        var trainingSet = new TrainingSet(train, features, classes);
        var testSet = new TestSet(test, features, testClasses);
        return Compare(KnnShapley.Classification(trainingSet, testSet, k), KnnShapley.Classification(trainingSet, testSet, k, device: device));
    }

    private static string CompareRegression(ValuationDevice device)
    {
        var random = new Random(3);
        var (train, _) = TiedPoints(random, 1500, 4, 4, 1);
        var (test, _) = TiedPoints(random, 9, 4, 4, 1);
        var targets = Enumerable.Range(0, 1500).Select(_ => random.NextDouble() * 4 - 2).ToArray();
        var testTargets = Enumerable.Range(0, 9).Select(_ => random.NextDouble() * 4 - 2).ToArray();
        var trainingSet = new RegressionTrainingSet(train, 4, targets);
        var testSet = new RegressionTestSet(test, 4, testTargets);
        return Compare(KnnShapley.Regression(trainingSet, testSet, 5), KnnShapley.Regression(trainingSet, testSet, 5, device: device));
    }

    private static string CompareAsymmetric(ValuationDevice device)
    {
        var random = new Random(11);
        var (train, classes) = TiedPoints(random, 1200, 3, 4, 3);
        var (test, testClasses) = TiedPoints(random, 10, 3, 4, 3);
        var groups = Enumerable.Range(0, 1200).Select(_ => random.Next(5)).ToArray();
        var trainingSet = new TrainingSet(train, 3, classes, groups, 5);
        var testSet = new TestSet(test, 3, testClasses);
        return Compare(KnnShapley.Asymmetric(trainingSet, testSet, 4), KnnShapley.Asymmetric(trainingSet, testSet, 4, device: device));
    }

    private static ValueEstimate[] Flat(ShapleyResult result) => [.. result.Points, .. result.Groups, result.TotalUtility];

    private static string? FirstDifference(ShapleyResult expected, ShapleyResult actual)
    {
        var (a, b) = (Flat(expected), Flat(actual));
        for (var i = 0; i < a.Length; i++)
        {
            if (!a[i].Equals(b[i]))
            {
                return $"entry {i}: {b[i]} against {a[i]}";
            }
        }

        return null;
    }

    private static string CompareTiered(ValuationDevice device)
    {
        var random = new Random(12);
        var (train, classes) = TiedPoints(random, 1000, 3, 4, 3);
        var (test, testClasses) = TiedPoints(random, 11, 3, 4, 3);
        var groups = Enumerable.Range(0, 1000).Select(_ => random.Next(6)).ToArray();
        var trainingSet = new TrainingSet(train, 3, classes, groups, 6);
        var testSet = new TestSet(test, 3, testClasses);
        int[] tiers = [2, 0, 1, 0, 2, 1];
        return Compare(KnnShapley.Tiered(trainingSet, tiers, testSet, 4), KnnShapley.Tiered(trainingSet, tiers, testSet, 4, device: device));
    }

    private static string CompareStreamed(ValuationDevice device)
    {
        var random = new Random(13);
        var (train, classes) = TiedPoints(random, 1_200, 4, 6, 3);
        var (test, testClasses) = TiedPoints(random, 20, 4, 6, 3);
        var groups = Enumerable.Range(0, 1_200).Select(i => (i / 100) % 4).ToArray();
        var trainingSet = new TrainingSet(train, 4, classes, groups, 4);
        var testSet = new TestSet(test, 4, testClasses);
        ShapleyResult Run(int rowsPerPass, int testPointsPerLaunch)
        {
            device.TrainingRowsPerPass = rowsPerPass;
            device.TestPointsPerLaunch = testPointsPerLaunch;
            try
            {
                return KnnShapley.Classification(trainingSet, testSet, 5, device: device);
            }
            finally
            {
                device.TrainingRowsPerPass = 0;
                device.TestPointsPerLaunch = 0;
            }
        }

        var resident = Run(0, 0);
        var streamed = Run(201, 8);
        var difference = FirstDifference(resident, streamed);
        if (difference is not null)
        {
            // Say which of the two changes moves the bits, and whether a plain rerun already does.
            var again = FirstDifference(resident, Run(0, 0)) ?? "same bits";
            var blocksOnly = FirstDifference(resident, Run(201, 0)) ?? "same bits";
            var launchesOnly = FirstDifference(resident, Run(0, 8)) ?? "same bits";
            throw new CheckFailedException($"{difference}; resident again: {again}; training blocks only: {blocksOnly}; launches of 8 only: {launchesOnly}");
        }

        return $"{Flat(resident).Length} values bit-identical over 6 training blocks x 3 launches; {Compare(KnnShapley.Classification(trainingSet, testSet, 5), streamed)} from the CPU path";
    }

    private static string CompareSellers(ValuationDevice device)
    {
        var random = new Random(5);
        var (train, classes) = TiedPoints(random, 800, 2, 6, 2);
        var (test, testClasses) = TiedPoints(random, 8, 2, 6, 2);
        var groups = Enumerable.Range(0, 800).Select(_ => random.Next(7)).ToArray();
        var trainingSet = new TrainingSet(train, 2, classes, groups, 7);
        var testSet = new TestSet(test, 2, testClasses);
        var cpu = SellerShapley.Exact(trainingSet, testSet, 3);
        var gpu = SellerShapley.Exact(trainingSet, testSet, 3, device: device);
        return Compare(cpu.Groups.Append(cpu.TotalUtility).ToArray(), gpu.Groups.Append(gpu.TotalUtility).ToArray());
    }

    private static string CompareRanking(ValuationDevice device, int n, int features)
    {
        // Values over several orders of magnitude make each distance's bits depend on the summation order; every
        // fifth row repeats an earlier one, so exact ties must fall to the lower index.
        var random = new Random(features);
        var data = new float[(long)n * features];
        for (var i = 0; i < n; i++)
        {
            for (var f = 0; f < features; f++)
            {
                data[((long)i * features) + f] = i % 5 == 4 && i > 10
                    ? data[((long)(i - 7) * features) + f]
                    : (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-2, 3)));
            }
        }

        const int tests = 4;
        var testRows = Enumerable.Range(0, tests * features).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        using var ranking = device.CreateRanking(data, features, tests)!;
        var orders = Enumerable.Range(0, tests).Select(_ => new int[n]).ToArray();
        ranking.RankBlock(testRows, orders);
        var expected = new int[n];
        for (var t = 0; t < tests; t++)
        {
            DistanceRanking.Rank(data, features, testRows.AsSpan(t * features, features), new ulong[n], new ulong[n], new int[DistanceRanking.HistogramLength], expected);
            for (var r = 0; r < n; r++)
            {
                if (expected[r] != orders[t][r])
                {
                    throw new CheckFailedException($"test row {t}, rank {r}: training row {orders[t][r]} on the device, {expected[r]} on the CPU");
                }
            }
        }

        return $"{tests} orderings of {n:N0} rows identical";
    }

    private static string CompareGemm(ValuationDevice device, bool useCuBlas)
    {
        const int queries = 67, rows = 301, dimension = 133;
        var random = new Random(9);
        var q = Enumerable.Range(0, queries * dimension).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var r = Enumerable.Range(0, rows * dimension).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        using var scoring = new GpuScoring(device, q, queries, dimension, useCuBlas);
        var scores = new float[queries * rows];
        scoring.ScoreChunk(r, rows, scores);
        var worst = 0.0;
        for (var a = 0; a < queries; a++)
        {
            for (var b = 0; b < rows; b++)
            {
                float expected = 0, scale = 0;
                for (var d = 0; d < dimension; d++)
                {
                    expected += q[(a * dimension) + d] * r[(b * dimension) + d];
                    scale += Math.Abs(q[(a * dimension) + d] * r[(b * dimension) + d]);
                }

                var relative = Math.Abs(scores[(a * rows) + b] - expected) / scale;
                worst = Math.Max(worst, relative);
                if (relative > 1e-4)
                {
                    throw new CheckFailedException($"score ({a}, {b}): {scores[(a * rows) + b]} against {expected}");
                }
            }
        }

        return $"{scoring.Engine}: largest relative difference {worst:E2}";
    }

    private static string Compare(ShapleyResult cpu, ShapleyResult gpu) =>
        Compare([.. cpu.Points, .. cpu.Groups, cpu.TotalUtility], [.. gpu.Points, .. gpu.Groups, gpu.TotalUtility]);

    private static string Compare(ValueEstimate[] cpu, ValueEstimate[] gpu)
    {
        var worst = 0.0;
        for (var i = 0; i < cpu.Length; i++)
        {
            var difference = Math.Max(
                Math.Abs(cpu[i].Value - gpu[i].Value),
                double.IsNaN(cpu[i].StandardError) && double.IsNaN(gpu[i].StandardError) ? 0 : Math.Abs(cpu[i].StandardError - gpu[i].StandardError));
            if (!(difference <= ValueTolerance))
            {
                throw new CheckFailedException($"entry {i}: {gpu[i]} on the device, {cpu[i]} on the CPU");
            }

            worst = Math.Max(worst, difference);
        }

        return $"{cpu.Length} values, largest difference {worst:E2}";
    }

    private static int Benchmark(ValuationDevice device, Options options, TextWriter output)
    {
        var (n, m, d, k) = (options.TrainingPoints, options.TestPoints, options.Features, options.K);
        output.WriteLine($"benchmark: exact KNN-Shapley classification, N={n:N0}, M={m:N0}, d={d}, K={k}");
        device.TrainingRowsPerPass = options.TrainBlock;
        ShapleyBenchmarkResult onDevice;
        try
        {
            onDevice = ShapleyBenchmark.RunClassification(n, m, d, k, device: device);
        }
        finally
        {
            device.TrainingRowsPerPass = 0;
        }

        var blocks = options.TrainBlock == 0 ? "training data resident" : $"training data streamed in blocks of {options.TrainBlock:N0} rows";
        output.WriteLine($"  {device.Name}: {onDevice.WallSeconds:F3} GPU-path seconds (wall; distances, sorts, recursions and moments on the device, {blocks}; kernels compiled beforehand; {onDevice.GenerateSeconds:F1} s to generate data)");
        var onCpu = ShapleyBenchmark.RunClassification(n, m, d, k);
        output.WriteLine($"  cpu path, same job: {onCpu.WallSeconds:F3} CPU-path seconds (wall), {onCpu.CpuSeconds:F3} CPU-s on {onCpu.Threads} cores");
        output.WriteLine($"  speed-up (wall): {onCpu.WallSeconds / onDevice.WallSeconds:F2}x");
        var difference = onDevice.MaxDifferenceFrom(onCpu);
        output.WriteLine($"  largest value difference from the CPU path: {difference:E2}");
        var failures = difference <= ValueTolerance ? 0 : 1;
        if (failures > 0)
        {
            output.WriteLine($"FAIL benchmark values differ from the CPU path by {difference:E2}");
        }

        ScoringThroughput(device, options, output);
        return failures;
    }

    private static void ScoringThroughput(ValuationDevice device, Options options, TextWriter output)
    {
        var (queries, dimension, rows, chunk) = (options.ScoringQueries, options.ScoringDimension, options.ScoringRows, options.ScoringChunk);
        var random = new Random(1);
        var q = new float[(long)queries * dimension];
        for (var i = 0; i < q.Length; i++)
        {
            q[i] = random.NextSingle() - 0.5f;
        }

        var store = new float[(long)chunk * dimension];
        for (var i = 0; i < store.Length; i++)
        {
            store[i] = random.NextSingle() - 0.5f;
        }

        output.WriteLine($"LoGra scoring GEMM (float32): {queries:N0} queries x {dimension:N0} dims against {rows:N0} store rows in chunks of {chunk:N0}");
        var flopsPerChunk = 2.0 * queries * chunk * dimension;
        var chunks = (rows + chunk - 1) / chunk;
        var scores = new float[(long)queries * chunk];
        var best = 0.0;
        var rates = new List<(string Engine, double Resident, double Streamed)>();
        foreach (var useCuBlas in device.Kind == DeviceKind.Gpu ? new[] { true, false } : [false])
        {
            using var scoring = new GpuScoring(device, q, queries, dimension, useCuBlas);
            if (useCuBlas && !scoring.UsesCuBlas)
            {
                output.WriteLine($"  cuBLAS not used: {scoring.Engine}");
                continue;
            }

            const int repetitions = 3;
            var gemmRate = flopsPerChunk * repetitions / scoring.TimeResidentMultiply(store, chunk, repetitions);

            // Streamed scoring as LoGra's scorer does it: every chunk of the store goes to the device and its scores
            // come back (the same chunk stands in for each, so disk reads are not timed).
            var watch = System.Diagnostics.Stopwatch.StartNew();
            for (var c = 0; c < chunks; c++)
            {
                scoring.ScoreChunk(store, chunk, scores);
            }

            var streamedRate = flopsPerChunk * chunks / watch.Elapsed.TotalSeconds;
            best = Math.Max(best, gemmRate);
            rates.Add((scoring.Engine, gemmRate, streamedRate));
            output.WriteLine($"  {scoring.Engine}: resident GEMM {gemmRate / 1e9:F1} GFLOP/s, streamed scoring {streamedRate / 1e9:F1} GFLOP/s ({chunks * (double)chunk / watch.Elapsed.TotalSeconds:F0} store rows/s)");
        }

        foreach (var (engine, _, streamed) in rates)
        {
            output.WriteLine($"  streamed scoring with {engine} as a fraction of the GPU's GEMM rate ({best / 1e9:F1} GFLOP/s, the best resident GEMM above): {streamed / best:F2}");
        }
    }

    private sealed class CheckFailedException(string message) : Exception(message);

    private sealed record Options(
        DeviceKind Device,
        bool RequireGpu,
        bool SkipBenchmark,
        int TrainingPoints,
        int TestPoints,
        int Features,
        int K,
        int RankingPoints,
        int ScoringQueries,
        int ScoringDimension,
        int ScoringRows,
        int ScoringChunk,
        int TrainBlock)
    {
        public const string Usage =
            "usage: datamarket-gpu-check [--emulated] [--require-gpu] [--no-benchmark] [--n 1000000] [--m 1000] [--d 32] [--k 5] " +
            "[--ranking-n 200000] [--scoring-queries 1024] [--scoring-dim 2048] [--scoring-rows 262144] [--scoring-chunk 32768] [--train-block ROWS (stream the benchmark's training data in blocks)]";

        public static Options Parse(string[] args)
        {
            var options = new Options(DeviceKind.Gpu, false, false, 1_000_000, 1_000, 32, 5, 200_000, 1024, 2048, 262_144, 32_768, 0);
            for (var i = 0; i < args.Length; i++)
            {
                int Next() => i + 1 < args.Length && int.TryParse(args[++i], NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value > 0
                    ? value
                    : throw new ArgumentException($"{args[i]} needs a positive integer");
                options = args[i] switch
                {
                    "--emulated" => options with { Device = DeviceKind.GpuEmulated },
                    "--require-gpu" => options with { RequireGpu = true },
                    "--no-benchmark" => options with { SkipBenchmark = true },
                    "--n" => options with { TrainingPoints = Next() },
                    "--m" => options with { TestPoints = Next() },
                    "--d" => options with { Features = Next() },
                    "--k" => options with { K = Next() },
                    "--ranking-n" => options with { RankingPoints = Next() },
                    "--scoring-queries" => options with { ScoringQueries = Next() },
                    "--scoring-dim" => options with { ScoringDimension = Next() },
                    "--scoring-rows" => options with { ScoringRows = Next() },
                    "--scoring-chunk" => options with { ScoringChunk = Next() },
                    "--train-block" => options with { TrainBlock = Next() },
                    _ => throw new ArgumentException($"unknown argument '{args[i]}'"),
                };
            }

            return options;
        }
    }
}
