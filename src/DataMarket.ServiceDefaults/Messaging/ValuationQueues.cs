namespace DataMarket.ServiceDefaults.Messaging;

/// <summary>
/// Queue names that live outside the code as well: KEDA scales the valuation workers on the length of these queues
/// (k8s/base/keda.yaml), and a test checks that the rendered manifests name the same queues.
/// </summary>
public static class ValuationQueues
{
    /// <summary>Valuation requests; the worker that takes one coordinates its shards.</summary>
    public const string Requests = "request-valuation";

    /// <summary>Shard completions, merged by the coordinating side.</summary>
    public const string ShardReports = "valuation-shard-reports";

    /// <summary>Valuation shards any CPU worker may take (competing consumers, one shard at a time per worker).</summary>
    public const string Shards = "valuation-shards";

    /// <summary>Shards of valuations that asked for a GPU; only the GPU pool consumes them.</summary>
    public const string GpuShards = "valuation-shards-gpu";

    /// <summary>The queue's name on the broker: prefixed like every endpoint when <see cref="BusOptions.EndpointPrefix"/> is set.</summary>
    public static string Resolve(BusOptions options, string queue)
    {
        ArgumentNullException.ThrowIfNull(options);
        return string.IsNullOrEmpty(options.EndpointPrefix) ? queue : $"{options.EndpointPrefix}-{queue}";
    }
}
