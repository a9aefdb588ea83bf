using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DataMarket.Cli.Output;
using DataMarket.Torch;
using DataMarket.Torch.Influence;
using DataMarket.Torch.Models;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Gpu;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Cli.Commands;

/// <summary>
/// <c>datamarket value logra</c>: influence-function data values from a proxy model's projected gradients
/// (LoGra, Choe et al. 2024) on TorchSharp. Tabular files train an MLP proxy; JSON lines with a "text" field train a
/// byte-level GPT; <c>--model</c> takes a safetensors or PyTorch state-dict checkpoint instead. The torch device comes
/// from DATAMARKET_TORCH_DEVICE (cpu by default).
/// </summary>
public static class ValueLograCommand
{
    /// <summary>Above this many test x train pairs --pairwise is refused: the file would be too large to be useful.</summary>
    public const long MaxPairwiseCells = 10_000_000;

    /// <summary>Projection rank per side by default (LogIX's); each side is clamped to its layer's width.</summary>
    public const int DefaultRank = 64;

    public static Command Build()
    {
        var train = new Option<FileInfo>("--train") { Description = "Training data: CSV with a header, JSONL with features, or JSONL with a \"text\" field.", Required = true };
        var test = new Option<FileInfo>("--test") { Description = "The buyer's test data, same format.", Required = true };
        var model = new Option<string>("--model") { Description = "Proxy model: mlp (tabular), gpt (text), or a checkpoint used as is (.safetensors, or a torch.save state dict .pt/.pth/.bin; labels are then class indices). Default: by data type." };
        var rank = new Option<int>("--rank") { Description = "Projection rank per side of each watched layer (clamped to the layer's widths).", DefaultValueFactory = _ => DefaultRank };
        var init = new Option<string>("--init") { Description = "Projection initialisation: random or pca.", DefaultValueFactory = _ => "random" };
        init.AcceptOnlyFromAmong("random", "pca");
        var hessian = new Option<string>("--hessian") { Description = "Preconditioner: raw (damped empirical Fisher) or identity.", DefaultValueFactory = _ => "raw" };
        hessian.AcceptOnlyFromAmong("raw", "identity");
        var damping = new Option<double?>("--damping") { Description = "Absolute damping λ; default 0.3 x the mean eigenvalue per layer." };
        var mode = new Option<string>("--mode") { Description = "Score: dot (value to the test task), cosine (training gradients normalised), or self (each training row's self-influence: finds mislabelled rows).", DefaultValueFactory = _ => "dot" };
        mode.AcceptOnlyFromAmong("dot", "cosine", "self");
        var seed = new Option<ulong>("--seed") { Description = "Seed for the proxy model, its training order and the projections.", DefaultValueFactory = _ => 1UL };
        var dtype = new Option<string>("--dtype") { Description = "Element type of the gradient store: float32 or float16.", DefaultValueFactory = _ => "float32" };
        dtype.AcceptOnlyFromAmong("float32", "float16");
        var layers = new Option<string?>("--layers") { Description = "Comma-separated name filters of the Linear layers to watch: a layer is watched when its name contains one (default: all)." };
        var epochs = new Option<int>("--epochs") { Description = "Proxy training epochs.", DefaultValueFactory = _ => 20 };
        var labelColumn = new Option<string>("--label-column") { Description = "Name of the label column or field (tabular data).", DefaultValueFactory = _ => DatasetReadOptions.DefaultLabelColumn };
        var output = new Option<FileInfo>("--out") { Description = "Output CSV: index,value,stderr per training row, in input order.", Required = true };
        var pairwise = new Option<FileInfo?>("--pairwise") { Description = "Also write the test x train score matrix (small inputs)." };
        var device = new Option<string>("--device")
        {
            Description = "Where the test gradients are multiplied by the gradient store: cpu (libtorch on DATAMARKET_TORCH_DEVICE, default), gpu (float32 on an NVIDIA GPU through ILGPU, cuBLAS when found; the CPU when there is none), gpu-emulated (the GPU kernel on ILGPU's CPU accelerator), or auto.",
            DefaultValueFactory = _ => "cpu",
        };
        device.AcceptOnlyFromAmong("auto", "cpu", "gpu", "gpu-emulated");
        var command = new Command("logra", "LoGra influence values on TorchSharp: a proxy model's Kronecker-projected gradients, preconditioned, scored against the test task.")
        {
            train, test, model, rank, init, hessian, damping, mode, seed, dtype, layers, epochs, labelColumn, output, pairwise, device,
        };
        command.SetAction((parse, cancellationToken) => Task.FromResult(Run(new Arguments(
            parse.GetValue(train)!, parse.GetValue(test)!, parse.GetValue(model), parse.GetValue(rank), parse.GetValue(init)!, parse.GetValue(hessian)!,
            parse.GetValue(damping), parse.GetValue(mode)!, parse.GetValue(seed), parse.GetValue(dtype)!, parse.GetValue(layers), parse.GetValue(epochs),
            parse.GetValue(labelColumn)!, parse.GetValue(output)!, parse.GetValue(pairwise), parse.GetValue(device)!), parse.InvocationConfiguration.Error, cancellationToken)));
        return command;
    }

    public sealed record Arguments(FileInfo Train, FileInfo Test, string? Model, int Rank, string Init, string Hessian, double? Damping, string Mode,
        ulong Seed, string DType, string? Layers, int Epochs, string LabelColumn, FileInfo Output, FileInfo? Pairwise, string Device = "cpu");

    public static int Run(Arguments arguments, TextWriter error, CancellationToken cancellationToken)
    {
        if (arguments.Rank < 1)
        {
            error.WriteLine($"error: --rank must be at least 1, got {arguments.Rank}");
            return ExitCodes.BadInput;
        }

        // A proxy trained for no epochs is a random network whose gradients say nothing about the data.
        if (arguments.Epochs < 1)
        {
            error.WriteLine($"error: --epochs must be at least 1, got {arguments.Epochs}");
            return ExitCodes.BadInput;
        }

        if (arguments.Damping is { } damping && (!double.IsFinite(damping) || damping < 0))
        {
            error.WriteLine($"error: --damping must be a finite number >= 0, got {damping}");
            return ExitCodes.BadInput;
        }

        var text = TextDatasetReader.IsTextFile(arguments.Train.FullName);
        string? checkpoint = null;
        switch (arguments.Model?.ToLowerInvariant())
        {
            case null:
                break;
            case "mlp" when text:
                error.WriteLine($"error: {arguments.Train.FullName}: --model mlp needs tabular data, but the file holds text");
                return ExitCodes.BadInput;
            case "gpt" when !text:
                error.WriteLine($"error: {arguments.Train.FullName}: --model gpt needs JSON lines with a \"text\" field");
                return ExitCodes.BadInput;
            case "mlp" or "gpt":
                break;
            default:
                if (!File.Exists(arguments.Model))
                {
                    error.WriteLine($"error: --model must be mlp, gpt or an existing checkpoint (.safetensors, .pt, .pth, .bin); '{arguments.Model}' is none of these");
                    return ExitCodes.BadInput;
                }

                checkpoint = arguments.Model;
                break;
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

        var mode = arguments.Mode switch { "self" => InfluenceMode.Self, "cosine" => InfluenceMode.Cosine, _ => InfluenceMode.Dot };
        var logra = new TorchLograOptions
        {
            Rank = arguments.Rank,
            Init = arguments.Init == "pca" ? ProjectionInit.Pca : ProjectionInit.Random,
            Hessian = arguments.Hessian == "identity" ? Preconditioning.Identity : Preconditioning.Raw,
            Damping = arguments.Damping,
            Seed = arguments.Seed,
            StoreType = arguments.DType == "float16" ? TorchSharp.torch.ScalarType.Float16 : TorchSharp.torch.ScalarType.Float32,
            Layers = arguments.Layers?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
        };
        var requested = ValuationDevice.Parse(arguments.Device);
        using var scoringDevice = requested == DeviceKind.Cpu ? null : ValuationDevice.Select(requested);
        using var deviceGemm = scoringDevice is null ? null : new DeviceStoreGemm(scoringDevice);
        if (scoringDevice is not null)
        {
            error.WriteLine($"scoring device: {scoringDevice.Name} ({scoringDevice.Reason})");
            logra = logra with { Gemm = deviceGemm!.Multiply };
        }

        var training = new TrainingOptions(Epochs: arguments.Epochs, BatchSize: 32, Seed: arguments.Seed);
        var keepPairwise = arguments.Pairwise is not null && mode != InfluenceMode.Self;
        var progress = new ProgressBar(error);
        try
        {
            InfluenceResult result;
            if (text)
            {
                var test = TextDatasetReader.Load(arguments.Test.FullName, arguments.Test.FullName);
                var train = TextDatasetReader.Load(arguments.Train.FullName, arguments.Train.FullName);
                CheckPairwiseSize(keepPairwise, test.Length, train.Length);
                result = TextInfluence.Value(train, test, new TextInfluenceOptions
                {
                    Mode = mode, CheckpointPath = checkpoint, KeepPairwise = keepPairwise, Training = training, Logra = logra,
                }, null, progress.Report, cancellationToken);
            }
            else
            {
                var test = ValueKnnShapleyCommand.LoadFile(arguments.Test, arguments.LabelColumn, expectedFeatures: null);
                var train = ValueKnnShapleyCommand.LoadFile(arguments.Train, arguments.LabelColumn, expectedFeatures: null);
                if (ValueOptions.FeatureMismatch(arguments.Train.FullName, train, arguments.Test.FullName, test) is { } mismatch)
                {
                    error.WriteLine($"error: {mismatch}");
                    return ExitCodes.BadInput;
                }

                CheckPairwiseSize(keepPairwise, test.Rows, train.Rows);
                var files = new[] { arguments.Train, arguments.Test };
                var classes = ClassLabels.Indices([train.Labels, test.Labels], checkpoint is not null,
                    (source, row, message) => new DatasetFormatException(files[source].FullName, row, arguments.LabelColumn, message));
                TabularData Convert(TabularDataset data) => new(data.Features, data.FeatureCount, data.Labels.Select(label => classes[label]).ToArray());
                result = TabularInfluence.Value(Convert(train), Convert(test), new TabularInfluenceOptions
                {
                    Mode = mode, CheckpointPath = checkpoint, KeepPairwise = keepPairwise, Training = training, Logra = logra,
                }, progress.Report, cancellationToken);
            }

            progress.Finish();
            ValueFiles.WritePoints(arguments.Output.FullName, result.Values.Select((v, i) => new ValueEstimate(v, result.StandardErrors[i])).ToArray());
            if (result.Pairwise is not null)
            {
                WritePairwise(arguments.Pairwise!.FullName, result.Pairwise);
            }

            return ExitCodes.Success;
        }
        catch (Exception exception) when (exception is DatasetFormatException or CheckpointException or ArgumentException or OutputFileException)
        {
            progress.Finish();
            error.WriteLine($"error: {exception.Message}");
            return ExitCodes.BadInput;
        }
    }

    private static void CheckPairwiseSize(bool keepPairwise, long testRows, long trainRows)
    {
        if (keepPairwise && testRows * trainRows > MaxPairwiseCells)
        {
            throw new ArgumentException($"--pairwise is for small inputs: {testRows} x {trainRows} scores exceed {MaxPairwiseCells:N0}.");
        }
    }

    internal static void WritePairwise(string path, double[,] scores) => AtomicFile.Write(path, writer =>
    {
        int queries = scores.GetLength(0), train = scores.GetLength(1);
        writer.Write("test_index");
        for (var t = 0; t < train; t++)
        {
            writer.Write(',');
            writer.Write(t.ToString(CultureInfo.InvariantCulture));
        }

        writer.WriteLine();
        for (var q = 0; q < queries; q++)
        {
            writer.Write(q.ToString(CultureInfo.InvariantCulture));
            for (var t = 0; t < train; t++)
            {
                writer.Write(',');
                writer.Write(scores[q, t].ToString("R", CultureInfo.InvariantCulture));
            }

            writer.WriteLine();
        }
    });

    /// <summary>
    /// A progress bar on stderr, one line per stage change and at most one per second within a stage, e.g.
    /// "scoring [########------------] 64/160 test points"; the last state of each stage is always written.
    /// </summary>
    private sealed class ProgressBar(TextWriter error)
    {
        private const int Width = 20;
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private string? _stage;
        private string? _pending;
        private TimeSpan _last = TimeSpan.MinValue;

        public void Report(string stage, long done, long total)
        {
            var filled = total > 0 ? (int)(Width * Math.Min(done, total) / total) : Width;
            var unit = stage switch { "training" => " epochs", "logging" => " training rows", "scoring" => " test points", _ => string.Empty };
            var line = $"{stage} [{new string('#', filled)}{new string('-', Width - filled)}] {done}/{total}{unit}";
            if (stage != _stage || _clock.Elapsed - _last >= TimeSpan.FromSeconds(1) || done == total)
            {
                error.WriteLine(line);
                _stage = stage;
                _last = _clock.Elapsed;
                _pending = null;
            }
            else
            {
                _pending = line;
            }
        }

        public void Finish()
        {
            if (_pending is not null)
            {
                error.WriteLine(_pending);
                _pending = null;
            }
        }
    }
}
