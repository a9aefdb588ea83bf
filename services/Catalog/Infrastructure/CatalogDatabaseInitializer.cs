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
                return;
            }
            catch (Exception exception) when (attempt < 10 && exception is not OperationCanceledException)
            {
                logger.LogWarning("Catalog database not ready (attempt {Attempt}): {Message}", attempt, exception.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
