using DataMarket.ServiceDefaults.Ledger;
using DataMarket.ServiceDefaults.Messaging;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Cli.Demo;

/// <summary>
/// The whole market in one process: catalog, valuation worker, ledger and settlement on MassTransit's in-memory
/// bus, catalog, ledger and settlement state in SQLite and blobs on disk under one data folder. Environment variables still override these.
/// </summary>
public static class EmbeddedMarket
{
    public static void Configure(IConfigurationManager configuration, IServiceCollection services, string dataDirectory, IDictionary<string, string?>? settings = null)
    {
        Directory.CreateDirectory(dataDirectory);
        var defaults = new Dictionary<string, string?>
        {
            ["Bus:Transport"] = nameof(BusTransport.InMemory),
            ["Catalog:Database"] = "Sqlite",
            ["ConnectionStrings:Catalog"] = $"Data Source={Path.Combine(dataDirectory, "catalog.db")}",
            ["Storage:BlobRoot"] = Path.Combine(dataDirectory, "blobs"),
            ["Ledger:Store"] = "Sqlite",
            ["ConnectionStrings:Ledger"] = $"Data Source={Path.Combine(dataDirectory, "ledger.db")}",
            ["Settlement:Store"] = "Sqlite",
            ["ConnectionStrings:Settlement"] = $"Data Source={Path.Combine(dataDirectory, "settlement.db")}",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        // Defaults go underneath every other source, so DATAMARKET settings from the environment win.
        configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = defaults });
        if (settings is not null)
        {
            // Settings a caller passes on purpose (tests) win over everything else.
            configuration.AddInMemoryCollection(settings);
        }

        services.AddDataMarketDefaults(configuration);
        services.AddCatalog(configuration);
        services.AddValuationWorker();
        services.AddLedgerWorker(configuration);
        // After the catalog and the ledger worker, so settlement shares their database context and ledger host.
        services.AddSettlement(configuration);
        services.AddDataMarketBus(configuration, bus => bus.AddCatalogConsumers(), bus => bus.AddValuationConsumers(), bus => bus.AddLedgerConsumers());
    }
}
