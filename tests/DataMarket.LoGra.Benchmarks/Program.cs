using DataMarket.Valuation.LoGra;

// Usage: dotnet run -c Release --project tests/DataMarket.LoGra.Benchmarks [-- rank [store-rows]]
var options = new LograBenchmarkOptions();
if (args.Length > 0)
{
    options = options with { Rank = int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) };
}

if (args.Length > 1)
{
    options = options with { StoreRows = int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) };
}

var report = LograBenchmark.Run(options, Console.Error.WriteLine);
Console.Write(LograBenchmark.Format(report));
