using DataMarket.Catalog.Application;
using DataMarket.Catalog.Consumers;
using DataMarket.Catalog.Infrastructure;
using DataMarket.Catalog.Model;
using FluentValidation;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;

namespace Microsoft.Extensions.DependencyInjection;

public static class CatalogExtensions
{
    public static IServiceCollection AddCatalog(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddCatalogDatabase(configuration);
        services.AddSingleton<IValidator<CreateListingRequest>, CreateListingRequestValidator>();
        services.AddSingleton<IValidator<UploadOptions>, UploadOptionsValidator>();
        services.AddSingleton<IValidator<PostTestTaskRequest>, PostTestTaskRequestValidator>();
        services.AddSingleton<IValidator<UploadModelRequest>, UploadModelRequestValidator>();
        services.AddSingleton<IValidator<RequestValuationRequest>, RequestValuationRequestValidator>();
        services.AddScoped<Outbox>();
        services.AddSingleton<OutboxSignal>();
        services.AddScoped<CatalogService>();
        services.AddDataMarketOpenApi(
            "catalog", "DataMarket catalog API",
            "Listings, test tasks, proxy models and valuations, reached through the gateway with an API key. Every error is an RFC 7807 problem-details body.",
            tag: "catalog");
        // The schema must exist before the relay or the bus touch it, so the initializer is registered first.
        services.AddHostedService<CatalogDatabaseInitializer>();
        services.AddHostedService<OutboxRelay>();
        services.AddHostedService<ValuationStatusGauge>();
        services.AddHttpClient(ValuationCallbacks.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(provider => ValuationCallbacks.Handler(provider.GetRequiredService<CatalogOptions>().Callbacks));
        services.AddHostedService<CallbackDispatcher>();
        return services;
    }

    /// <summary>The catalog's options and database context alone (settlement reads listings and valuations through it).</summary>
    public static IServiceCollection AddCatalogDatabase(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection(CatalogOptions.SectionName).Get<CatalogOptions>() ?? new CatalogOptions();
        options.ConnectionString ??= configuration.GetConnectionString("Catalog");
        services.AddSingleton(options);
        services.AddDbContext<CatalogDbContext>((provider, db) =>
        {
            // Interceptors registered in the container (diagnostics, fault injection in tests) apply to every context.
            db.AddInterceptors(provider.GetServices<Microsoft.EntityFrameworkCore.Diagnostics.IInterceptor>());
            switch (options.Database)
            {
                case CatalogDatabase.Sqlite:
                    db.UseSqlite(options.ConnectionString ?? "Data Source=datamarket-catalog.db");
                    break;
                case CatalogDatabase.Postgres:
                    db.UseNpgsql(options.ConnectionString ?? DataMarket.ServiceDefaults.LocalDefaults.PostgresConnectionString);
                    break;
                default:
                    throw new InvalidOperationException($"unknown catalog database '{options.Database}'");
            }
        });
        return services;
    }

    public static IBusRegistrationConfigurator AddCatalogConsumers(this IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<ValuationStartedConsumer, StatusConsumerDefinition<ValuationStartedConsumer>>();
        bus.AddConsumer<ValuationProgressedConsumer, StatusConsumerDefinition<ValuationProgressedConsumer>>();
        bus.AddConsumer<ValuationCompletedConsumer, StatusConsumerDefinition<ValuationCompletedConsumer>>();
        bus.AddConsumer<ValuationFailedConsumer, StatusConsumerDefinition<ValuationFailedConsumer>>();
        bus.AddConsumer<RequestValuationFaultConsumer, StatusConsumerDefinition<RequestValuationFaultConsumer>>();
        return bus;
    }
}
