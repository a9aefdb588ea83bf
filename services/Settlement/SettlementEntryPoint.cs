namespace DataMarket.SettlementService;

/// <summary>A public type in the settlement service's assembly, so test hosts can find it.</summary>
public sealed class SettlementEntryPoint
{
    private SettlementEntryPoint()
    {
    }
}
