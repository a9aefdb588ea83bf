using System.Diagnostics;

namespace DataMarket.Compute.Benchmarks;

/// <summary>One GEMM throughput measurement: C = A B with square-ish float32 operands.</summary>
public sealed record GemmMeasurement(string Backend, int M, int N, int K, double GigaflopsPerSecond, double SecondsPerCall);

/// <summary>GEMM throughput of every available backend, measured in-process for a fair ratio.</summary>
public static class GemmBenchmark
{
    /// <summary>Sizes cover small, non-multiples of every vector width (257, 511) and the 1024³ target.</summary>
    public static IReadOnlyList<int> DefaultSizes { get; } = [64, 257, 511, 1024];

    public static IReadOnlyList<GemmMeasurement> Run(IEnumerable<ComputeBackend> backends, IEnumerable<int>? sizes = null, double secondsPerMeasurement = 0.5)
    {
        var results = new List<GemmMeasurement>();
        var backendList = backends.ToList();
        foreach (int size in sizes ?? DefaultSizes)
        {
            var random = new SeededRandom((ulong)size);
            var a = new float[size * size];
            var b = new float[size * size];
            var c = new float[size * size];
            random.FillUniform<float>(a, -1f, 1f);
            random.FillUniform<float>(b, -1f, 1f);
            foreach (var backend in backendList)
            {
                results.Add(Measure(backend, size, a, b, c, secondsPerMeasurement));
            }
        }
        return results;
    }

    public static GemmMeasurement Measure(ComputeBackend backend, int size, float[] a, float[] b, float[] c, double seconds)
    {
        void Call() => backend.Gemm(Transpose.None, Transpose.None, size, size, size, 1f, a, size, b, size, 0f, c, size);
        Call(); // warm up: JIT, packing buffers, OpenBLAS thread pool
        Call();
        int iterations = 0;
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        // Best-of timing: the machine is shared, and the minimum is the least noisy estimate of capability.
        while (total.Elapsed.TotalSeconds < seconds || iterations < 3)
        {
            long start = Stopwatch.GetTimestamp();
            Call();
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
            iterations++;
        }
        double flops = 2.0 * size * size * size;
        return new GemmMeasurement(backend.Name, size, size, size, flops / best / 1e9, best);
    }
}
