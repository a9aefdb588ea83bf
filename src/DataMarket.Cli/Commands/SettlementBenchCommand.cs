using System.CommandLine;
using System.Globalization;
using DataMarket.ServiceDefaults;
using DataMarket.SettlementService.Benchmarks;

namespace DataMarket.Cli.Commands;

/// <summary><c>datamarket bench settlement --sellers N</c>: one royalty settlement run over N sellers on PostgreSQL with the sandbox rails.</summary>
public static class SettlementBenchCommand
{
    public static Command Build()
    {
        var sellers = new Option<int>("--sellers") { Description = "Sellers to seed and pay in one run.", DefaultValueFactory = _ => 100_000 };
        var postgres = new Option<string>("--postgres")
        {
            Description = "PostgreSQL connection string (scratch ledger and settlement schemas are created and dropped).",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ConnectionStrings__Ledger") is { Length: > 0 } value ? value : LocalDefaults.PostgresConnectionString,
        };
        var concurrency = new Option<int>("--payout-concurrency")
        {
            Description = "Provider transfers in flight at once (Settlement:PayoutConcurrency).",
            DefaultValueFactory = _ => new SettlementBenchmarkOptions().PayoutConcurrency,
        };
        var command = new Command("settlement", "One royalty settlement run over many sellers (sandbox rails, local PostgreSQL): sellers/s, load average, and checks that every seller was paid once, the reconciliation is clean, a re-run changes nothing and the ledger verifies.") { sellers, postgres, concurrency };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (parse.GetValue(sellers) < 1)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync("error: --sellers must be at least 1");
                return ExitCodes.BadInput;
            }

            if (parse.GetValue(concurrency) < 1)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync("error: --payout-concurrency must be at least 1");
                return ExitCodes.BadInput;
            }

            var progress = parse.InvocationConfiguration.Error;
            var report = await SettlementBenchmark.RunOnScratchPostgresAsync(parse.GetValue(postgres)!, new SettlementBenchmarkOptions
            {
                Sellers = parse.GetValue(sellers),
                PayoutConcurrency = parse.GetValue(concurrency),
                Progress = line => progress.WriteLine(line),
            }, cancellationToken);
            await parse.InvocationConfiguration.Output.WriteAsync(report.ToText());
            await parse.InvocationConfiguration.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"target: a whole run of 100,000 sellers under 60 s; this run projects to {100_000 / report.SellersPerSecond:F1} s for 100,000"));
            return report.Passed ? ExitCodes.Success : ExitCodes.Failure;
        });
        return command;
    }
}
