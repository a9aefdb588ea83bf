namespace DataMarket.ServiceDefaults.Telemetry;

/// <summary>The activity sources and meters a service exports: MassTransit's and every one of ours (<c>DataMarket.*</c>).</summary>
public static class DataMarketTelemetry
{
    public static readonly string[] Sources = ["MassTransit", "DataMarket.*"];

    public static readonly string[] Meters = ["MassTransit", "DataMarket.*"];
}
