using DataMarket.ServiceDefaults.Health;
using DataMarket.ServiceDefaults.Messaging;
using DataMarket.ServiceDefaults.Telemetry;
using MassTransit;
using Microsoft.Extensions.Configuration;

namespace Microsoft.Extensions.DependencyInjection;

public static class BusExtensions
{
    /// <summary>
    /// Registers MassTransit with the transport named in configuration. Each module contributes its consumers
    /// through <paramref name="modules"/>, so the same modules run together in one process or apart.
    /// </summary>
    public static IServiceCollection AddDataMarketBus(
        this IServiceCollection services,
        IConfiguration configuration,
        params Action<IBusRegistrationConfigurator>[] modules)
    {
        var options = configuration.GetSection(BusOptions.SectionName).Get<BusOptions>() ?? new BusOptions();
        services.AddSingleton(options);
        services.AddConsumerFaultHealth();
        services.AddSingleton<MessageSizeMeter>();
        services.AddConsumeObserver(sp => sp.GetRequiredService<MessageSizeMeter>());
        services.AddMassTransit(bus =>
        {
            bus.SetEndpointNameFormatter(new KebabCaseEndpointNameFormatter(options.EndpointPrefix, includeNamespace: false));
            foreach (var module in modules)
            {
                module(bus);
            }

            if (options.TemporaryEndpoints)
            {
                bus.AddConfigureEndpointsCallback((_, _, endpoint) =>
                {
                    if (endpoint is IRabbitMqReceiveEndpointConfigurator rabbit)
                    {
                        rabbit.AutoDelete = true;
                        rabbit.Durable = false;
                    }
                });
            }

            switch (options.Transport)
            {
                case BusTransport.InMemory:
                    bus.UsingInMemory((context, cfg) => cfg.ConfigureEndpoints(context));
                    break;
                case BusTransport.RabbitMq:
                    bus.UsingRabbitMq((context, cfg) =>
                    {
                        cfg.Host(new Uri(options.RabbitMqUri));
                        cfg.ConfigureEndpoints(context);
                    });
                    break;
                default:
                    throw new InvalidOperationException($"unknown bus transport '{options.Transport}'");
            }
        });
        return services;
    }

    /// <summary>Feeds every consumer fault of the bus to a health check that turns them into an unhealthy <c>/health</c>.</summary>
    public static IServiceCollection AddConsumerFaultHealth(this IServiceCollection services)
    {
        services.AddSingleton<ConsumerFaultMonitor>();
        services.AddConsumeObserver(sp => sp.GetRequiredService<ConsumerFaultMonitor>());
        services.AddHealthChecks().Add(new Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckRegistration(
            "consumers", sp => sp.GetRequiredService<ConsumerFaultMonitor>(), failureStatus: null, tags: null));
        return services;
    }
}
