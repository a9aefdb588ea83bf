namespace DataMarket.Settlement.Pricing;

/// <summary>One version of a listing: the fraction of its fixed shuffle it sells, and its price in cents.</summary>
public sealed record VersionPrice(decimal Fraction, long Price);

/// <summary>
/// A listing's price curve over nested samples, checked when published. Arbitrage-free means no buyer can get the
/// data of a version for less by buying others: prices never fall as the fraction grows, and two versions whose
/// fractions add up to at least a third's cost at least as much (p(f3) &lt;= p(f1) + p(f2) when f1 + f2 &gt;= f3),
/// which on a grid is what subadditivity, p(f1 + f2) &lt;= p(f1) + p(f2), asks of the points that exist.
/// </summary>
public sealed class PriceCurve
{
    /// <summary>A curve is checked over every pair of its points against every point; this keeps that cheap.</summary>
    public const int MaximumVersions = 100;

    private PriceCurve(IReadOnlyList<VersionPrice> points) => Points = points;

    /// <summary>The versions by increasing fraction.</summary>
    public IReadOnlyList<VersionPrice> Points { get; }

    /// <summary>Checks the curve and returns it sorted; refuses it with the violating fractions named.</summary>
    public static PriceCurve Publish(IReadOnlyList<VersionPrice> versions)
    {
        ArgumentNullException.ThrowIfNull(versions);
        if (versions.Count == 0)
        {
            throw new SettlementInputException("versions", "a price curve needs at least one version");
        }

        if (versions.Count > MaximumVersions)
        {
            throw new SettlementInputException("versions", $"at most {MaximumVersions} versions, got {versions.Count}");
        }

        foreach (var version in versions)
        {
            if (version.Fraction is <= 0m or > 1m)
            {
                throw new SettlementInputException($"versions[{version.Fraction}].fraction", "must be in (0, 1]");
            }

            if (version.Price < 0)
            {
                throw new SettlementInputException($"versions[{version.Fraction}].price", $"must be at least 0 cents, got {version.Price}");
            }
        }

        var sorted = versions.OrderBy(v => v.Fraction).ToList();
        for (var i = 1; i < sorted.Count; i++)
        {
            if (sorted[i].Fraction == sorted[i - 1].Fraction)
            {
                throw new SettlementInputException($"versions[{sorted[i].Fraction}].fraction", "appears more than once");
            }

            if (sorted[i].Price < sorted[i - 1].Price)
            {
                throw new SettlementInputException(
                    $"versions[{sorted[i].Fraction}].price",
                    $"not non-decreasing: fraction {sorted[i].Fraction} costs {sorted[i].Price} cents, less than fraction {sorted[i - 1].Fraction} at {sorted[i - 1].Price} cents");
            }
        }

        foreach (var target in sorted)
        {
            for (var a = 0; a < sorted.Count; a++)
            {
                for (var b = a; b < sorted.Count; b++)
                {
                    var (first, second) = (sorted[a], sorted[b]);
                    // Both prices are at most a long, so their sum fits a decimal exactly.
                    if (first.Fraction + second.Fraction >= target.Fraction && target.Fraction > second.Fraction
                        && (decimal)first.Price + second.Price < target.Price)
                    {
                        throw new SettlementInputException(
                            $"versions[{target.Fraction}].price",
                            $"not subadditive: fractions {first.Fraction} and {second.Fraction} together cost {(decimal)first.Price + second.Price} cents, less than fraction {target.Fraction} at {target.Price} cents");
                    }
                }
            }
        }

        return new PriceCurve(sorted);
    }

    public long PriceOf(decimal fraction) =>
        Points.FirstOrDefault(p => p.Fraction == fraction)?.Price
        ?? throw new SettlementInputException("fraction", $"no version sells fraction {fraction} (offered: {string.Join(", ", Points.Select(p => p.Fraction))})");
}

/// <summary>
/// Nested samples: version f of a listing is the first round(f x rows) rows of one fixed shuffle of the listing, so a
/// smaller version is always contained in a larger one and a purchase downloads exactly its sample.
/// </summary>
public static class NestedSample
{
    /// <summary>Row indices of the sample, in shuffle order. The shuffle depends only on the seed and the row count.</summary>
    public static int[] Rows(int rowCount, decimal fraction, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rowCount);
        if (fraction is <= 0m or > 1m)
        {
            throw new SettlementInputException("fraction", $"must be in (0, 1], got {fraction}");
        }

        // A seeded System.Random keeps its legacy generator across .NET versions; the Fisher-Yates loop is written
        // out so the shuffle does not depend on how a library method draws from it.
        var shuffle = Enumerable.Range(0, rowCount).ToArray();
        var random = new Random(seed);
        for (var i = rowCount - 1; i > 0; i--)
        {
            var j = random.Next(i + 1);
            (shuffle[i], shuffle[j]) = (shuffle[j], shuffle[i]);
        }

        var take = (int)Money.RoundHalfUp(fraction * rowCount);
        return shuffle[..take];
    }
}
