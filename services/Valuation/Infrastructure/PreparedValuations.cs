using DataMarket.Contracts;
using DataMarket.Valuation.Shapley;

namespace DataMarket.ValuationWorker.Infrastructure;

/// <summary>
/// The one valuation this worker has loaded and encoded, kept for its next shard: consecutive shards of the same
/// valuation skip reading the datasets again. One entry only, so a worker's memory is one training set's ranking
/// state plus one block of test points, whatever else is queued.
/// </summary>
public sealed class PreparedValuations
{
    private readonly Lock _gate = new();
    private (Guid Id, ShardedValuation Valuation)? _current;

    public ShardedValuation Get(RequestValuation request, Func<RequestValuation, ShardedValuation> prepare)
    {
        lock (_gate)
        {
            if (_current is { } current && current.Id == request.ValuationId)
            {
                return current.Valuation;
            }

            // Drop the old one before loading the next, so two never sit in memory together.
            _current = null;
            var valuation = prepare(request);
            _current = (request.ValuationId, valuation);
            return valuation;
        }
    }
}
