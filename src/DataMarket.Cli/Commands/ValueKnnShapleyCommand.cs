using System.CommandLine;
using System.Globalization;
using DataMarket.Cli.Output;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Shapley;

namespace DataMarket.Cli.Commands;

/// <summary><c>datamarket value knn-shapley</c>: exact KNN-Shapley of every training row for a test file.</summary>
public static class ValueKnnShapleyCommand
{
    public static Command Build()
    {
        var train = new Option<FileInfo>("--train") { Description = "Training data (CSV with a header, or JSONL).", Required = true };
        var test = new Option<FileInfo>("--test") { Description = "The buyer's test data, same format and features.", Required = true };
        var k = new Option<int>("--k") { Description = "Number of neighbours.", DefaultValueFactory = _ => 5 };
        var labelColumn = new Option<string>("--label-column") { Description = "Name of the label column or field.", DefaultValueFactory = _ => DatasetReadOptions.DefaultLabelColumn };
        var output = new Option<FileInfo>("--out") { Description = "Output CSV: index,value,stderr per training row, in input order.", Required = true };
        var command = new Command("knn-shapley", "Exact KNN-Shapley values (Jia et al. 2019) with standard errors over test points.")
        {
            train, test, k, labelColumn, output,
        };
        command.SetAction((parse, cancellationToken) => Task.FromResult(Run(
            parse.GetValue(train)!, parse.GetValue(test)!, parse.GetValue(k), parse.GetValue(labelColumn)!, parse.GetValue(output)!,
            parse.InvocationConfiguration.Error, cancellationToken)));
        return command;
    }

    public static int Run(FileInfo trainFile, FileInfo testFile, int k, string labelColumn, FileInfo outputFile, TextWriter error, CancellationToken cancellationToken)
    {
        if (k < 1)
        {
            error.WriteLine($"error: --k must be at least 1, got {k}");
            return ExitCodes.BadInput;
        }

        try
        {
            var test = LoadFile(testFile, labelColumn, expectedFeatures: null);
            var train = LoadFile(trainFile, labelColumn, test.FeatureCount);
            var result = DatasetValuation.KnnShapleyClassification([new TrainingPart(trainFile.Name, "all", train)], test, k, cancellationToken: cancellationToken);
            var values = result.PartValues[0];
            AtomicFile.Write(outputFile.FullName, writer =>
            {
                writer.WriteLine("index,value,stderr");
                for (var i = 0; i < values.Length; i++)
                {
                    writer.Write(i.ToString(CultureInfo.InvariantCulture));
                    writer.Write(',');
                    writer.Write(values[i].Value.ToString("R", CultureInfo.InvariantCulture));
                    writer.Write(',');
                    writer.WriteLine(values[i].StandardError.ToString("R", CultureInfo.InvariantCulture));
                }
            });
            return ExitCodes.Success;
        }
        catch (DatasetFormatException exception)
        {
            error.WriteLine($"error: {exception.Message}");
            return ExitCodes.BadInput;
        }
    }

    internal static TabularDataset LoadFile(FileInfo file, string labelColumn, int? expectedFeatures) =>
        DatasetReader.Load(file.FullName, new DatasetReadOptions
        {
            SourceName = file.FullName,
            Format = DatasetFormats.FromPath(file.FullName),
            LabelColumn = labelColumn,
            ExpectedFeatures = expectedFeatures,
        });
}
