using System.CommandLine;
using System.Globalization;
using DataMarket.Ledger;
using DataMarket.ServiceDefaults;
using Spectre.Console;

namespace DataMarket.Cli.Commands;

/// <summary><c>datamarket ledger ...</c>: check and read the double-entry ledger of a live database.</summary>
public static class LedgerCommand
{
    public static Command Build()
    {
        var ledger = new Command("ledger", "Check and read the market's double-entry ledger.");

        var verify = new Command("verify", "Check every ledger invariant (balanced per currency, no forbidden negative balance, stream versions, replay equals projections) and print a summary.");
        var verifyStore = new StoreOptions(verify);
        verify.SetAction(async (parse, cancellationToken) =>
        {
            await using var database = await verifyStore.OpenAsync(parse, cancellationToken);
            var report = await database.VerifyAsync(cancellationToken);
            parse.InvocationConfiguration.Output.Write(report.ToText());
            return report.Passed ? ExitCodes.Success : ExitCodes.Failure;
        });

        var balances = new Command("balances", "Account balances in minor units (cents).");
        var balancesStore = new StoreOptions(balances);
        var account = new Option<string?>("--account") { Description = "Only accounts whose id starts with this, e.g. seller_payable: or seller_payable:seller-7:USD." };
        balances.Options.Add(account);
        balances.SetAction(async (parse, cancellationToken) =>
        {
            await using var database = await balancesStore.OpenAsync(parse, cancellationToken);
            var rows = await database.Ledger.GetBalancesAsync(parse.GetValue(account), cancellationToken);
            var table = new Table().AddColumns("account", "posted balance", "available", "debits pending", "credits pending");
            foreach (var row in rows)
            {
                table.AddRow(Markup.Escape(row.AccountId), Cents(row.PostedBalance), Cents(row.AvailableBalance), Cents(row.DebitsPending), Cents(row.CreditsPending));
            }

            Console(parse).Write(table);
            return ExitCodes.Success;
        });

        var statement = new Command("statement", "What a seller earned, has held and was paid in a period, per currency, in minor units.");
        var statementStore = new StoreOptions(statement);
        var seller = new Option<string>("--seller") { Description = "Seller id.", Required = true };
        var period = new Option<string>("--period") { Description = "Month, yyyy-MM (e.g. 2026-11).", Required = true };
        statement.Options.Add(seller);
        statement.Options.Add(period);
        statement.SetAction(async (parse, cancellationToken) =>
        {
            await using var database = await statementStore.OpenAsync(parse, cancellationToken);
            try
            {
                var result = await database.Ledger.GetSellerStatementAsync(parse.GetValue(seller)!, parse.GetValue(period)!, cancellationToken);
                var table = new Table().Title($"Seller {Markup.Escape(result.SellerId)}, {Markup.Escape(result.Period)}").AddColumns("currency", "earned", "held", "paid");
                foreach (var line in result.Lines)
                {
                    table.AddRow(line.Currency, Cents(line.Earned), Cents(line.Held), Cents(line.Paid));
                }

                Console(parse).Write(table);
                return ExitCodes.Success;
            }
            catch (ArgumentException exception)
            {
                parse.InvocationConfiguration.Error.WriteLine($"error: {exception.Message}");
                return ExitCodes.BadInput;
            }
        });

        ledger.Subcommands.Add(verify);
        ledger.Subcommands.Add(balances);
        ledger.Subcommands.Add(statement);
        return ledger;
    }

    /// <summary><c>datamarket bench ledger</c>: appends and transfers per second on local PostgreSQL, in a scratch schema.</summary>
    public static Command BuildBench()
    {
        var postgres = new Option<string>("--postgres") { Description = "PostgreSQL connection string (a scratch schema is created and dropped).", DefaultValueFactory = _ => PostgresFromEnvironment() };
        var seconds = new Option<double>("--seconds") { Description = "Measured seconds per scenario.", DefaultValueFactory = _ => 3 };
        var command = new Command("ledger", "Sustained appends/s (1- and 10-event transactions) and transfers/s with 1, 4 and 16 writers (one transfer in flight each) and 16 writers x 8 in flight, then a settlement-shaped burst (1,000 pending payouts queued at once into one shared account, and their posts), on the Marten store on PostgreSQL.") { postgres, seconds };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var progress = parse.InvocationConfiguration.Error;
            var options = new DataMarket.Ledger.Benchmarks.LedgerBenchmarkOptions
            {
                Duration = TimeSpan.FromSeconds(parse.GetValue(seconds)),
                Progress = r => progress.WriteLine(string.Create(CultureInfo.InvariantCulture, $"measured {r.Scenario}, {r.Writers} writers: {r.OperationsPerSecond:N0} ops/s")),
            };
            var (benchmark, verification) = await DataMarket.Ledger.Benchmarks.LedgerBenchmark.RunOnScratchPostgresAsync(parse.GetValue(postgres)!, options, cancellationToken);
            output.Write(benchmark.ToText());
            output.Write(verification.ToText());
            return verification.Passed ? ExitCodes.Success : ExitCodes.Failure;
        });
        return command;
    }

    internal static string Cents(long minorUnits) => minorUnits.ToString("N0", CultureInfo.InvariantCulture);

    private static string PostgresFromEnvironment() =>
        Environment.GetEnvironmentVariable("ConnectionStrings__Ledger") is { Length: > 0 } value ? value : LocalDefaults.PostgresConnectionString;

    private static IAnsiConsole Console(ParseResult parse)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(parse.InvocationConfiguration.Output) });
        // Account ids are long; wrapping them inside a cell would make them impossible to copy or grep.
        console.Profile.Width = Math.Max(console.Profile.Width, 160);
        return console;
    }

    /// <summary>Where the ledger lives: PostgreSQL (default, from ConnectionStrings__Ledger or loopback) or an embedded SQLite file.</summary>
    private sealed class StoreOptions
    {
        private readonly Option<string?> _postgres = new("--postgres") { Description = "PostgreSQL connection string (default: ConnectionStrings__Ledger, else loopback)." };
        private readonly Option<string> _schema = new("--schema") { Description = "PostgreSQL schema of the ledger.", DefaultValueFactory = _ => "ledger" };
        private readonly Option<FileInfo?> _sqlite = new("--sqlite") { Description = "An embedded-mode SQLite ledger file instead (e.g. DATA_DIR/ledger.db)." };

        public StoreOptions(Command command)
        {
            command.Options.Add(_postgres);
            command.Options.Add(_schema);
            command.Options.Add(_sqlite);
        }

        public async Task<LedgerDatabase> OpenAsync(ParseResult parse, CancellationToken cancellationToken)
        {
            if (parse.GetValue(_sqlite) is { } file)
            {
                if (!file.Exists)
                {
                    throw new FileNotFoundException($"no ledger file at {file.FullName}", file.FullName);
                }

                return await LedgerDatabase.OpenSqliteAsync($"Data Source={file.FullName}", cancellationToken: cancellationToken);
            }

            return await LedgerDatabase.OpenPostgresAsync(parse.GetValue(_postgres) ?? PostgresFromEnvironment(), parse.GetValue(_schema)!, cancellationToken: cancellationToken);
        }
    }
}
