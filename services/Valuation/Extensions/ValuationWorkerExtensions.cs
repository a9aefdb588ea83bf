using DataMarket.Valuation.Gpu;
using DataMarket.ValuationWorker.Consumers;
using DataMarket.ValuationWorker.Infrastructure;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

public static class ValuationWorkerExtensions
{
    public static IServiceCollection AddValuationWorker(this IServiceCollection services, IConfiguration? configuration = null)
    {
        var options = configuration?.GetSection(ValuationWorkerOptions.SectionName).Get<ValuationWorkerOptions>() ?? new ValuationWorkerOptions();
        if (options.Pool is not ("cpu" or "gpu"))
        {
            throw new InvalidOperationException($"Valuation:Pool must be 'cpu' or 'gpu', got '{options.Pool}'");
        }

        services.AddSingleton(options);
        // The bus registers its own options; a host without one (a test harness) gets the defaults.
        services.TryAddSingleton(new DataMarket.ServiceDefaults.Messaging.BusOptions());
        services.AddSingleton<PreparedValuations>();
        services.AddSingleton<ShardStore>();
        services.AddScoped<ValuationRunner>();
        // libtorch loads on the first LoGra job (not at start); the device comes from Torch:Device.
        services.AddSingleton(provider => new LograEngine(
            provider.GetService<IConfiguration>()?[DataMarket.Torch.TorchRuntime.DeviceKey], provider.GetRequiredService<ILogger<LograEngine>>()));

        // One device per process, disposed with the container; its kernels compile on the first valuation.
        services.AddSingleton(provider => ValuationDeviceSelection.Select(provider.GetService<IConfiguration>()));
        services.AddHostedService<ValuationDeviceSelection>();
        return services;
    }

    public static IBusRegistrationConfigurator AddValuationConsumers(this IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<RequestValuationConsumer, RequestValuationConsumerDefinition>();
        bus.AddConsumer<ValueShardConsumer, ValueShardConsumerDefinition>();
        bus.AddConsumer<ValuationShardCompletedConsumer, ValuationShardCompletedConsumerDefinition>();
        bus.AddConsumer<ValuationCancelledConsumer>();
        return bus;
    }
}
