namespace DataMarket.Valuation.Statistics;

/// <summary>SplitMix64 (Steele, Lea and Flood 2014): a fixed 64-bit mix whose sequence is the same on every runtime and machine.</summary>
public static class SplitMix64
{
    /// <summary>One step: advances <paramref name="state"/> by the golden gamma and returns its mix.</summary>
    public static ulong Next(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
