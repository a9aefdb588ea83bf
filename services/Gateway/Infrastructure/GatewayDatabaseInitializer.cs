using DataMarket.Gateway.Model;

namespace DataMarket.Gateway.Infrastructure;

/// <summary>Creates the accounts tables at start when they do not exist (idempotent).</summary>
public sealed class GatewayDatabaseInitializer(IServiceScopeFactory scopes) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<GatewayDbContext>().Database.EnsureCreatedAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
