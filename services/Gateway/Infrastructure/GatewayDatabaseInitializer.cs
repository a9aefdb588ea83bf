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

        // Passwords came after the first accounts databases: an older database gets the table on its next start, with
        // the columns named and typed as EF Core maps them.
        await db.Database.ExecuteSqlRawAsync(db.Database.IsNpgsql() ? CreatePasswordsPostgres : CreatePasswordsSqlite, cancellationToken);
    }

    private const string CreatePasswords =
        "CREATE TABLE IF NOT EXISTS " + GatewayDbContext.AccountPasswordTable + " (\"AccountId\" varchar(40) NOT NULL PRIMARY KEY, \"Hash\" varchar(200) NOT NULL, \"UpdatedAt\" ";

    private const string CreatePasswordsPostgres = CreatePasswords + "timestamp with time zone NOT NULL)";

    private const string CreatePasswordsSqlite = CreatePasswords + "TEXT NOT NULL)";

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
