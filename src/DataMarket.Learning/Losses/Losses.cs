using System.Numerics;
using DataMarket.Compute;

namespace DataMarket.Learning.Losses;

public enum Reduction
{
    /// <summary>Average over counted rows (rows whose target is the ignore index are not counted).</summary>
    Mean,
    /// <summary>Sum over rows; per-example gradients for valuation use this.</summary>
    Sum,
}

/// <summary>A loss value with dLoss/dInput for the same rows.</summary>
public sealed record LossResult<T>(double Value, T[] Gradient, int CountedRows) where T : unmanaged, IFloatingPointIeee754<T>;

public static class SoftmaxCrossEntropy
{
    /// <summary>
    /// Cross-entropy of row-wise softmax(logits) against integer targets. Rows whose target equals
    /// <paramref name="ignoreIndex"/> contribute neither loss nor gradient. With mean reduction and no
    /// counted rows the loss is 0.
    /// </summary>
    public static LossResult<T> Compute<T>(ReadOnlySpan<T> logits, int classes, ReadOnlySpan<int> targets,
        Reduction reduction = Reduction.Mean, int ignoreIndex = -100) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rows = targets.Length;
        if (logits.Length != rows * classes)
        {
            throw new ArgumentException($"Logits hold {logits.Length} values; {rows} targets x {classes} classes need {rows * classes}.");
        }
        var gradient = new T[logits.Length];
        RowOps.LogSoftmaxRows(logits, gradient, classes);
        int counted = 0;
        double total = 0;
        for (int r = 0; r < rows; r++)
        {
            if (targets[r] != ignoreIndex)
            {
                if ((uint)targets[r] >= (uint)classes)
                {
                    throw new ArgumentOutOfRangeException(nameof(targets), $"Target {targets[r]} in row {r} is outside [0, {classes}).");
                }
                counted++;
            }
        }
        T scale = reduction == Reduction.Mean && counted > 0 ? T.One / T.CreateTruncating(counted) : T.One;
        for (int r = 0; r < rows; r++)
        {
            var row = gradient.AsSpan(r * classes, classes);
            if (targets[r] == ignoreIndex)
            {
                row.Clear();
                continue;
            }
            total -= double.CreateTruncating(row[targets[r]]);
            for (int j = 0; j < classes; j++)
            {
                row[j] = T.Exp(row[j]) * scale; // softmax - onehot
            }
            row[targets[r]] -= scale;
        }
        double value = reduction == Reduction.Mean ? (counted > 0 ? total / counted : 0) : total;
        return new LossResult<T>(value, gradient, counted);
    }
}

public static class MeanSquaredError
{
    /// <summary>Sum over all elements of (prediction - target)², divided by the element count for mean reduction.</summary>
    public static LossResult<T> Compute<T>(ReadOnlySpan<T> predictions, ReadOnlySpan<T> targets, Reduction reduction = Reduction.Mean)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (predictions.Length != targets.Length)
        {
            throw new ArgumentException($"{predictions.Length} predictions but {targets.Length} targets.");
        }
        var gradient = new T[predictions.Length];
        double total = 0;
        T factor = T.CreateTruncating(reduction == Reduction.Mean && predictions.Length > 0 ? 2.0 / predictions.Length : 2.0);
        for (int i = 0; i < predictions.Length; i++)
        {
            T difference = predictions[i] - targets[i];
            total += double.CreateTruncating(difference * difference);
            gradient[i] = factor * difference;
        }
        double value = reduction == Reduction.Mean && predictions.Length > 0 ? total / predictions.Length : total;
        return new LossResult<T>(value, gradient, predictions.Length);
    }
}
