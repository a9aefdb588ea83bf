using System.Text.RegularExpressions;
using DataMarket.Gateway.Application;
using DataMarket.Gateway.Infrastructure;
using DataMarket.Gateway.Model;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace DataMarket.Cli.Tests;

/// <summary>
/// The gateway's accounts on PostgreSQL, as deployed (start-services.sh and Kubernetes run it there; the other tests use
/// the embedded SQLite): `accounts create --postgres` makes the tables in a database that already holds another service's
/// and prints a key once, and the gateway's account service on the same database then knows the account and its key.
/// </summary>
public sealed partial class accounts_on_postgres : IAsyncLifetime
{
    private static readonly string s_admin = Environment.GetEnvironmentVariable("DATAMARKET_TEST_POSTGRES")
        ?? "Host=127.0.0.1;Port=5432;Username=datamarket;Password=datamarket;Database=datamarket";

    private readonly string _database = $"datamarket_accounts_{Guid.NewGuid():N}"[..40];

    private string Connection => new NpgsqlConnectionStringBuilder(s_admin) { Database = _database }.ConnectionString;

    public async Task InitializeAsync()
    {
        await using var admin = new NpgsqlConnection(s_admin);
        await admin.OpenAsync();
        await new NpgsqlCommand($"CREATE DATABASE \"{_database}\"", admin).ExecuteNonQueryAsync();
        // Another service's table first: the gateway shares one database with the catalog in small deployments.
        await using var shared = new NpgsqlConnection(Connection);
        await shared.OpenAsync();
        await new NpgsqlCommand("CREATE TABLE listings (\"Id\" uuid PRIMARY KEY)", shared).ExecuteNonQueryAsync();
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(s_admin);
        await admin.OpenAsync();
        await new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{_database}\" WITH (FORCE)", admin).ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task accounts_create_on_postgres_prints_a_key_the_gateway_then_accepts_and_refuses_a_second_account_of_that_name()
    {
        var (exit, output, error) = await CliRunner.RunAsync("accounts", "create", "--role", "buyer", "--name", "pg buyer", "--postgres", Connection);
        Assert.True(exit == 0, error);
        var key = ApiKey().Match(output);
        Assert.True(key.Success, output);

        var again = await CliRunner.RunAsync("accounts", "create", "--role", "seller", "--name", "pg buyer", "--postgres", Connection);
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("already exists", again.Error);

        var services = new ServiceCollection();
        services.AddLogging();
        services.AddGatewayAccounts(new GatewayOptions { Database = GatewayDatabase.Postgres, ConnectionString = Connection });
        await using var provider = services.BuildServiceProvider();
        await using var scope = provider.CreateAsyncScope();
        // A second start on the same database changes nothing.
        await GatewayDatabaseInitializer.EnsureTablesAsync(scope.ServiceProvider.GetRequiredService<GatewayDbContext>(), CancellationToken.None);
        var accounts = scope.ServiceProvider.GetRequiredService<AccountService>();

        var account = await accounts.AuthenticateAsync(key.Groups[1].Value, CancellationToken.None);
        Assert.NotNull(account);
        Assert.Equal(("pg buyer", "buyer"), (account.Name, account.Role));
        Assert.Null(await accounts.AuthenticateAsync(key.Groups[1].Value[..^1] + (key.Groups[1].Value[^1] == 'A' ? 'B' : 'A'), CancellationToken.None));
        Assert.Single(await accounts.ListAccountsAsync(CancellationToken.None));
        Assert.Contains(await accounts.ReadAuditAsync(100, CancellationToken.None), entry => entry.Action == "account.create");

        await accounts.SetPasswordAsync(account.Id, account.Id, "a long enough password", CancellationToken.None);
        Assert.Equal(account.Id, (await accounts.CheckPasswordAsync("pg buyer", "a long enough password", CancellationToken.None))?.Id);
        Assert.Null(await accounts.CheckPasswordAsync("pg buyer", "not the password", CancellationToken.None));
    }

    [GeneratedRegex(@"API key \(shown once, store it now\): (\S+)")]
    private static partial Regex ApiKey();
}
