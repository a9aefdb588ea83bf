namespace DataMarket.Gateway;

/// <summary>A public type in the Gateway assembly, so test hosts can find the service's entry point.</summary>
public sealed class GatewayEntryPoint
{
    private GatewayEntryPoint()
    {
    }
}
