using DataMarket.Compute;
using DataMarket.Compute.Benchmarks;

var sizes = args.Length > 0 ? args.Select(int.Parse).ToArray() : null;
foreach (var m in GemmBenchmark.Run(ComputeBackends.Available(), sizes))
{
    Console.WriteLine($"{m.Backend,-9} {m.M,5}^3  {m.GigaflopsPerSecond,8:F1} GFLOP/s  {m.SecondsPerCall * 1e3,9:F3} ms");
}
