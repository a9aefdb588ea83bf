using DataMarket.Valuation.Shapley;

namespace DataMarket.ValuationWorker.Infrastructure;

/// <summary>Bound from the <c>Valuation</c> section (environment: <c>Valuation__Pool</c>, ...).</summary>
public sealed class ValuationWorkerOptions
{
    public const string SectionName = "Valuation";

    /// <summary><c>cpu</c> or <c>gpu</c>: which shard queue this worker consumes.</summary>
    public string Pool { get; set; } = "cpu";

    /// <summary>Whether a GPU pool runs in this market, so that <c>device: auto</c> sends shards there.</summary>
    public bool GpuPoolAvailable { get; set; }

    /// <summary>About this many (training point, test point) pairs per shard; sets the shard size from the job size.</summary>
    public long PairsPerShard { get; set; } = ShardPlan.DefaultPairsPerShard;

    /// <summary>
    /// Shards of one valuation queued or running at once (a sliding window; 0 sends them all at once). A large job thus
    /// never fills the queue ahead of a small one: with the catalog's limit on active valuations per buyer, one buyer
    /// holds at most that many times this many shards.
    /// </summary>
    public int MaxShardsInFlight { get; set; } = 4;
}
