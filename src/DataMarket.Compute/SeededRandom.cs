using System.Numerics;

namespace DataMarket.Compute;

/// <summary>
/// Deterministic xoshiro256** generator. Unlike <see cref="Random"/>, its sequence is part of our
/// contract: the same seed gives the same numbers on every runtime version and machine.
/// </summary>
public sealed class SeededRandom
{
    private ulong _s0, _s1, _s2, _s3;
    private double _spareNormal;
    private bool _hasSpareNormal;

    public SeededRandom(ulong seed)
    {
        // SplitMix64 expands the seed so that small seeds still give well-mixed state.
        _s0 = SplitMix(ref seed);
        _s1 = SplitMix(ref seed);
        _s2 = SplitMix(ref seed);
        _s3 = SplitMix(ref seed);
    }

    /// <summary>One step of SplitMix64: advances <paramref name="state"/> by the golden gamma and returns its mix.</summary>
    public static ulong SplitMix(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = BitOperations.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitOperations.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, maxExclusive).</summary>
    public int NextInt(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExclusive);
        // Lemire's multiply-shift; the bias for int-sized ranges is below 2^-32 and irrelevant here.
        return (int)((NextUInt64() >> 32) * (ulong)maxExclusive >> 32);
    }

    /// <summary>Standard normal via the Box-Muller transform.</summary>
    public double NextNormal()
    {
        if (_hasSpareNormal)
        {
            _hasSpareNormal = false;
            return _spareNormal;
        }
        double u1 = 1.0 - NextDouble(); // (0, 1], so the log is finite
        double u2 = NextDouble();
        double radius = Math.Sqrt(-2.0 * Math.Log(u1));
        _spareNormal = radius * Math.Sin(2.0 * Math.PI * u2);
        _hasSpareNormal = true;
        return radius * Math.Cos(2.0 * Math.PI * u2);
    }

    public void FillUniform<T>(Span<T> destination, T low, T high) where T : IFloatingPointIeee754<T>
    {
        double lo = double.CreateTruncating(low), width = double.CreateTruncating(high) - lo;
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = T.CreateTruncating(lo + width * NextDouble());
        }
    }

    public void FillNormal<T>(Span<T> destination, T mean, T standardDeviation) where T : IFloatingPointIeee754<T>
    {
        double mu = double.CreateTruncating(mean), sigma = double.CreateTruncating(standardDeviation);
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = T.CreateTruncating(mu + sigma * NextNormal());
        }
    }

    /// <summary>Fisher-Yates shuffle.</summary>
    public void Shuffle<T>(Span<T> values)
    {
        for (int i = values.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (values[i], values[j]) = (values[j], values[i]);
        }
    }
}
