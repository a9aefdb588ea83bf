using System.CommandLine;

namespace DataMarket.Cli.Commands;

public static class CliApplication
{
    public static RootCommand BuildRootCommand()
    {
        var root = new RootCommand("DataMarket: value data for a buyer's task, price it, and pay its sellers.");
        root.Subcommands.Add(DemoCommand.Build());
        root.Subcommands.Add(ServeCommand.Build());
        root.Subcommands.Add(AccountsCommand.Build());
        var value = new Command("value", "Value training data for a test task from files.");
        value.Subcommands.Add(ValueKnnShapleyCommand.Build());
        value.Subcommands.Add(ValueAsymmetricShapleyCommand.Build());
        value.Subcommands.Add(ValueLograCommand.Build());
        root.Subcommands.Add(value);
        root.Subcommands.Add(AllocateCommand.Build());
        root.Subcommands.Add(LedgerCommand.Build());
        root.Subcommands.Add(SettleCommand.BuildSettle());
        root.Subcommands.Add(SettleCommand.BuildPayouts());
        root.Subcommands.Add(BenchCommand.Build());
        return root;
    }

    /// <summary>
    /// Parses and runs. A command line the parser rejects (unknown command or option, a value that is not a number or
    /// out of range) exits 2 like every other bad input, with the parser's reasons and a pointer to --help.
    /// </summary>
    public static async Task<int> InvokeAsync(string[] args, InvocationConfiguration? configuration = null, CancellationToken cancellationToken = default)
    {
        configuration ??= new InvocationConfiguration();
        var parse = BuildRootCommand().Parse(args);
        if (parse.Errors.Count > 0)
        {
            var error = configuration.Error;
            foreach (var problem in parse.Errors)
            {
                await error.WriteLineAsync($"error: {problem.Message}");
            }

            await error.WriteLineAsync("Run 'datamarket --help' (or the command with --help) for usage.");
            return ExitCodes.BadInput;
        }

        return await parse.InvokeAsync(configuration, cancellationToken);
    }
}

/// <summary>Exit codes shared by every command.</summary>
public static class ExitCodes
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int BadInput = 2;
}
