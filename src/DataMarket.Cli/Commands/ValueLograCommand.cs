using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DataMarket.Cli.Output;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Gpu;
using DataMarket.Valuation.LoGra;

namespace DataMarket.Cli.Commands;

/// <summary>
/// <c>datamarket value logra</c>: influence-function data values from a proxy model's projected gradients
/// (LoGra, Choe et al. 2024). Tabular files train an MLP proxy; JSON lines with a "text" field train a byte-level GPT.
/// </summary>
public static class ValueLograCommand
{
    /// <summary>Above this many test x train pairs --pairwise is refused: the file would be too large to be useful.</summary>
    public const long MaxPairwiseCells = 10_000_000;

    public static Command Build()
    {
        var train = new Option<FileInfo>("--train") { Description = "Training data: CSV with a header, JSONL with features, or JSONL with a \"text\" field.", Required = true };
        var test = new Option<FileInfo>("--test") { Description = "The buyer's test data, same format.", Required = true };
        var model = new Option<string>("--model") { Description = "Proxy model: mlp (tabular), gpt (text), or a .safetensors checkpoint used as is. Default: by data type." };
        var rank = new Option<int>("--rank") { Description = "Projection rank per side of each watched layer (clamped to the layer's widths).", DefaultValueFactory = _ => ProjectionOptions.DefaultRank };
        var init = new Option<string>("--init") { Description = "Projection initialisation: random or pca.", DefaultValueFactory = _ => "random" };
        init.AcceptOnlyFromAmong("random", "pca");
        var hessian = new Option<string>("--hessian") { Description = "Preconditioner: raw (damped empirical Fisher) or identity.", DefaultValueFactory = _ => "raw" };
        hessian.AcceptOnlyFromAmong("raw", "identity");
        var damping = new Option<double?>("--damping") { Description = "Absolute damping λ; default 0.1 x the mean eigenvalue per layer." };
        var mode = new Option<string>("--mode") { Description = "Score: dot (value to the test task), cosine (training gradients normalised), or self (each training row's self-influence: finds mislabelled rows; torch engine).", DefaultValueFactory = _ => "dot" };
        mode.AcceptOnlyFromAmong("dot", "cosine", "self");
        var engine = new Option<string>("--engine") { Description = "builtin, or torch (TorchSharp; tabular data; chosen by --mode self and by .pt/.pth/.bin checkpoints).", DefaultValueFactory = _ => "builtin" };
        engine.AcceptOnlyFromAmong("builtin", "torch");
        var seed = new Option<ulong>("--seed") { Description = "Seed for the proxy model, its training order and the projections.", DefaultValueFactory = _ => 1UL };
        var store = new Option<DirectoryInfo?>("--store") { Description = "Keep the gradient store in this folder (reused when it holds this model's gradients)." };
        var dtype = new Option<string>("--dtype") { Description = "Element type of the gradient store: float32 or float16.", DefaultValueFactory = _ => "float32" };
        dtype.AcceptOnlyFromAmong("float32", "float16");
        var layers = new Option<string?>("--layers") { Description = "Comma-separated name filters of the Linear layers to watch (default: all)." };
        var epochs = new Option<int>("--epochs") { Description = "Proxy training epochs.", DefaultValueFactory = _ => 20 };
        var labelColumn = new Option<string>("--label-column") { Description = "Name of the label column or field (tabular data).", DefaultValueFactory = _ => DatasetReadOptions.DefaultLabelColumn };
        var output = new Option<FileInfo>("--out") { Description = "Output CSV: index,value,stderr per training row, in input order.", Required = true };
        var pairwise = new Option<FileInfo?>("--pairwise") { Description = "Also write the test x train score matrix (small inputs)." };
        var device = new Option<string>("--device")
        {
            Description = "Where the builtin engine multiplies test gradients by the gradient store: cpu (float64, default), gpu (float32 on an NVIDIA GPU, cuBLAS when found; the CPU when there is none), gpu-emulated (the GPU kernel on ILGPU's CPU accelerator), or auto.",
            DefaultValueFactory = _ => "cpu",
        };
        device.AcceptOnlyFromAmong("auto", "cpu", "gpu", "gpu-emulated");
        var command = new Command("logra", "LoGra influence values: a proxy model's Kronecker-projected gradients, preconditioned, scored against the test task.")
        {
            train, test, model, rank, init, hessian, damping, mode, seed, store, dtype, layers, epochs, labelColumn, output, pairwise, engine, device,
        };
        command.SetAction((parse, cancellationToken) => Task.FromResult(Run(new Arguments(
            parse.GetValue(train)!, parse.GetValue(test)!, parse.GetValue(model), parse.GetValue(rank), parse.GetValue(init)!, parse.GetValue(hessian)!,
            parse.GetValue(damping), parse.GetValue(mode)!, parse.GetValue(seed), parse.GetValue(store), parse.GetValue(dtype)!, parse.GetValue(layers), parse.GetValue(epochs),
            parse.GetValue(labelColumn)!, parse.GetValue(output)!, parse.GetValue(pairwise), parse.GetValue(engine)!, parse.GetValue(device)!), parse.InvocationConfiguration.Error, cancellationToken)));
        return command;
    }

    public sealed record Arguments(FileInfo Train, FileInfo Test, string? Model, int Rank, string Init, string Hessian, double? Damping, string Mode,
        ulong Seed, DirectoryInfo? Store, string DType, string? Layers, int Epochs, string LabelColumn, FileInfo Output, FileInfo? Pairwise, string Engine = "builtin",
        string Device = "cpu");

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

        if (arguments.Engine == "torch" || arguments.Mode == "self" || ValueLograTorch.IsPyTorchCheckpoint(arguments.Model))
        {
            if (arguments.Device != "cpu")
            {
                error.WriteLine($"error: --device {arguments.Device} applies to the builtin engine's scoring; the torch engine takes its device from DATAMARKET_TORCH_DEVICE");
                return ExitCodes.BadInput;
            }

            if (arguments.Model is { } given && given is not "mlp" && !File.Exists(given))
            {
                error.WriteLine($"error: --model must be mlp or an existing checkpoint (.safetensors, .pt, .pth, .bin); '{given}' is neither");
                return ExitCodes.BadInput;
            }

            return ValueLograTorch.Run(arguments, error, cancellationToken);
        }

        bool text = TextDatasetReader.IsTextFile(arguments.Train.FullName);
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
                    error.WriteLine($"error: --model must be mlp, gpt or an existing .safetensors checkpoint; '{arguments.Model}' is none of these");
                    return ExitCodes.BadInput;
                }

                checkpoint = arguments.Model;
                break;
        }

        var options = new LograValuationOptions
        {
            Projection = new ProjectionOptions
            {
                Rank = arguments.Rank,
                Init = arguments.Init == "pca" ? ProjectionInit.Pca : ProjectionInit.Random,
                Seed = arguments.Seed,
                WatchedLayers = arguments.Layers?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            },
            Hessian = arguments.Hessian == "identity" ? Preconditioning.Identity : Preconditioning.Raw,
            Damping = arguments.Damping,
            Mode = arguments.Mode == "cosine" ? ScoreMode.Cosine : ScoreMode.Dot,
            StoreDirectory = arguments.Store?.FullName,
            StoreDType = arguments.DType == "float16" ? GradientDType.Float16 : GradientDType.Float32,
            CheckpointPath = checkpoint,
            Epochs = arguments.Epochs,
            KeepPairwise = arguments.Pairwise is not null,
        };
        var requested = ValuationDevice.Parse(arguments.Device);
        using var scoringDevice = ValuationDevice.Select(requested);
        if (requested != DeviceKind.Cpu)
        {
            error.WriteLine($"scoring device: {scoringDevice.Name} ({scoringDevice.Reason})");
        }

        options = options with { Device = scoringDevice };
        var progress = new StageProgress(error);
        try
        {
            LograValuationResult result;
            if (text)
            {
                var test = TextDatasetReader.Load(arguments.Test.FullName, arguments.Test.FullName);
                var train = TextDatasetReader.Load(arguments.Train.FullName, arguments.Train.FullName);
                CheckPairwiseSize(arguments, test.Length, train.Length);
                result = LograValuation.ValueText(train, test, options, null, progress, cancellationToken);
            }
            else
            {
                var test = ValueKnnShapleyCommand.LoadFile(arguments.Test, arguments.LabelColumn, expectedFeatures: null);
                var train = ValueKnnShapleyCommand.LoadFile(arguments.Train, arguments.LabelColumn, expectedFeatures: null);
                if (ValueOptions.FeatureMismatch(arguments.Train.FullName, train, arguments.Test.FullName, test) is { } mismatch)
                {
                    progress.Finish();
                    error.WriteLine($"error: {mismatch}");
                    return ExitCodes.BadInput;
                }

                CheckPairwiseSize(arguments, test.Rows, train.Rows);
                result = LograValuation.ValueTabular(train, test, options, null, progress, cancellationToken);
            }

            progress.Finish();
            ValueFiles.WritePoints(arguments.Output.FullName, result.Values);
            if (arguments.Pairwise is not null)
            {
                WritePairwise(arguments.Pairwise.FullName, result.Pairwise!);
            }

            return ExitCodes.Success;
        }
        catch (Exception exception) when (exception is DatasetFormatException or LograException or OutputFileException)
        {
            progress.Finish();
            error.WriteLine($"error: {exception.Message}");
            return ExitCodes.BadInput;
        }
    }

    private static void CheckPairwiseSize(Arguments arguments, long testRows, long trainRows)
    {
        if (arguments.Pairwise is not null && testRows * trainRows > MaxPairwiseCells)
        {
            throw new LograException($"--pairwise is for small inputs: {testRows} x {trainRows} scores exceed {MaxPairwiseCells:N0}.");
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

    /// <summary>One stderr line per stage change and at most one per second within a stage.</summary>
    private sealed class StageProgress(TextWriter error) : IProgress<LograProgress>
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private string? _stage;
        private string? _pending;
        private TimeSpan _last = TimeSpan.MinValue;

        public void Report(LograProgress value)
        {
            string stage = value.Stage.Split(' ')[0];
            string line = $"{value.Stage}: {value.Done}/{value.Total}";
            if (stage != _stage || _clock.Elapsed - _last >= TimeSpan.FromSeconds(1))
            {
                if (stage != _stage && _pending is not null)
                {
                    error.WriteLine(_pending);
                }

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
