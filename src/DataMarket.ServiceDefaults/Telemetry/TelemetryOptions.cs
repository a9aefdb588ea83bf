using OpenTelemetry.Exporter;

namespace DataMarket.ServiceDefaults.Telemetry;

/// <summary>Bound from the <c>Telemetry</c> section (environment: <c>Telemetry__OtlpEndpoint</c>, ...).</summary>
public sealed class TelemetryOptions
{
    public const string SectionName = "Telemetry";

    /// <summary>The <c>service.name</c> on every span and metric; the entry assembly's name when unset.</summary>
    public string? ServiceName { get; set; }

    /// <summary>
    /// Where traces and metrics are pushed (an OpenTelemetry collector, e.g. <c>http://otel-collector:4317</c>). Unset:
    /// nothing is pushed unless the standard <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set; <c>/metrics</c> works either way.
    /// </summary>
    public string? OtlpEndpoint { get; set; }

    public OtlpExportProtocol OtlpProtocol { get; set; } = OtlpExportProtocol.Grpc;

    /// <summary>How often the valuation worker reads its queues' depths from the broker.</summary>
    public TimeSpan QueueDepthInterval { get; set; } = TimeSpan.FromSeconds(15);
}
