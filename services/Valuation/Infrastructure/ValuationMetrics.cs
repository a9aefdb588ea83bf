using System.Diagnostics.Metrics;

namespace DataMarket.ValuationWorker.Infrastructure;

/// <summary>The worker's own instruments (meter <c>DataMarket.Valuation</c>), exported with the service's telemetry.</summary>
public static class ValuationMetrics
{
    public const string MeterName = "DataMarket.Valuation";

    private static readonly Meter s_meter = new(MeterName);

    public static Histogram<double> ShardDuration { get; } = s_meter.CreateHistogram<double>("datamarket.valuation.shard.duration", "s", "Time to compute one shard");

    public static Counter<long> Completed { get; } = s_meter.CreateCounter<long>("datamarket.valuation.completed", description: "Valuations merged and published");

    public static Counter<long> Failed { get; } = s_meter.CreateCounter<long>("datamarket.valuation.failed", description: "Valuations failed for bad data");
}
