namespace DataMarket.Catalog;

/// <summary>A public type in the Catalog assembly, so test hosts can find the service's entry point.</summary>
public sealed class CatalogEntryPoint
{
    private CatalogEntryPoint()
    {
    }
}
