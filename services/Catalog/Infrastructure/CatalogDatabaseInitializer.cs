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

        await db.Database.ExecuteSqlRawAsync(
            db.Database.IsNpgsql()
                ? """
                  CREATE TABLE IF NOT EXISTS callback_notices (
                      "ValuationId" uuid NOT NULL, "DueAt" timestamp with time zone NOT NULL, "Attempts" integer NOT NULL,
                      "DeliveredAt" timestamp with time zone NULL, "GaveUpAt" timestamp with time zone NULL,
                      "LastError" character varying(500) NULL,
                      CONSTRAINT "PK_callback_notices" PRIMARY KEY ("ValuationId"));
                  CREATE INDEX IF NOT EXISTS "IX_callback_notices_DueAt" ON callback_notices ("DueAt")
                  """
                : """
                  CREATE TABLE IF NOT EXISTS callback_notices (
                      "ValuationId" TEXT NOT NULL, "DueAt" TEXT NOT NULL, "Attempts" INTEGER NOT NULL,
                      "DeliveredAt" TEXT NULL, "GaveUpAt" TEXT NULL, "LastError" TEXT NULL,
                      CONSTRAINT "PK_callback_notices" PRIMARY KEY ("ValuationId"));
                  CREATE INDEX IF NOT EXISTS "IX_callback_notices_DueAt" ON callback_notices ("DueAt")
                  """,
            cancellationToken);

        await db.Database.ExecuteSqlRawAsync(
            db.Database.IsNpgsql()
                ? """
                  CREATE TABLE IF NOT EXISTS proxy_models (
                      "Id" uuid NOT NULL, "BuyerId" character varying(200) NOT NULL, "Name" character varying(200) NOT NULL,
                      "BlobId" character varying(64) NOT NULL, "InputWidth" integer NOT NULL, "HiddenWidths" character varying(200) NOT NULL,
                      "OutputWidth" integer NOT NULL, "Bytes" bigint NOT NULL, "UploadedAt" timestamp with time zone NOT NULL,
                      CONSTRAINT "PK_proxy_models" PRIMARY KEY ("Id"));
                  CREATE INDEX IF NOT EXISTS "IX_proxy_models_BuyerId" ON proxy_models ("BuyerId")
                  """
                : """
                  CREATE TABLE IF NOT EXISTS proxy_models (
                      "Id" TEXT NOT NULL, "BuyerId" TEXT NOT NULL, "Name" TEXT NOT NULL, "BlobId" TEXT NOT NULL,
                      "InputWidth" INTEGER NOT NULL, "HiddenWidths" TEXT NOT NULL, "OutputWidth" INTEGER NOT NULL,
                      "Bytes" INTEGER NOT NULL, "UploadedAt" TEXT NOT NULL,
                      CONSTRAINT "PK_proxy_models" PRIMARY KEY ("Id"));
                  CREATE INDEX IF NOT EXISTS "IX_proxy_models_BuyerId" ON proxy_models ("BuyerId")
                  """,
            cancellationToken);

        // Columns added later, likewise.
        await AddColumnIfMissingAsync(db, "outbox", "TraceParent", "text", cancellationToken);
        await AddColumnIfMissingAsync(db, "valuations", "CallbackUrl", "character varying(2000)", cancellationToken);
        await AddColumnIfMissingAsync(db, "valuations", "CallbackSecret", "character varying(100)", cancellationToken);
        await AddColumnIfMissingAsync(db, "valuations", "ModelId", "uuid", cancellationToken);
    }

    /// <summary>
    /// SQLite has no ADD COLUMN IF NOT EXISTS, so it asks its table_info first; its columns are TEXT. The names are
    /// this class's constants, never input.
    /// </summary>
    private static async Task AddColumnIfMissingAsync(CatalogDbContext db, string table, string column, string postgresType, CancellationToken cancellationToken)
    {
        if (db.Database.IsNpgsql())
        {
            var add = $"""ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "{column}" {postgresType}""";
            await db.Database.ExecuteSqlRawAsync(add, cancellationToken);
            return;
        }

        var present = $"""SELECT COUNT(*) AS "Value" FROM pragma_table_info('{table}') WHERE name = '{column}'""";
        if (await db.Database.SqlQueryRaw<int>(present).SingleAsync(cancellationToken) == 0)
        {
            var add = $"""ALTER TABLE {table} ADD COLUMN "{column}" TEXT NULL""";
            await db.Database.ExecuteSqlRawAsync(add, cancellationToken);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
