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
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
