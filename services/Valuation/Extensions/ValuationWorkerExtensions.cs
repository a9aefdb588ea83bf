using DataMarket.ValuationWorker.Consumers;
using DataMarket.ValuationWorker.Infrastructure;
using MassTransit;

namespace Microsoft.Extensions.DependencyInjection;

public static class ValuationWorkerExtensions
{
    public static IServiceCollection AddValuationWorker(this IServiceCollection services)
    {
        services.AddScoped<ValuationRunner>();
        services.AddHostedService<ComputeBackendSelection>();
        return services;
    }

    public static IBusRegistrationConfigurator AddValuationConsumers(this IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<RequestValuationConsumer, RequestValuationConsumerDefinition>();
        return bus;
    }
}
