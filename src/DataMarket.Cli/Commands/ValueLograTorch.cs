using System.Globalization;
using DataMarket.Cli.Output;
using DataMarket.Torch;
using DataMarket.Torch.Influence;
using DataMarket.Torch.Models;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Cli.Commands;

/// <summary>
/// The TorchSharp path of <c>value logra</c> (tabular data): <c>--engine torch</c>, <c>--mode self</c>, or a PyTorch
/// checkpoint (.pt/.pth/.bin) given to <c>--model</c>. The device comes from DATAMARKET_TORCH_DEVICE (cpu by default).
/// </summary>
internal static class ValueLograTorch
{
    public static bool IsPyTorchCheckpoint(string? model) =>
        model is not null && Path.GetExtension(model).ToLowerInvariant() is ".pt" or ".pth" or ".bin";

    public static int Run(ValueLograCommand.Arguments arguments, TextWriter error, CancellationToken cancellationToken)
    {
        if (arguments.Store is not null)
        {
            error.WriteLine("error: --store is not supported with the torch engine yet (its gradient store lives in memory)");
            return ExitCodes.BadInput;
        }

        if (DataMarket.Valuation.LoGra.TextDatasetReader.IsTextFile(arguments.Train.FullName))
        {
            error.WriteLine($"error: {arguments.Train.FullName}: the torch engine values tabular data only so far; use --engine builtin for text");
            return ExitCodes.BadInput;
        }

        try
        {
            // Chosen once per process; every run says which device it is on.
            TorchRuntime.InitializeFromEnvironment();
            error.WriteLine($"torch: {TorchRuntime.Description}");
        }
        catch (TorchUnavailableException exception)
        {
            error.WriteLine($"error: {exception.Message}");
            return ExitCodes.Failure;
        }

        var checkpoint = arguments.Model is { } model && model is not "mlp" ? model : null;
        try
        {
            var test = ValueKnnShapleyCommand.LoadFile(arguments.Test, arguments.LabelColumn, expectedFeatures: null);
            var train = ValueKnnShapleyCommand.LoadFile(arguments.Train, arguments.LabelColumn, test.FeatureCount);
            if (arguments.Pairwise is not null && (long)test.Rows * train.Rows > ValueLograCommand.MaxPairwiseCells)
            {
                error.WriteLine($"error: --pairwise is for small inputs: {test.Rows} x {train.Rows} scores exceed {ValueLograCommand.MaxPairwiseCells:N0}.");
                return ExitCodes.BadInput;
            }

            // A checkpoint was trained on class indices; a proxy trained here numbers the classes in sorted order.
            Func<string, string, long, int> classOf;
            if (checkpoint is null)
            {
                var classes = train.Labels.Concat(test.Labels).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
                    .Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
                classOf = (label, _, _) => classes[label];
            }
            else
            {
                classOf = (label, source, row) => int.TryParse(label, NumberStyles.None, CultureInfo.InvariantCulture, out var index)
                    ? index
                    : throw new DatasetFormatException(source, row, arguments.LabelColumn, $"a checkpoint needs class indices 0, 1, ... as labels, got '{label}'");
            }

            TabularData Convert(TabularDataset data, FileInfo file) => new(data.Features, data.FeatureCount,
                data.Labels.Select((label, row) => classOf(label, file.FullName, row + 1)).ToArray());

            var options = new TabularInfluenceOptions
            {
                Mode = arguments.Mode switch { "self" => InfluenceMode.Self, "cosine" => InfluenceMode.Cosine, _ => InfluenceMode.Dot },
                CheckpointPath = checkpoint,
                KeepPairwise = arguments.Pairwise is not null && arguments.Mode != "self",
                Training = new TrainingOptions(Epochs: arguments.Epochs, BatchSize: 32, Seed: arguments.Seed),
                Logra = new TorchLograOptions
                {
                    Rank = arguments.Rank,
                    Init = arguments.Init == "pca" ? ProjectionInit.Pca : ProjectionInit.Random,
                    Hessian = arguments.Hessian == "identity" ? Preconditioning.Identity : Preconditioning.Raw,
                    Damping = arguments.Damping,
                    Seed = arguments.Seed,
                    StoreType = arguments.DType == "float16" ? TorchSharp.torch.ScalarType.Float16 : TorchSharp.torch.ScalarType.Float32,
                    Layers = arguments.Layers?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                },
            };
            var result = TabularInfluence.Value(Convert(train, arguments.Train), Convert(test, arguments.Test), options,
                (stage, done, total) => error.WriteLine($"{stage}: {done}/{total}"), cancellationToken);
            ValueFiles.WritePoints(arguments.Output.FullName, result.Values.Select((v, i) => new ValueEstimate(v, result.StandardErrors[i])).ToArray());
            if (result.Pairwise is not null)
            {
                ValueLograCommand.WritePairwise(arguments.Pairwise!.FullName, result.Pairwise);
            }

            return ExitCodes.Success;
        }
        catch (Exception exception) when (exception is DatasetFormatException or CheckpointException or ArgumentException)
        {
            error.WriteLine($"error: {exception.Message}");
            return ExitCodes.BadInput;
        }
    }
}
