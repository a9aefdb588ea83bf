using DataMarket.Catalog.Model;
using Microsoft.EntityFrameworkCore;

namespace DataMarket.Catalog.Infrastructure;

/// <summary>Creates the catalog's tables at start when they do not exist (idempotent).</summary>
public sealed class CatalogDatabaseInitializer(IServiceScopeFactory scopes, ILogger<CatalogDatabaseInitializer> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CatalogDbContext>();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await db.Database.EnsureCreatedAsync(cancellationToken);
                await AddLaterTablesAsync(db, cancellationToken);
                return;
            }
            catch (Exception exception) when (attempt < 10 && exception is not OperationCanceledException)
            {
                logger.LogWarning("Catalog database not ready (attempt {Attempt}): {Message}", attempt, exception.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            }
        }
    }

    /// <summary>
    /// EnsureCreated adds nothing to a database that already exists, so tables added after the first release are
    /// created here when missing (a data folder kept from an earlier version keeps working).
    /// </summary>
    private static async Task AddLaterTablesAsync(CatalogDbContext db, CancellationToken cancellationToken)
    {
        await db.Database.ExecuteSqlRawAsync(
            db.Database.IsNpgsql()
                ? """
                  CREATE TABLE IF NOT EXISTS idempotency_keys (
                      "ActorId" character varying(200) NOT NULL, "Key" character varying(200) NOT NULL,
                      "Operation" character varying(40) NOT NULL, "ResourceId" uuid NOT NULL,
                      "CreatedAt" timestamp with time zone NOT NULL,
                      CONSTRAINT "PK_idempotency_keys" PRIMARY KEY ("ActorId", "Key"))
                  """
                : """
                  CREATE TABLE IF NOT EXISTS idempotency_keys (
                      "ActorId" TEXT NOT NULL, "Key" TEXT NOT NULL, "Operation" TEXT NOT NULL,
                      "ResourceId" TEXT NOT NULL, "CreatedAt" TEXT NOT NULL,
                      CONSTRAINT "PK_idempotency_keys" PRIMARY KEY ("ActorId", "Key"))
                  """,
            cancellationToken);

        // Columns added later, likewise (SQLite has no ADD COLUMN IF NOT EXISTS, so it asks its table_info first).
        if (db.Database.IsNpgsql())
        {
            await db.Database.ExecuteSqlRawAsync("""ALTER TABLE outbox ADD COLUMN IF NOT EXISTS "TraceParent" text""", cancellationToken);
        }
        else if (await db.Database.SqlQueryRaw<int>("""SELECT COUNT(*) AS "Value" FROM pragma_table_info('outbox') WHERE name = 'TraceParent'""").SingleAsync(cancellationToken) == 0)
        {
            await db.Database.ExecuteSqlRawAsync("""ALTER TABLE outbox ADD COLUMN "TraceParent" TEXT NULL""", cancellationToken);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
