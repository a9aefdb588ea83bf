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
var options = new ComputeBenchmarkOptions();
if (args.Length > 0)
{
    options = options with { GemmSizes = args.Select(int.Parse).ToArray() };
}
var report = ComputeBenchmark.Run(options, Console.Error.WriteLine);
Console.Write(ComputeBenchmark.Format(report));
