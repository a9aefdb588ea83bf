using System.Numerics;

namespace DataMarket.Learning.Layers;

/// <summary>y = (x - mean) / sqrt(var + eps) * gamma + beta over each row (biased variance, as in PyTorch).</summary>
public sealed class LayerNorm<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly T _epsilon;
    private T[]? _normalized;
    private T[]? _inverseStd;

    public LayerNorm(int width, double epsilon = 1e-5) : base(Compute.ComputeBackends.Managed)
    {
        Width = width;
        _epsilon = T.CreateTruncating(epsilon);
        Gamma = new Parameter<T>("weight", width);
        Beta = new Parameter<T>("bias", width);
        Array.Fill(Gamma.Value, T.One);
    }

    public int Width { get; }

    public Parameter<T> Gamma { get; }

    public Parameter<T> Beta { get; }

    public override T[] Forward(T[] input, BatchShape shape)
    {
        int rows = input.Length / Width;
        var output = new T[input.Length];
        _normalized = new T[input.Length];
        _inverseStd = new T[rows];
        T n = T.CreateTruncating(Width);
        for (int r = 0; r < rows; r++)
        {
            var x = input.AsSpan(r * Width, Width);
            T mean = T.Zero;
            foreach (T v in x)
            {
                mean += v;
            }
            mean /= n;
            T variance = T.Zero;
            foreach (T v in x)
            {
                variance += (v - mean) * (v - mean);
            }
            variance /= n;
            T inverseStd = T.One / T.Sqrt(variance + _epsilon);
            _inverseStd[r] = inverseStd;
            for (int j = 0; j < Width; j++)
            {
                T normalized = (x[j] - mean) * inverseStd;
                _normalized[r * Width + j] = normalized;
                output[r * Width + j] = normalized * Gamma.Value[j] + Beta.Value[j];
            }
        }
        return output;
    }

    public override T[] Backward(T[] outputGradient)
    {
        var normalized = Cached(_normalized);
        var inverseStd = Cached(_inverseStd);
        int rows = inverseStd.Length;
        var inputGradient = new T[normalized.Length];
        T n = T.CreateTruncating(Width);
        for (int r = 0; r < rows; r++)
        {
            // dx = rstd/N * (N dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)), with dxhat = dy * gamma
            T sumGradient = T.Zero, sumGradientTimesNormalized = T.Zero;
            for (int j = 0; j < Width; j++)
            {
                int i = r * Width + j;
                T dy = outputGradient[i];
                Gamma.Gradient[j] += dy * normalized[i];
                Beta.Gradient[j] += dy;
                T dNormalized = dy * Gamma.Value[j];
                sumGradient += dNormalized;
                sumGradientTimesNormalized += dNormalized * normalized[i];
            }
            for (int j = 0; j < Width; j++)
            {
                int i = r * Width + j;
                T dNormalized = outputGradient[i] * Gamma.Value[j];
                inputGradient[i] = inverseStd[r] / n * (n * dNormalized - sumGradient - normalized[i] * sumGradientTimesNormalized);
            }
        }
        return inputGradient;
    }

    public override IEnumerable<(string Name, Parameter<T> Parameter)> NamedParameters() => [("weight", Gamma), ("bias", Beta)];
}
