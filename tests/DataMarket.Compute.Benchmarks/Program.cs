using DataMarket.Compute;
using DataMarket.Learning.Benchmarks;

// Usage: dotnet run -c Release --project tests/DataMarket.Compute.Benchmarks [-- gemm-size ...]
//        dotnet run -c Release --project tests/DataMarket.Compute.Benchmarks -- training   (training throughput only)
if (args is ["training", ..])
{
    foreach (var backend in ComputeBackends.Available())
    {
        int collections = GC.CollectionCount(2);
        var gpt = ComputeBenchmark.MeasureGpt(backend, 10);
        var mlp = ComputeBenchmark.MeasureMlp(backend, 30);
        Console.WriteLine($"{backend.Name,-9} gpt {gpt.SecondsPerStep * 1e3,7:F1} ms/step  mlp {mlp.SecondsPerStep * 1e3,7:F1} ms/step  gen2 GCs {GC.CollectionCount(2) - collections}");
    }
    return;
}
if (args is ["profile", ..])
{
    foreach (var inner in ComputeBackends.Available())
    {
        var timed = new TimedBackend(inner);
        var gpt = ComputeBenchmark.MeasureGpt(timed, 10);
        Console.WriteLine($"{inner.Name,-9} gpt {gpt.SecondsPerStep * 1e3,7:F1} ms/step (median); per step on average: GEMM {timed.Seconds * 1e3 / 12,7:F1} ms in {timed.Calls / 12} calls, of which small (< 1 MFLOP) {timed.SmallSeconds * 1e3 / 12,6:F1} ms");
    }
    return;
}
if (args is ["shapes", ..])
{
    // GEMM shapes of the GPT benchmark's layers: (transA, transB, m, n, k).
    (Transpose, Transpose, int, int, int)[] shapes =
    [
        (Transpose.None, Transpose.Transposed, 1024, 384, 128), // qkv forward
        (Transpose.Transposed, Transpose.None, 384, 128, 1024), // qkv weight gradient
        (Transpose.None, Transpose.None, 1024, 128, 384),       // qkv input gradient
        (Transpose.None, Transpose.Transposed, 64, 64, 32),     // attention scores
        (Transpose.None, Transpose.None, 64, 32, 64),           // attention output
    ];
    foreach (var (ta, tb, m, n, k) in shapes)
    {
        var a = new float[m * k];
        var b = new float[k * n];
        var c = new float[m * n];
        foreach (var backend in ComputeBackends.Available())
        {
            void Call() => backend.Gemm(ta, tb, m, n, k, 1f, a, ta == Transpose.None ? k : m, b, tb == Transpose.None ? n : k, 0f, c, n);
            Call();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            int calls = 0;
            while (clock.ElapsedMilliseconds < 300)
            {
                Call();
                calls++;
            }
            double seconds = clock.Elapsed.TotalSeconds / calls;
            Console.WriteLine($"{backend.Name,-9} {ta,-10} {tb,-10} {m,5}x{n,4}x{k,5} {2.0 * m * n * k / seconds / 1e9,7:F1} GFLOP/s {seconds * 1e6,9:F1} us");
        }
    }
    return;
}
var options = new ComputeBenchmarkOptions();
if (args.Length > 0)
{
    options = options with { GemmSizes = args.Select(int.Parse).ToArray() };
}
var report = ComputeBenchmark.Run(options, Console.Error.WriteLine);
Console.Write(ComputeBenchmark.Format(report));

/// <summary>Wraps a backend and accumulates the wall time spent in float GEMM.</summary>
internal sealed class TimedBackend(ComputeBackend inner) : ComputeBackend
{
    public double Seconds { get; private set; }

    public long Calls { get; private set; }

    public double SmallSeconds { get; private set; }

    public override string Name => inner.Name;

    public override void Gemm(Transpose transposeA, Transpose transposeB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int leadingDimensionA,
        ReadOnlySpan<float> b, int leadingDimensionB, float beta, Span<float> c, int leadingDimensionC)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        inner.Gemm(transposeA, transposeB, m, n, k, alpha, a, leadingDimensionA, b, leadingDimensionB, beta, c, leadingDimensionC);
        double elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds;
        Seconds += elapsed;
        if (2.0 * m * n * k < 1e6)
        {
            SmallSeconds += elapsed;
        }
        Calls++;
    }

    public override void Gemm(Transpose transposeA, Transpose transposeB, int m, int n, int k, double alpha, ReadOnlySpan<double> a, int leadingDimensionA,
        ReadOnlySpan<double> b, int leadingDimensionB, double beta, Span<double> c, int leadingDimensionC) =>
        inner.Gemm(transposeA, transposeB, m, n, k, alpha, a, leadingDimensionA, b, leadingDimensionB, beta, c, leadingDimensionC);

    public override void CholeskyFactor(Span<double> matrix, int n) => inner.CholeskyFactor(matrix, n);

    public override void CholeskySolve(ReadOnlySpan<double> factor, int n, Span<double> rightHandSides, int rightHandSideCount) =>
        inner.CholeskySolve(factor, n, rightHandSides, rightHandSideCount);

    public override void SymmetricEigen(ReadOnlySpan<double> matrix, int n, Span<double> eigenvalues, Span<double> eigenvectors) =>
        inner.SymmetricEigen(matrix, n, eigenvalues, eigenvectors);
}
