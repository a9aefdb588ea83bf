using DataMarket.Ledger.Storage;
using DataMarket.Ledger.Verification;

namespace DataMarket.Ledger.Projections;

/// <summary>Throws the projections away and replays the log into them, in one transaction that keeps writers out.</summary>
internal sealed class ProjectionRebuilder(StorageBackend backend)
{
    public Task<long> RebuildAsync(CancellationToken cancellationToken) =>
        backend.ReplaceProjectionsAsync(
            log =>
            {
                var (projection, errors, _) = LedgerVerifier.Replay(log);
                if (errors.Count > 0)
                {
                    throw new InvalidOperationException("The log does not replay cleanly: " + string.Join("; ", errors.Take(5)));
                }

                return projection;
            },
            cancellationToken);
}
