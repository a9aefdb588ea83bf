using System.Diagnostics;
using DataMarket.Valuation.Gpu;

namespace DataMarket.Valuation.Shapley;

/// <summary>
/// What one benchmark run measured. CPU time is the whole process's processor time over the valuation (all worker
/// threads, garbage collection included); generating the synthetic data is timed separately and excluded.
/// </summary>
public sealed record ShapleyBenchmarkResult(
    int TrainingPoints,
    int TestPoints,
    int Features,
    int K,
    int Threads,
    double GenerateSeconds,
    double WallSeconds,
    double CpuSeconds,
    double CpuSecondsPerTestPoint,
    double TotalUtility,
    string Device = "cpu",
    ShapleyResult? Values = null)
{
    /// <summary>The largest absolute difference between this run's point values and <paramref name="other"/>'s.</summary>
    public double MaxDifferenceFrom(ShapleyBenchmarkResult other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (Values is null || other.Values is null || Values.Points.Length != other.Values.Points.Length)
        {
            throw new InvalidOperationException("both runs must carry values of the same length");
        }

        var largest = Math.Abs(Values.TotalUtility.Value - other.Values.TotalUtility.Value);
        for (var i = 0; i < Values.Points.Length; i++)
        {
            largest = Math.Max(largest, Math.Abs(Values.Points[i].Value - other.Values.Points[i].Value));
        }

        return largest;
    }
}

/// <summary>Times exact KNN-Shapley classification on a deterministic synthetic problem (for <c>datamarket bench shapley</c>).</summary>
public static class ShapleyBenchmark
{
    /// <summary>
    /// A deterministic problem: <paramref name="classes"/> Gaussian-ish clusters in <paramref name="features"/>
    /// dimensions (centres uniform in [-1, 1], noise a sum of uniforms), training and test points drawn alike.
    /// The same arguments always give the same data.
    /// </summary>
    public static (TrainingSet Train, TestSet Test) GenerateProblem(int trainingPoints, int testPoints, int features, int classes = 10, int seed = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(trainingPoints);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(testPoints);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(features);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classes);
        var random = new Random(seed);
        var centres = new float[classes * features];
        for (var i = 0; i < centres.Length; i++)
        {
            centres[i] = (random.NextSingle() * 2) - 1;
        }

        (float[] Features, int[] Classes) Draw(int count)
        {
            var points = new float[(long)count * features];
            var labels = new int[count];
            for (var i = 0; i < count; i++)
            {
                var label = random.Next(classes);
                labels[i] = label;
                for (var f = 0; f < features; f++)
                {
                    // Sum of three uniforms: bell-shaped, cheap, and reproducible everywhere.
                    var noise = random.NextSingle() + random.NextSingle() + random.NextSingle() - 1.5f;
                    points[((long)i * features) + f] = centres[(label * features) + f] + (1.5f * noise);
                }
            }

            return (points, labels);
        }

        var train = Draw(trainingPoints);
        var test = Draw(testPoints);
        return (new TrainingSet(train.Features, features, train.Classes), new TestSet(test.Features, features, test.Classes));
    }

    /// <summary>
    /// Generates the problem, then times <see cref="KnnShapley.Classification"/> on it, on <paramref name="device"/>
    /// (the CPU when null). Kernels are compiled before the clock starts, by a one-test-point run.
    /// </summary>
    public static ShapleyBenchmarkResult RunClassification(
        int trainingPoints,
        int testPoints,
        int features,
        int k = 5,
        int seed = 1,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default,
        ValuationDevice? device = null)
    {
        KnnShapley.CheckK(k);
        var generate = Stopwatch.StartNew();
        var (train, test) = GenerateProblem(trainingPoints, testPoints, features, seed: seed);
        generate.Stop();

        if (device is not null && device.Kind != DeviceKind.Cpu)
        {
            KnnShapley.Classification(train, new TestSet(test.Features[..features], features, test.Classes[..1]), k, device: device);
        }

        var process = Process.GetCurrentProcess();
        var cpuBefore = process.TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        var result = KnnShapley.Classification(train, test, k, progress, cancellationToken, device: device);
        wall.Stop();
        process.Refresh();
        var cpu = (process.TotalProcessorTime - cpuBefore).TotalSeconds;

        return new ShapleyBenchmarkResult(
            trainingPoints,
            testPoints,
            features,
            k,
            Environment.ProcessorCount,
            generate.Elapsed.TotalSeconds,
            wall.Elapsed.TotalSeconds,
            cpu,
            cpu / testPoints,
            result.TotalUtility.Value,
            device?.Name ?? ValuationDevice.Cpu.Name,
            result);
    }
}
