using System.CommandLine;

namespace DataMarket.Cli.Commands;

public static class CliApplication
{
    public static RootCommand BuildRootCommand()
    {
        var root = new RootCommand("DataMarket: value data for a buyer's task, price it, and pay its sellers.");
        root.Subcommands.Add(DemoCommand.Build());
        root.Subcommands.Add(ServeCommand.Build());
        var value = new Command("value", "Value training data for a test task from files.");
        value.Subcommands.Add(ValueKnnShapleyCommand.Build());
        value.Subcommands.Add(ValueAsymmetricShapleyCommand.Build());
        value.Subcommands.Add(ValueLograCommand.Build());
        root.Subcommands.Add(value);
        root.Subcommands.Add(AllocateCommand.Build());
        root.Subcommands.Add(LedgerCommand.Build());
        root.Subcommands.Add(BenchCommand.Build());
        return root;
    }
}

/// <summary>Exit codes shared by every command.</summary>
public static class ExitCodes
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int BadInput = 2;
}
