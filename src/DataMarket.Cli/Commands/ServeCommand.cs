using System.CommandLine;
using DataMarket.Cli.Demo;

namespace DataMarket.Cli.Commands;

/// <summary>
/// <c>datamarket serve</c>: the gateway (the only public address) in front of the catalog API, the valuation worker
/// and the ledger, all in one process on embedded defaults. Prints the address, and a web password and an API key for each demo account.
/// </summary>
public static class ServeCommand
{
    public const string DefaultUrl = "http://127.0.0.1:5080";

    public static Command Build()
    {
        var dataDir = new Option<DirectoryInfo>("--data-dir") { Description = "Folder for the SQLite databases and the blob store.", DefaultValueFactory = _ => new DirectoryInfo("datamarket-data") };
        var urls = new Option<string>("--urls") { Description = "Addresses the gateway listens on.", DefaultValueFactory = _ => DefaultUrl };
        var command = new Command("serve", "Run the market (gateway, HTTP API, valuation worker, ledger) in one process (in-memory bus, SQLite).") { dataDir, urls };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            await using var site = await EmbeddedSite.StartAsync(parse.GetValue(dataDir)!.FullName, parse.GetValue(urls)!, cancellationToken: cancellationToken);
            var address = site.Address.ToString().TrimEnd('/');
            await output.WriteLineAsync($"DataMarket is listening on {address}");
            var demo = await site.IssueDemoKeysAsync(cancellationToken);
            await output.WriteLineAsync($"Web UI: open {address}/ and sign in (passwords are new each run and replace the previous run's):");
            foreach (var account in demo)
            {
                await output.WriteLineAsync($"  {account.Role,-8} name {account.Name,-14} password {account.Password}");
            }

            await output.WriteLineAsync("API keys for the same accounts (new each run; send one as 'Authorization: Bearer KEY'):");
            foreach (var account in demo)
            {
                await output.WriteLineAsync($"  {account.Role,-8} {account.Name,-14} {account.ApiKey}");
            }

            await output.WriteLineAsync($"For example: curl -H 'Authorization: Bearer <demo-buyer key>' {address}/api/listings");
            await site.WaitForShutdownAsync(cancellationToken);
            return ExitCodes.Success;
        });
        return command;
    }
}
