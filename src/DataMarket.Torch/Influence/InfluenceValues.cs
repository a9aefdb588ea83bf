using static TorchSharp.torch;

namespace DataMarket.Torch.Influence;

/// <summary>
/// Per training row: value and standard error over the test points (NaN for self-influence); per group (seller) the
/// sum over its rows with its standard error over the test points; the total over every row likewise.
/// </summary>
public sealed record InfluenceResult(double[] Values, double[] StandardErrors, double[,]? Pairwise, long Dimension)
{
    public double[] GroupValues { get; init; } = [];
    public double[] GroupStandardErrors { get; init; } = [];
    public double Total { get; init; }
    public double TotalStandardError { get; init; } = double.NaN;
}

/// <summary>Progress of a LoGra valuation: stage ("training", "logging", "scoring"), done and total (test points when scoring).</summary>
public delegate void InfluenceProgress(string stage, long done, long total);

/// <summary>
/// The part of a LoGra valuation after the model: logs the training store, fits the preconditioner and scores the test
/// points one fixed block at a time, summing in test-point order in float64 (so the bits depend on nothing but the
/// inputs, options and block size).
/// </summary>
internal static class InfluenceValues
{
    public static InfluenceResult Compute(
        nn.Module model, long trainRows, Func<Tensor, Tensor> trainLoss, long testRows, Func<Tensor, Tensor> testLoss,
        TorchLograOptions lograOptions, InfluenceMode mode, int testBlock, bool keepPairwise, int[]? groups, int groupCount,
        InfluenceProgress? progress, CancellationToken cancellationToken)
    {
        using var logra = TorchLogra.Create(model, lograOptions, trainRows, trainLoss);
        progress?.Invoke("logging", 0, trainRows);
        using var store = logra.Log(trainRows, trainLoss);
        progress?.Invoke("logging", trainRows, trainRows);
        cancellationToken.ThrowIfCancellationRequested();
        logra.Fit(store);

        var rows = (int)trainRows;
        var values = new double[rows];
        var errors = new double[rows];
        if (mode == InfluenceMode.Self)
        {
            using var self = logra.SelfInfluence(store);
            self.data<double>().CopyTo(values, 0);
            Array.Fill(errors, double.NaN);
            return new InfluenceResult(values, errors, null, logra.Dimension);
        }

        var sum = new double[rows];
        var squares = new double[rows];
        var groupSum = new double[groupCount];
        var groupSquares = new double[groupCount];
        var perGroup = new double[groupCount];
        double totalSum = 0, totalSquares = 0;
        var pairwise = keepPairwise ? new double[testRows, rows] : null;
        progress?.Invoke("scoring", 0, testRows);
        using var queries = logra.Log(testRows, testLoss);
        for (long start = 0; start < testRows; start += testBlock)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var count = Math.Min(testBlock, testRows - start);
            using var scores = logra.Score(queries.narrow(0, start, count), store, mode);
            var block = scores.data<double>().ToArray();
            for (var r = 0; r < count; r++)
            {
                Array.Clear(perGroup);
                double total = 0;
                for (var t = 0; t < rows; t++)
                {
                    var s = block[r * rows + t];
                    sum[t] += s;
                    squares[t] += s * s;
                    total += s;
                    if (groups is not null)
                    {
                        perGroup[groups[t]] += s;
                    }

                    if (pairwise is not null)
                    {
                        pairwise[start + r, t] = s;
                    }
                }

                totalSum += total;
                totalSquares += total * total;
                for (var g = 0; g < groupCount; g++)
                {
                    groupSum[g] += perGroup[g];
                    groupSquares[g] += perGroup[g] * perGroup[g];
                }
            }

            progress?.Invoke("scoring", start + count, testRows);
        }

        for (var t = 0; t < rows; t++)
        {
            (values[t], errors[t]) = Moments(sum[t], squares[t], testRows);
        }

        var groupValues = new double[groupCount];
        var groupErrors = new double[groupCount];
        for (var g = 0; g < groupCount; g++)
        {
            (groupValues[g], groupErrors[g]) = Moments(groupSum[g], groupSquares[g], testRows);
        }

        var (totalValue, totalError) = Moments(totalSum, totalSquares, testRows);
        return new InfluenceResult(values, errors, pairwise, logra.Dimension)
        {
            GroupValues = groupValues,
            GroupStandardErrors = groupErrors,
            Total = totalValue,
            TotalStandardError = totalError,
        };
    }

    // Mean over the test points and the standard error of that mean.
    private static (double Mean, double Error) Moments(double sum, double squares, long count)
    {
        var mean = sum / count;
        var error = count > 1 ? Math.Sqrt(Math.Max(0, (squares - count * mean * mean) / (count - 1)) / count) : double.NaN;
        return (mean, error);
    }
}
