using DataMarket.Torch;
using DataMarket.Torch.Influence;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Shapley;
using DataMarket.Valuation.Statistics;

namespace DataMarket.ValuationWorker.Infrastructure;

/// <summary>
/// LoGra valuations on TorchSharp. libtorch loads on the first LoGra job, never at host start (a worker that only
/// runs KNN valuations never loads it), on the device named by <c>Torch:Device</c> (cpu by default); the choice is
/// logged once, then.
/// </summary>
public sealed class LograEngine(string? deviceName, ILogger<LograEngine> logger)
{
    /// <summary>
    /// Values the rows of every listing with one MLP proxy trained on their union; a seller's value is the sum over
    /// its rows, with its standard error over the test points. Progress is reported in finished test points.
    /// </summary>
    /// <remarks>
    /// With a <paramref name="checkpoint"/> the model is used as it is: it was trained on class indices, so every label
    /// must be one (0, 1, ...); without one, classes are numbered in sorted order of the labels.
    /// </remarks>
    public DatasetValuationResult Value(
        IReadOnlyList<TrainingPart> parts, TabularDataset test, string? checkpoint, IProgress<int>? progress, CancellationToken cancellationToken)
    {
        if (parts.Count == 0 || parts.All(p => p.Data.Rows == 0))
        {
            throw new ValuationRejectedException("There is no training data to value.");
        }

        TorchRuntime.Initialize(deviceName, description => logger.LogInformation("LoGra runs on {TorchDevice}", description));

        // Classes in sorted order over training and test labels, sellers in order of their first listing.
        var classes = ClassLabels.Indices([.. parts.Select(p => p.Data.Labels), test.Labels], checkpoint is not null,
            (source, row, message) => new ValuationRejectedException($"{(source < parts.Count ? $"listing {parts[source].Name}" : "the test task")}, row {row}: {message}"));
        var groupOrder = parts.Select(p => p.Group).Distinct(StringComparer.Ordinal).ToList();
        var groupIndex = groupOrder.Select((group, index) => (group, index)).ToDictionary(g => g.group, g => g.index, StringComparer.Ordinal);
        var width = test.FeatureCount;
        var train = new TabularData(
            parts.SelectMany(p => p.Data.Features).ToArray(), width, parts.SelectMany(p => p.Data.Labels).Select(l => classes[l]).ToArray())
        {
            Groups = parts.SelectMany(p => Enumerable.Repeat(groupIndex[p.Group], p.Data.Rows)).ToArray(),
        };
        var testData = new TabularData(test.Features, width, test.Labels.Select(l => classes[l]).ToArray());

        InfluenceResult result;
        try
        {
            result = TabularInfluence.Value(train, testData, new TabularInfluenceOptions { CheckpointPath = checkpoint },
                (stage, done, _) =>
                {
                    if (stage == "scoring")
                    {
                        progress?.Report((int)done);
                    }
                },
                cancellationToken);
        }
        catch (Exception exception) when (exception is DataMarket.Torch.Models.CheckpointException or ArgumentException)
        {
            // The checkpoint's file is this worker's copy: the buyer knows it as "the model".
            var message = checkpoint is null ? exception.Message : exception.Message.Replace(checkpoint, "the model", StringComparison.Ordinal);
            throw new ValuationRejectedException(message, exception);
        }

        var partValues = new List<ValueEstimate[]>();
        var offset = 0;
        foreach (var part in parts)
        {
            partValues.Add(Enumerable.Range(offset, part.Data.Rows).Select(i => new ValueEstimate(result.Values[i], result.StandardErrors[i])).ToArray());
            offset += part.Data.Rows;
        }

        var groupValues = groupOrder.Select((group, g) => (group, value: new ValueEstimate(result.GroupValues[g], result.GroupStandardErrors[g])))
            .ToDictionary(x => x.group, x => x.value, StringComparer.Ordinal);
        return new DatasetValuationResult(partValues, groupValues, groupOrder, new ValueEstimate(result.Total, result.TotalStandardError), test.Rows);
    }
}
