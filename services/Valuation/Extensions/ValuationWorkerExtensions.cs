using DataMarket.Valuation.Gpu;
using DataMarket.ValuationWorker.Consumers;
using DataMarket.ValuationWorker.Infrastructure;
using MassTransit;

namespace Microsoft.Extensions.DependencyInjection;

public static class ValuationWorkerExtensions
{
    public static IServiceCollection AddValuationWorker(this IServiceCollection services)
    {
        services.AddScoped<ValuationRunner>();

        // One device per process, disposed with the container; its kernels compile on the first valuation.
        services.AddSingleton(provider => ValuationDeviceSelection.Select(provider.GetService<IConfiguration>()));
        services.AddHostedService<ValuationDeviceSelection>();
        services.AddHostedService<ComputeBackendSelection>();
        return services;
    }

    public static IBusRegistrationConfigurator AddValuationConsumers(this IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<RequestValuationConsumer, RequestValuationConsumerDefinition>();
        return bus;
    }
}
