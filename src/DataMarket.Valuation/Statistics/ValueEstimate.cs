namespace DataMarket.Valuation.Statistics;

/// <summary>A value with its standard error over the buyer's test points, and a normal 95% interval.</summary>
public readonly record struct ValueEstimate(double Value, double StandardError)
{
    public const double Z95 = 1.959963984540054;

    public double Lower95 => Value - Z95 * StandardError;

    public double Upper95 => Value + Z95 * StandardError;
}
