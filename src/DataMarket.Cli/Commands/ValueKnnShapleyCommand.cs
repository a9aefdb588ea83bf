using System.CommandLine;
using DataMarket.Cli.Output;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Gpu;
using DataMarket.Valuation.Shapley;

namespace DataMarket.Cli.Commands;

/// <summary>
/// <c>datamarket value knn-shapley</c>: exact KNN-Shapley of every training row for a test file, for the
/// classification or the regression utility; with <c>--by-group</c>, the sums per group instead.
/// </summary>
public static class ValueKnnShapleyCommand
{
    public static Command Build()
    {
        var options = new ValueOptions();
        var task = new Option<string>("--task") { Description = "Utility: classification (top-K label agreement) or regression (negative squared error of the top-K mean).", DefaultValueFactory = _ => "classification" };
        task.AcceptOnlyFromAmong("classification", "regression");
        var command = new Command("knn-shapley", "Exact KNN-Shapley values (Jia et al. 2019) with standard errors over test points.") { task };
        options.AddTo(command, groupColumnRequired: false);
        command.SetAction((parse, cancellationToken) => Task.FromResult(options.Execute(parse, (train, test, k, device) =>
        {
            var parts = new[] { new TrainingPart(options.TrainName(parse), "all", train) };
            return parse.GetValue(task) == "regression"
                ? DatasetValuation.KnnShapleyRegression(parts, test, k, options.TestName(parse), parse.GetValue(options.LabelColumn)!, cancellationToken: cancellationToken, device: device)
                : DatasetValuation.KnnShapleyClassification(parts, test, k, cancellationToken: cancellationToken, device: device);
        })));
        return command;
    }

    internal static TabularDataset LoadFile(FileInfo file, string labelColumn, int? expectedFeatures, string? groupColumn = null) =>
        DatasetReader.Load(file.FullName, new DatasetReadOptions
        {
            SourceName = file.FullName,
            Format = DatasetFormats.FromPath(file.FullName),
            LabelColumn = labelColumn,
            GroupColumn = groupColumn,
            ExpectedFeatures = expectedFeatures,
        });
}

/// <summary><c>datamarket value asymmetric-shapley</c>: exact asymmetric KNN-Shapley with groups in a precedence order.</summary>
public static class ValueAsymmetricShapleyCommand
{
    public static Command Build()
    {
        var options = new ValueOptions();
        var groupOrder = new Option<string>("--group-order")
        {
            Description = "Comma-separated precedence of the groups, earliest first (for example sellers by listing time); must name every group once. "
                + "'auto': replication tiers instead, with groups in order of first appearance standing for listing order: a group goes to a later tier "
                + "only when it copies an earlier one, and groups that copy nobody share the first tier.",
            Required = true,
        };
        var duplicateFraction = new Option<double>("--duplicate-fraction")
        {
            Description = "With --group-order auto: a group copies an earlier one when more than this fraction of its rows duplicate that group's rows.",
            DefaultValueFactory = _ => DuplicatePolicy.DefaultFraction,
        };
        var nearDuplicateDistance = new Option<double>("--near-duplicate-distance")
        {
            Description = "With --group-order auto: rows with the same label within this Euclidean distance count as duplicates (0: exact matches only).",
            DefaultValueFactory = _ => 0,
        };
        var command = new Command("asymmetric-knn-shapley", "Exact asymmetric (structure-aware) KNN-Shapley (Zheng et al. 2024): earlier groups keep their value, later copies earn only what they add.")
        {
            groupOrder,
            duplicateFraction,
            nearDuplicateDistance,
        };
        // The API's method name is asymmetric-knn-shapley; the older CLI spelling keeps working.
        command.Aliases.Add("asymmetric-shapley");
        groupOrder.Validators.Add(result =>
        {
            var text = result.GetValueOrDefault<string>() ?? string.Empty;
            var names = text.Split(',', StringSplitOptions.TrimEntries);
            var empty = Array.FindIndex(names, n => n.Length == 0);
            if (empty >= 0)
            {
                result.AddError($"--group-order has an empty group name at position {empty + 1} ('{text}')");
            }
        });
        options.AddTo(command, groupColumnRequired: true);
        command.SetAction((parse, cancellationToken) => Task.FromResult(options.Execute(parse, (train, test, k, device) =>
        {
            var parts = new[] { new TrainingPart(options.TrainName(parse), "all", train) };
            var given = parse.GetValue(groupOrder)!;
            if (given.Trim() == AutoOrder)
            {
                var policy = new DuplicatePolicy { Fraction = parse.GetValue(duplicateFraction), NearDuplicateDistance = parse.GetValue(nearDuplicateDistance) };
                var tiered = DatasetValuation.TieredKnnShapley(parts, test, k, policy, cancellationToken: cancellationToken, device: device);
                WriteTiers(parse.InvocationConfiguration.Output, tiered);
                return tiered.Values;
            }

            var order = given.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            return DatasetValuation.AsymmetricKnnShapley(parts, test, k, order, cancellationToken: cancellationToken, device: device);
        })));
        return command;
    }

    public const string AutoOrder = "auto";

    /// <summary>Says which tier each group went to and which copies put it there.</summary>
    private static void WriteTiers(TextWriter writer, TieredDatasetValuation tiered)
    {
        var groups = tiered.Values.GroupOrder;
        for (var g = 0; g < groups.Count; g++)
        {
            writer.WriteLine($"tier {tiered.Tiers.TierOfGroup[g]}: {groups[g]}");
        }

        foreach (var copy in tiered.Tiers.Copies)
        {
            writer.WriteLine($"{groups[copy.Copier]} duplicates {copy.DuplicatedRows} of its {copy.CopierRows} rows from {groups[copy.Original]}");
        }
    }
}

/// <summary>The options every <c>value</c> command shares, and the shared way to run one and write its output.</summary>
internal sealed class ValueOptions
{
    public Option<FileInfo> Train { get; } = new("--train") { Description = "Training data (CSV with a header, or JSONL).", Required = true };

    public Option<FileInfo> Test { get; } = new("--test") { Description = "The buyer's test data, same format and features.", Required = true };

    public Option<int> K { get; } = new("--k") { Description = "Number of neighbours.", DefaultValueFactory = _ => 5 };

    public Option<string> LabelColumn { get; } = new("--label-column") { Description = "Name of the label column or field.", DefaultValueFactory = _ => DatasetReadOptions.DefaultLabelColumn };

    public Option<string?> GroupColumn { get; } = new("--group-column") { Description = "Column (or JSON field) naming each training row's group, for example its seller." };

    public Option<bool> ByGroup { get; } = new("--by-group") { Description = "Write group,value,stderr per group instead of one row per training point." };

    public Option<FileInfo> Output { get; } = new("--out") { Description = "Output CSV: index,value,stderr per training row in input order (or group,value,stderr).", Required = true };

    public Option<string> Device { get; } = DeviceOption.Create();

    public void AddTo(Command command, bool groupColumnRequired)
    {
        GroupColumn.Required = groupColumnRequired;
        foreach (var option in new Option[] { Train, Test, K, LabelColumn, GroupColumn, ByGroup, Output, Device })
        {
            command.Options.Add(option);
        }
    }

    public string TrainName(ParseResult parse) => parse.GetValue(Train)!.FullName;

    public string TestName(ParseResult parse) => parse.GetValue(Test)!.FullName;

    /// <summary>Loads the files, runs <paramref name="value"/>, writes the output atomically; bad input exits 2 and writes nothing.</summary>
    public int Execute(ParseResult parse, Func<TabularDataset, TabularDataset, int, ValuationDevice, DatasetValuationResult> value)
    {
        var error = parse.InvocationConfiguration.Error;
        var k = parse.GetValue(K);
        var groupColumn = parse.GetValue(GroupColumn);
        var byGroup = parse.GetValue(ByGroup);
        if (k < 1)
        {
            error.WriteLine($"error: --k must be at least 1, got {k}");
            return ExitCodes.BadInput;
        }

        if (byGroup && groupColumn is null)
        {
            error.WriteLine("error: --by-group needs --group-column to say which group each training row belongs to");
            return ExitCodes.BadInput;
        }

        try
        {
            var labelColumn = parse.GetValue(LabelColumn)!;
            var test = ValueKnnShapleyCommand.LoadFile(parse.GetValue(Test)!, labelColumn, expectedFeatures: null);
            var train = ValueKnnShapleyCommand.LoadFile(parse.GetValue(Train)!, labelColumn, expectedFeatures: null, groupColumn);
            if (FeatureMismatch(TrainName(parse), train, TestName(parse), test) is { } mismatch)
            {
                error.WriteLine($"error: {mismatch}");
                return ExitCodes.BadInput;
            }

            using var device = DeviceOption.Open(parse, Device);
            var result = value(train, test, k, device);
            var path = parse.GetValue(Output)!.FullName;
            if (byGroup)
            {
                ValueFiles.WriteGroups(path, result.GroupOrder.Select(g => (g, result.GroupValues[g])));
            }
            else
            {
                ValueFiles.WritePoints(path, result.PartValues[0]);
            }

            return ExitCodes.Success;
        }
        catch (Exception exception) when (exception is DatasetFormatException or ValuationInputException or OutputFileException)
        {
            error.WriteLine($"error: {exception.Message}");
            return ExitCodes.BadInput;
        }
    }

    /// <summary>Names both files and the columns that differ when the training and test data have different features.</summary>
    internal static string? FeatureMismatch(string trainName, TabularDataset train, string testName, TabularDataset test)
    {
        if (train.FeatureCount == test.FeatureCount)
        {
            return null;
        }

        var message = $"{testName}: the test file has {test.FeatureCount} feature columns but the training file {trainName} has {train.FeatureCount}";
        var trainNames = train.FeatureNames;
        var testNames = test.FeatureNames;
        {
            var onlyTest = testNames.Except(trainNames).Take(10).Select(n => InputExcerpt.Of(n)).ToList();
            var onlyTrain = trainNames.Except(testNames).Take(10).Select(n => InputExcerpt.Of(n)).ToList();
            if (onlyTest.Count > 0)
            {
                message += $"; only in the test file: {string.Join(", ", onlyTest)}";
            }

            if (onlyTrain.Count > 0)
            {
                message += $"; only in the training file: {string.Join(", ", onlyTrain)}";
            }
        }

        return message;
    }
}

/// <summary>
/// <c>--device auto|cpu|gpu|gpu-emulated</c>: where exact KNN valuations rank training points. Values are the same on
/// every device. A GPU that was asked for but is missing falls back to the CPU with one line on standard error.
/// </summary>
internal static class DeviceOption
{
    public static Option<string> Create()
    {
        var option = new Option<string>("--device")
        {
            Description = "auto (an NVIDIA GPU when present, else the CPU), cpu, gpu, or gpu-emulated (the GPU kernels on ILGPU's CPU accelerator; slow, for checks).",
            DefaultValueFactory = _ => "auto",
        };
        option.AcceptOnlyFromAmong("auto", "cpu", "gpu", "gpu-emulated");
        return option;
    }

    public static ValuationDevice Open(ParseResult parse, Option<string> option)
    {
        var requested = ValuationDevice.Parse(parse.GetValue(option));
        var device = ValuationDevice.Select(requested);
        if (requested == DeviceKind.Gpu && device.Kind != DeviceKind.Gpu)
        {
            parse.InvocationConfiguration.Error.WriteLine($"warning: {device.Reason}");
        }

        return device;
    }
}
