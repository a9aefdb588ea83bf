using System.Data.Common;
using DataMarket.Gateway.Model;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;

namespace DataMarket.Gateway.Infrastructure;

/// <summary>Creates the accounts tables at start when they do not exist (idempotent).</summary>
public sealed class GatewayDatabaseInitializer(IServiceScopeFactory scopes) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        await EnsureTablesAsync(scope.ServiceProvider.GetRequiredService<GatewayDbContext>(), cancellationToken);
    }

    /// <summary>
    /// EnsureCreated does nothing in a database that already holds any table (another service's, when they share
    /// one PostgreSQL database), so the gateway's own tables are created when its accounts table is missing.
    /// </summary>
    public static async Task EnsureTablesAsync(GatewayDbContext db, CancellationToken cancellationToken)
    {
        await db.Database.EnsureCreatedAsync(cancellationToken);
        try
        {
            await db.Accounts.AnyAsync(cancellationToken);
        }
        catch (DbException)
        {
            await db.GetService<IRelationalDatabaseCreator>().CreateTablesAsync(cancellationToken);
        }

        // Passwords, second factors and reset links came after the first accounts databases: an older database gets
        // their tables on its next start, with the columns named and typed as EF Core maps them.
        var timestamp = db.Database.IsNpgsql() ? "timestamp with time zone" : "TEXT";
        foreach (var statement in AddedTables(timestamp))
        {
            await db.Database.ExecuteSqlRawAsync(statement, cancellationToken);
        }
    }

    private static IEnumerable<string> AddedTables(string timestamp) =>
    [
        "CREATE TABLE IF NOT EXISTS " + GatewayDbContext.AccountPasswordTable
            + " (\"AccountId\" varchar(40) NOT NULL PRIMARY KEY, \"Hash\" varchar(200) NOT NULL, \"UpdatedAt\" " + timestamp + " NOT NULL)",
        "CREATE TABLE IF NOT EXISTS " + GatewayDbContext.AccountTotpTable
            + " (\"AccountId\" varchar(40) NOT NULL PRIMARY KEY, \"Secret\" varchar(64) NOT NULL, \"EnabledAt\" " + timestamp + " NULL, \"LastTimeStep\" bigint NOT NULL)",
        "CREATE TABLE IF NOT EXISTS " + GatewayDbContext.PasswordResetTable
            + " (\"TokenHash\" varchar(64) NOT NULL PRIMARY KEY, \"AccountId\" varchar(40) NOT NULL, \"IssuedBy\" varchar(40) NOT NULL, \"ExpiresAt\" " + timestamp + " NOT NULL, \"UsedAt\" " + timestamp + " NULL)",
    ];

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
