using DataMarket.Ledger;
using DataMarket.Ledger.Outbox;
using DataMarket.ServiceDefaults.Messaging;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DataMarket.ServiceDefaults.Ledger;

public enum LedgerStore
{
    Postgres,
    Sqlite,
}

/// <summary>Bound from the <c>Ledger</c> section; the connection string from <c>ConnectionStrings:Ledger</c>.</summary>
public sealed class LedgerOptions
{
    public const string SectionName = "Ledger";

    public LedgerStore Store { get; set; } = LedgerStore.Postgres;

    public string? ConnectionString { get; set; }

    /// <summary>PostgreSQL schema, or SQLite table prefix.</summary>
    public string Schema { get; set; } = "ledger";
}

/// <summary>Publishes the ledger's outbox rows on the bus, with the outbox row's id as the message id.</summary>
public sealed class BusOutboxPublisher(IBus bus) : IOutboxPublisher
{
    public Task PublishAsync(OutboxMessage message, CancellationToken cancellationToken) =>
        IntegrationEvents.PublishAsync(bus, message.Type, message.Payload, message.MessageId, cancellationToken);
}

/// <summary>
/// Opens the ledger once per process (creating or migrating its schema) and relays its outbox to the bus until
/// the host stops. Rows left behind by a crash are sent on the next start.
/// </summary>
public sealed class LedgerHost(LedgerOptions options, IBus bus, ILogger<LedgerHost> logger) : BackgroundService
{
    private readonly TaskCompletionSource<LedgerDatabase> _database = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The open ledger; completes once the schema is ready.</summary>
    public Task<LedgerDatabase> Database => _database.Task;

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            var database = options.Store switch
            {
                LedgerStore.Sqlite => await LedgerDatabase.OpenSqliteAsync(options.ConnectionString ?? "Data Source=datamarket-ledger.db", options.Schema, cancellationToken: cancellationToken),
                _ => await LedgerDatabase.OpenPostgresAsync(options.ConnectionString ?? LocalDefaults.PostgresConnectionString, options.Schema, cancellationToken: cancellationToken),
            };
            _database.SetResult(database);
            logger.LogInformation("Ledger open on {Store}", options.Store);
        }
        catch (Exception exception)
        {
            _database.TrySetException(exception);
            throw;
        }

        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var database = await Database;
        try
        {
            await new OutboxRelay(database, new BusOutboxPublisher(bus)).RunAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (_database.Task.IsCompletedSuccessfully)
        {
            await _database.Task.Result.DisposeAsync();
        }
    }
}

/// <summary>Ready once the ledger's schema is open; unhealthy if opening it failed.</summary>
public sealed class LedgerHealthCheck(LedgerHost host) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(host.Database.Status switch
        {
            TaskStatus.RanToCompletion => HealthCheckResult.Healthy($"ledger open on {host.Database.Result.Provider}"),
            TaskStatus.Faulted => HealthCheckResult.Unhealthy("the ledger could not be opened", host.Database.Exception?.GetBaseException()),
            _ => HealthCheckResult.Unhealthy("the ledger is still opening"),
        });
}

public static class LedgerHostingExtensions
{
    /// <summary>The ledger (PostgreSQL, or SQLite in embedded mode) and its outbox relay to the bus.</summary>
    public static IServiceCollection AddLedger(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection(LedgerOptions.SectionName).Get<LedgerOptions>() ?? new LedgerOptions();
        options.ConnectionString ??= configuration.GetConnectionString("Ledger");
        services.AddSingleton(options);
        services.AddSingleton<LedgerHost>();
        services.AddHostedService(provider => provider.GetRequiredService<LedgerHost>());
        services.AddHealthChecks().AddCheck<LedgerHealthCheck>("ledger", tags: ["ready"]);
        return services;
    }
}
