using System.CommandLine;
using System.Globalization;
using DataMarket.Ledger;
using DataMarket.ServiceDefaults;
using DataMarket.SettlementService.Application;
using DataMarket.SettlementService.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace DataMarket.Cli.Commands;

/// <summary>
/// <c>datamarket settle</c> runs (or re-runs, changing nothing) one period's royalty settlement on a live market's
/// databases, with the sandbox rails; <c>datamarket payouts</c> lists what a period's run paid.
/// </summary>
public static class SettleCommand
{
    public static Command BuildSettle()
    {
        var command = new Command("settle", "Run (or resume; a finished period changes nothing) one period's royalty settlement: pay every seller with a released balance at least the minimum and a destination, write statements, reconcile.");
        var store = new SettlementStoreOptions(command);
        command.SetAction(async (parse, cancellationToken) => await store.RunAsync(parse, async (runner, period) =>
        {
            var run = await runner.RunAsync(period, "cli", cancellationToken);
            Print(parse, run);
            return run.Status == "completed" && run.Reconciliation!.Clean ? ExitCodes.Success : ExitCodes.Failure;
        }, cancellationToken));
        return command;
    }

    public static Command BuildPayouts()
    {
        var command = new Command("payouts", "List one period's settlement payouts (seller, amount, status, provider transfer) and its reconciliation.");
        var store = new SettlementStoreOptions(command);
        command.SetAction(async (parse, cancellationToken) => await store.RunAsync(parse, async (runner, period) =>
        {
            var run = await runner.GetAsync(period, cancellationToken);
            if (run is null)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"error: period: no settlement run for {period} (run 'datamarket settle --period {period}' first)");
                return ExitCodes.BadInput;
            }

            Print(parse, run);
            return ExitCodes.Success;
        }, cancellationToken));
        return command;
    }

    internal static void Print(ParseResult parse, SettlementRunView run)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(parse.InvocationConfiguration.Output), Ansi = AnsiSupport.No, Interactive = InteractionSupport.No });
        // Wide enough that provider transfer ids stay on one line for scripts that grep them.
        console.Profile.Width = Math.Max(console.Profile.Width, 160);
        Print(console, run);
    }

    public static void Print(IAnsiConsole console, SettlementRunView run)
    {
        var table = new Table().Title($"Settlement {run.Period}: {run.Status}").AddColumns("seller", "currency", "amount (cents)", "status", "provider transfer");
        foreach (var payout in run.Payouts)
        {
            table.AddRow(Markup.Escape(payout.SellerId), payout.Currency, payout.Amount.ToString("N0", CultureInfo.InvariantCulture), payout.Status,
                Markup.Escape(payout.ProviderTransferId ?? payout.Reason ?? ""));
        }

        console.Write(table);
        if (run.WaitingForDestination.Count > 0)
        {
            console.WriteLine($"Waiting for a payout destination: {string.Join(", ", run.WaitingForDestination)}");
        }

        foreach (var reversal in run.Reversals ?? [])
        {
            // Dispute debts the seller's payable balance could not cover, taken back from an earlier transfer.
            console.WriteLine(Markup.Escape($"Reversal {reversal.Status}: {reversal.Amount} {reversal.Currency} cents of {reversal.SellerId}'s {reversal.TransferPeriod} transfer {reversal.TransferId}"
                + (reversal.Reason is { } why ? $" ({why})" : "")));
        }

        if (run.Reconciliation is { } r)
        {
            console.WriteLine(r.Clean
                ? $"Reconciliation clean: {r.LedgerPayouts} ledger payouts ({r.LedgerTotal} cents) = {r.ProviderTransfers} provider transfers ({r.ProviderTotal} cents)"
                : $"Reconciliation MISMATCHED: {string.Join("; ", r.Mismatches)}");
        }
    }

    /// <summary>Where the ledger and the settlement streams live: PostgreSQL schemas, or the embedded SQLite files of a data folder.</summary>
    private sealed class SettlementStoreOptions
    {
        private readonly Option<string> _period = new("--period") { Description = "Month, yyyy-MM (e.g. 2026-11).", Required = true };
        private readonly Option<string?> _postgres = new("--postgres") { Description = "PostgreSQL connection string of the ledger and settlement schemas (default: ConnectionStrings__Ledger, else loopback)." };
        private readonly Option<FileInfo?> _sqlite = new("--sqlite") { Description = "The embedded ledger file (DATA_DIR/ledger.db); the settlement streams are read from settlement.db beside it." };

        public SettlementStoreOptions(Command command)
        {
            command.Options.Add(_period);
            command.Options.Add(_postgres);
            command.Options.Add(_sqlite);
        }

        public async Task<int> RunAsync(ParseResult parse, Func<SettlementRunner, string, Task<int>> action, CancellationToken cancellationToken)
        {
            var error = parse.InvocationConfiguration.Error;
            var period = parse.GetValue(_period)!;
            // Settlement__* from the environment (minimum payout, sandbox behaviour) apply as they do to the service.
            var options = new ConfigurationBuilder().AddEnvironmentVariables().Build().GetSection(SettlementOptions.SectionName).Get<SettlementOptions>() ?? new SettlementOptions();
            LedgerDatabase ledger;
            if (parse.GetValue(_sqlite) is { } file)
            {
                var settlementFile = Path.Combine(file.DirectoryName ?? ".", "settlement.db");
                if (!file.Exists || !File.Exists(settlementFile))
                {
                    await error.WriteLineAsync($"error: --sqlite: no embedded market at {file.FullName} (needs ledger.db and settlement.db in one folder, as 'demo --data-dir' keeps them)");
                    return ExitCodes.BadInput;
                }

                options.Store = SettlementStoreKind.Sqlite;
                options.ConnectionString = $"Data Source={settlementFile}";
                ledger = await LedgerDatabase.OpenSqliteAsync($"Data Source={file.FullName}", cancellationToken: cancellationToken);
            }
            else
            {
                var connection = parse.GetValue(_postgres)
                    ?? (Environment.GetEnvironmentVariable("ConnectionStrings__Ledger") is { Length: > 0 } value ? value : LocalDefaults.PostgresConnectionString);
                options.Store = SettlementStoreKind.Postgres;
                options.ConnectionString = connection;
                ledger = await LedgerDatabase.OpenPostgresAsync(connection, cancellationToken: cancellationToken);
            }

            await using (ledger)
            {
                var services = new ServiceCollection()
                    .AddLogging()
                    .AddSettlementCore(options)
                    .AddSingleton(new LedgerAccess(_ => Task.FromResult(ledger.Ledger)));
                await using var provider = services.BuildServiceProvider();
                try
                {
                    return await action(provider.GetRequiredService<SettlementRunner>(), period);
                }
                catch (SettlementException exception)
                {
                    await error.WriteLineAsync($"error: {exception.Field}: {exception.Message}");
                    return ExitCodes.BadInput;
                }
            }
        }
    }
}
