namespace DataMarket.Valuation;

/// <summary>The valuation methods a buyer can ask for, by the names the API, the bus and the CLI use.</summary>
public static class ValuationMethods
{
    /// <summary>Exact KNN-Shapley per point; per-seller value is the sum of its points.</summary>
    public const string KnnShapley = "knn-shapley";

    /// <summary>Exact asymmetric KNN-Shapley with sellers as ordered groups (earlier listings first).</summary>
    public const string AsymmetricKnnShapley = "asymmetric-knn-shapley";

    /// <summary>
    /// Asymmetric KNN-Shapley over replication tiers: sellers who copy an earlier listing go to a later tier and earn
    /// only what their copy adds. The valuation the revenue split uses.
    /// </summary>
    public const string TieredKnnShapley = "tiered-knn-shapley";

    /// <summary>Sellers as the players of the KNN utility game (no per-point values).</summary>
    public const string SellerShapley = "seller-shapley";

    /// <summary>LoGra influence of each point on a proxy model trained on the listings (positive = helps the task).</summary>
    public const string Logra = "logra";

    public const string Classification = "classification";

    public const string Regression = "regression";

    public const int DefaultK = 5;

    public static IReadOnlyList<string> All { get; } = [KnnShapley, AsymmetricKnnShapley, TieredKnnShapley, SellerShapley, Logra];

    public static IReadOnlyList<string> TaskTypes { get; } = [Classification, Regression];
}
