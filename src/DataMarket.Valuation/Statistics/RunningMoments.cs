namespace DataMarket.Valuation.Statistics;

/// <summary>
/// Welford means and sums of squared deviations for a vector of quantities observed once per sample
/// (here: once per buyer test point). Partial accumulators from parallel workers merge exactly (Chan et al.).
/// </summary>
public sealed class RunningMoments
{
    private readonly double[] _mean;
    private readonly double[] _m2;

    public RunningMoments(int length)
    {
        _mean = new double[length];
        _m2 = new double[length];
    }

    /// <summary>Rebuilds an accumulator from its state (a shard's partial moments read back from storage).</summary>
    public static RunningMoments FromState(long count, double[] mean, double[] m2)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(m2);
        if (mean.Length != m2.Length)
        {
            throw new ArgumentException($"{mean.Length} means but {m2.Length} sums of squares");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var moments = new RunningMoments(mean.Length) { Count = count };
        mean.CopyTo(moments._mean, 0);
        m2.CopyTo(moments._m2, 0);
        return moments;
    }

    public long Count { get; private set; }

    /// <summary>The running means, for storing the state.</summary>
    public ReadOnlySpan<double> Means => _mean;

    /// <summary>The sums of squared deviations from the mean, for storing the state.</summary>
    public ReadOnlySpan<double> SquaredDeviations => _m2;

    public int Length => _mean.Length;

    public void Add(ReadOnlySpan<double> sample)
    {
        if (sample.Length != _mean.Length)
        {
            throw new ArgumentException($"sample has {sample.Length} values, expected {_mean.Length}", nameof(sample));
        }

        Count++;

        // One division per sample rather than per element: this runs over every training point per test point.
        var reciprocal = 1.0 / Count;
        for (var i = 0; i < sample.Length; i++)
        {
            var delta = sample[i] - _mean[i];
            _mean[i] += delta * reciprocal;
            _m2[i] += delta * (sample[i] - _mean[i]);
        }
    }

    public void Merge(RunningMoments other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Length != Length)
        {
            throw new ArgumentException("lengths differ", nameof(other));
        }

        if (other.Count == 0)
        {
            return;
        }

        if (Count == 0)
        {
            other._mean.CopyTo(_mean, 0);
            other._m2.CopyTo(_m2, 0);
            Count = other.Count;
            return;
        }

        double na = Count, nb = other.Count, n = na + nb;
        for (var i = 0; i < _mean.Length; i++)
        {
            var delta = other._mean[i] - _mean[i];
            _mean[i] += delta * nb / n;
            _m2[i] += other._m2[i] + delta * delta * na * nb / n;
        }

        Count += other.Count;
    }

    /// <summary>Forgets every sample, keeping the length.</summary>
    public void Clear()
    {
        Array.Clear(_mean);
        Array.Clear(_m2);
        Count = 0;
    }

    public double Mean(int index) => _mean[index];

    /// <summary>Standard error of the mean, sd / sqrt(n) with the n - 1 sample variance; NaN with fewer than two samples.</summary>
    public double StandardError(int index) =>
        Count < 2 ? double.NaN : Math.Sqrt(Math.Max(0, _m2[index]) / (Count - 1) / Count);

    public ValueEstimate Estimate(int index) => new(Mean(index), StandardError(index));

    public ValueEstimate[] Estimates()
    {
        var result = new ValueEstimate[Length];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = Estimate(i);
        }

        return result;
    }
}
