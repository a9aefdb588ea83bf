using System.CommandLine;
using DataMarket.Gateway.Application;
using DataMarket.Gateway.Infrastructure;
using DataMarket.Gateway.Model;
using DataMarket.ServiceDefaults.Security;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Cli.Commands;

/// <summary><c>datamarket accounts create</c>: makes an account in the gateway's database and prints its first API key, once.</summary>
public static class AccountsCommand
{
    public static Command Build()
    {
        var role = new Option<string>("--role") { Description = "seller, buyer or operator.", Required = true };
        role.AcceptOnlyFromAmong([.. Roles.All]);
        var name = new Option<string>("--name") { Description = "Account name: letters, digits, spaces and . _ - (at most 100).", Required = true };
        var dataDir = new Option<DirectoryInfo?>("--data-dir") { Description = "The embedded market's folder (as given to serve); its gateway.db holds the accounts." };
        var postgres = new Option<string?>("--postgres") { Description = "The gateway's PostgreSQL database instead." };
        var create = new Command("create", "Create an account and print a new API key for it (shown only this once).") { role, name, dataDir, postgres };
        create.SetAction(async (parse, cancellationToken) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var connection = parse.GetValue(postgres);
            var folder = parse.GetValue(dataDir);
            if (connection is not null && folder is not null)
            {
                await error.WriteLineAsync("error: give --data-dir or --postgres, not both");
                return ExitCodes.BadInput;
            }

            var options = connection is not null
                ? new GatewayOptions { Database = GatewayDatabase.Postgres, ConnectionString = connection }
                : new GatewayOptions
                {
                    Database = GatewayDatabase.Sqlite,
                    ConnectionString = $"Data Source={Path.Combine((folder ?? new DirectoryInfo("datamarket-data")).FullName, "gateway.db")}",
                };
            if (options.Database == GatewayDatabase.Sqlite)
            {
                Directory.CreateDirectory((folder ?? new DirectoryInfo("datamarket-data")).FullName);
            }

            var services = new ServiceCollection();
            services.AddGatewayAccounts(options);
            await using var provider = services.BuildServiceProvider();
            await using var scope = provider.CreateAsyncScope();
            await GatewayDatabaseInitializer.EnsureTablesAsync(scope.ServiceProvider.GetRequiredService<GatewayDbContext>(), cancellationToken);
            var accounts = scope.ServiceProvider.GetRequiredService<AccountService>();
            try
            {
                var account = await accounts.CreateAccountAsync("cli", parse.GetValue(role)!, parse.GetValue(name)!, cancellationToken);
                var key = await accounts.CreateApiKeyAsync(account.Id, "first key", cancellationToken);
                var output = parse.InvocationConfiguration.Output;
                await output.WriteLineAsync($"created {account.Role} '{account.Name}' ({account.Id})");
                await output.WriteLineAsync($"API key (shown once, store it now): {key.Key}");
                return ExitCodes.Success;
            }
            catch (AccountException exception)
            {
                await error.WriteLineAsync($"error: {exception.Message}");
                return ExitCodes.BadInput;
            }
            finally
            {
                Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            }
        });
        return new Command("accounts", "Manage market accounts.") { create };
    }
}
