using DataMarket.Catalog;
using DataMarket.LedgerWorker;
using DataMarket.ValuationWorker;
using MassTransit;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using DataMarket.ServiceDefaults.Security;
using Npgsql;

namespace DataMarket.Integration.Tests;

/// <summary>
/// The catalog, the valuation worker and the ledger worker, each from its own Program, talking over a real RabbitMQ and
/// keeping state in a real PostgreSQL database created for this run (the test command starts both servers).
/// Queues carry a per-run prefix and vanish when the run ends.
/// </summary>
public sealed class MarketFixture : IAsyncLifetime
{
    public static readonly string AdminConnectionString =
        Environment.GetEnvironmentVariable("DATAMARKET_TEST_POSTGRES")
        ?? "Host=127.0.0.1;Port=5432;Username=datamarket;Password=datamarket;Database=datamarket";

    public static readonly string RabbitMqUri =
        Environment.GetEnvironmentVariable("DATAMARKET_TEST_RABBITMQ") ?? "amqp://guest:guest@127.0.0.1:5672/";

    /// <summary>The key the gateway would sign with; the catalog gets it through Auth__SigningKey.</summary>
    public static readonly ServiceAuthOptions Auth = new() { SigningKey = ServiceAuthOptions.NewSigningKey(), TokenLifetime = TimeSpan.FromMinutes(30) };

    /// <summary>Mints tokens as the gateway does, for the test's actors.</summary>
    public static readonly ServiceTokenIssuer Tokens = new(Auth, TimeProvider.System);

    private readonly string _runId = Guid.NewGuid().ToString("N")[..12];

    public WebApplicationFactory<CatalogEntryPoint> Catalog { get; private set; } = null!;

    public WebApplicationFactory<ValuationWorkerEntryPoint> Worker { get; private set; } = null!;

    public WebApplicationFactory<LedgerWorkerEntryPoint> Ledger { get; private set; } = null!;

    /// <summary>Queue names of this run start with it.</summary>
    public string EndpointPrefix => $"it-{_runId}";

    public string BlobRoot { get; private set; } = null!;

    public string DatabaseName => $"datamarket_it_{_runId}";

    public string CatalogConnectionString => new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = DatabaseName }.ConnectionString;

    public async Task InitializeAsync()
    {
        await using (var admin = new NpgsqlConnection(AdminConnectionString))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{DatabaseName}\"", admin);
            await create.ExecuteNonQueryAsync();
        }

        BlobRoot = Path.Combine(Path.GetTempPath(), $"datamarket-it-{_runId}");
        // The services read configuration while their Program runs, before a factory's overrides would apply,
        // so the settings go through the environment, exactly as an operator would set them.
        Environment.SetEnvironmentVariable("Bus__Transport", "RabbitMq");
        Environment.SetEnvironmentVariable("Bus__RabbitMqUri", RabbitMqUri);
        Environment.SetEnvironmentVariable("Bus__EndpointPrefix", EndpointPrefix);
        Environment.SetEnvironmentVariable("Bus__TemporaryEndpoints", "true");
        Environment.SetEnvironmentVariable("Catalog__Database", "Postgres");
        Environment.SetEnvironmentVariable("ConnectionStrings__Catalog", CatalogConnectionString);
        Environment.SetEnvironmentVariable("Storage__BlobRoot", BlobRoot);
        Environment.SetEnvironmentVariable("Auth__SigningKey", Auth.SigningKey);
        Environment.SetEnvironmentVariable("Ledger__Store", "Postgres");
        Environment.SetEnvironmentVariable("ConnectionStrings__Ledger", CatalogConnectionString);

        Worker = new WebApplicationFactory<ValuationWorkerEntryPoint>();
        Catalog = new WebApplicationFactory<CatalogEntryPoint>();
        Ledger = new WebApplicationFactory<LedgerWorkerEntryPoint>();
        // A host's start returns before its bus has connected and bound its queues; a message published before
        // then would be dropped by RabbitMQ, and /health would read "degraded". Wait until each bus is up.
        foreach (var services in new[] { Worker.Services, Catalog.Services, Ledger.Services })
        {
            var health = await services.GetRequiredService<IBusControl>().WaitForHealthStatus(BusHealthStatus.Healthy, TimeSpan.FromSeconds(60));
            Assert.Equal(BusHealthStatus.Healthy, health);
        }
    }

    public async Task DisposeAsync()
    {
        await Catalog.DisposeAsync();
        await Worker.DisposeAsync();
        await Ledger.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await using (var admin = new NpgsqlConnection(AdminConnectionString))
        {
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{DatabaseName}\" WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
        }

        if (Directory.Exists(BlobRoot))
        {
            Directory.Delete(BlobRoot, recursive: true);
        }
    }
}

[CollectionDefinition(Name)]
public sealed class MarketCollection : ICollectionFixture<MarketFixture>
{
    public const string Name = "market";
}
