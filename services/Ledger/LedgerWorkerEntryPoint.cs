namespace DataMarket.LedgerWorker;

/// <summary>A public type in the ledger worker assembly, so test hosts can find the service's entry point.</summary>
public sealed class LedgerWorkerEntryPoint
{
    private LedgerWorkerEntryPoint()
    {
    }
}
