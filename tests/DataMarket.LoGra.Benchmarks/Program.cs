using DataMarket.Valuation.LoGra;

// Usage: dotnet run -c Release --project tests/DataMarket.LoGra.Benchmarks [-- rank [store-rows]]
//        dotnet run -c Release --project tests/DataMarket.LoGra.Benchmarks -- counterfactual DIGITS.csv [subsets 50] [rank 16]
if (args is ["counterfactual", var path, ..])
{
    Counterfactual.Run(path, args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 50,
        args.Length > 3 ? int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture) : 16);
    return;
}

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
