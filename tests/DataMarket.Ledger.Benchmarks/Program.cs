using DataMarket.Ledger;
using DataMarket.Ledger.Benchmarks;

// Usage: dotnet run -c Release --project tests/DataMarket.Ledger.Benchmarks [postgres|sqlite] [seconds] [transfers]
// "transfers" skips the append scenarios and runs transfers with 1 and 16 writers and 16 x 8 in flight (for A/B runs);
// "16x1" runs only 16 writers x 1 in flight, "16x8" that and then 16 x 8, "burst" only the bursts (for profiling).
// PostgreSQL: DATAMARKET_TEST_POSTGRES or the loopback default; runs in a scratch schema, dropped afterwards.
var provider = args.Length > 0 ? args[0] : "postgres";
var seconds = args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3;
var options = new LedgerBenchmarkOptions { Duration = TimeSpan.FromSeconds(seconds) };
if (args.Length > 2 && args[2] == "transfers")
{
    options = options with { AppendWriters = [], TransferWriters = [1, 16] };
}
else if (args.Length > 2 && args[2] == "16x1")
{
    options = options with { AppendWriters = [], TransferWriters = [16], PipelinedInFlightPerWriter = 0, Burst = 0 };
}
else if (args.Length > 2 && args[2] == "burst")
{
    options = options with { AppendWriters = [], TransferWriters = [] };
}
else if (args.Length > 2 && args[2] == "16x8")
{
    options = options with { AppendWriters = [], TransferWriters = [16], Burst = 0 };
}

if (provider == "sqlite")
{
    var path = Path.Combine(Path.GetTempPath(), $"datamarket-bench-{Guid.NewGuid():N}.db");
    await using (var database = await LedgerDatabase.OpenSqliteAsync($"Data Source={path}"))
    {
        Console.Write((await LedgerBenchmark.RunAsync(database, options with { AppendWriters = [1, 4], TransferWriters = [1, 4] })).ToText());
    }

    foreach (var suffix in new[] { "", "-wal", "-shm" })
    {
        File.Delete(path + suffix);
    }

    return;
}

var connectionString = Environment.GetEnvironmentVariable("DATAMARKET_TEST_POSTGRES") is { Length: > 0 } value
    ? value
    : "Host=127.0.0.1;Port=5432;Username=datamarket;Password=datamarket;Database=datamarket";
var (benchmark, verification) = await LedgerBenchmark.RunOnScratchPostgresAsync(connectionString, options);
Console.Write(benchmark.ToText());
Console.Write(verification.ToText());
