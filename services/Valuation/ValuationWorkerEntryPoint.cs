namespace DataMarket.ValuationWorker;

/// <summary>A public type in the worker assembly, so test hosts can find the service's entry point.</summary>
public sealed class ValuationWorkerEntryPoint
{
    private ValuationWorkerEntryPoint()
    {
    }
}
