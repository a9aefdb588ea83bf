using DataMarket.ServiceDefaults.Messaging;
using DataMarket.ServiceDefaults.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Microsoft.Extensions.DependencyInjection;

public static class TelemetryExtensions
{
    /// <summary>
    /// OpenTelemetry for a service: traces of HTTP calls and of MassTransit's publish/consume (MassTransit carries the
    /// W3C trace context in message headers, so one trace runs catalog -> bus -> worker -> catalog), and metrics from
    /// ASP.NET Core, the runtime, MassTransit and our own <c>DataMarket.*</c> meters. Metrics are always ready for a
    /// Prometheus scrape (<see cref="MapMetrics"/>); traces and metrics go over OTLP when an endpoint is configured.
    /// </summary>
    public static IServiceCollection AddDataMarketTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection(TelemetryOptions.SectionName).Get<TelemetryOptions>() ?? new TelemetryOptions();
        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(options.ServiceName ?? DefaultServiceName()))
            .WithTracing(tracing => tracing
                .AddSource(DataMarketTelemetry.Sources)
                .AddAspNetCoreInstrumentation(aspNet => aspNet.Filter = context => !IsProbe(context.Request.Path))
                .AddHttpClientInstrumentation())
            .WithMetrics(metrics => metrics
                .AddMeter(DataMarketTelemetry.Meters)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddPrometheusExporter());

        if (!string.IsNullOrWhiteSpace(options.OtlpEndpoint))
        {
            if (!Uri.TryCreate(options.OtlpEndpoint, UriKind.Absolute, out var endpoint))
            {
                throw new InvalidOperationException($"Telemetry:OtlpEndpoint is not an absolute URI: '{options.OtlpEndpoint}'");
            }

            telemetry.UseOtlpExporter(options.OtlpProtocol, endpoint);
        }
        else if (!string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            // The standard OTEL_EXPORTER_OTLP_* variables, as a collector's operator would set them.
            telemetry.UseOtlpExporter();
        }

        return services;
    }

    /// <summary>
    /// Reports the depth of <paramref name="queues"/> (names before the endpoint prefix) as <c>datamarket.queue.depth</c>
    /// when the bus runs on RabbitMQ; the in-memory bus has no broker to ask, so nothing is added there.
    /// </summary>
    public static IServiceCollection AddQueueDepthGauge(this IServiceCollection services, IConfiguration configuration, params string[] queues)
    {
        var bus = configuration.GetSection(BusOptions.SectionName).Get<BusOptions>() ?? new BusOptions();
        if (bus.Transport != BusTransport.RabbitMq)
        {
            return services;
        }

        var options = configuration.GetSection(TelemetryOptions.SectionName).Get<TelemetryOptions>() ?? new TelemetryOptions();
        var names = queues.Select(queue => ValuationQueues.Resolve(bus, queue)).ToArray();
        services.AddMetrics();
        services.AddHostedService(provider => new QueueDepthGauge(
            new Uri(bus.RabbitMqUri), names, options.QueueDepthInterval, provider.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), provider.GetRequiredService<Microsoft.Extensions.Logging.ILogger<QueueDepthGauge>>()));
        return services;
    }

    /// <summary>
    /// <c>/metrics</c> in Prometheus text format, for the internal services only: the public edge does not map it, and
    /// the network policies keep outside traffic away from the services.
    /// </summary>
    public static IEndpointConventionBuilder MapMetrics(this IEndpointRouteBuilder app) =>
        app.MapPrometheusScrapingEndpoint().AllowAnonymous();

    // Probes arrive every few seconds from the orchestrator; tracing them would drown the traces people look for.
    private static bool IsProbe(PathString path) =>
        path.StartsWithSegments("/health") || path.StartsWithSegments("/alive") || path.StartsWithSegments("/metrics");

    private static string DefaultServiceName() =>
        System.Reflection.Assembly.GetEntryAssembly()?.GetName().Name ?? "datamarket";
}
