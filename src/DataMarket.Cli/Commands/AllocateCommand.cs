using System.CommandLine;
using System.Globalization;
using DataMarket.Cli.Output;
using DataMarket.Settlement;
using DataMarket.Settlement.Split;
using DataMarket.Valuation.Data;

namespace DataMarket.Cli.Commands;

/// <summary>
/// <c>datamarket allocate</c>: splits a sale's gross between the platform fee and the sellers by value, from the
/// <c>group,value,stderr</c> file that <c>value ... --by-group</c> writes. The output has one <c>party,amount</c> row per
/// seller (input order) and one for <c>platform_fee</c>, integer cents summing exactly to gross.
/// </summary>
public static class AllocateCommand
{
    public const string PlatformFeeParty = "platform_fee";

    public static Command Build()
    {
        var values = new Option<FileInfo>("--values") { Description = "Seller values: the group,value,stderr CSV of value ... --by-group.", Required = true };
        var gross = new Option<long>("--gross") { Description = "The sale's gross amount in cents.", Required = true };
        var feeRate = new Option<decimal>("--fee-rate") { Description = "Platform fee rate in [0, 1]; the fee is rounded up to the cent.", Required = true };
        var feeMin = new Option<long>("--fee-min") { Description = "Minimum platform fee in cents.", DefaultValueFactory = _ => 0 };
        var output = new Option<FileInfo>("--out") { Description = "Output CSV: party,amount.", Required = true };
        var command = new Command("allocate", "Split a sale's gross into the platform fee and the sellers' shares by value (largest remainder, exact cents).")
        {
            values, gross, feeRate, feeMin, output,
        };
        command.SetAction((parse, _) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var console = parse.InvocationConfiguration.Output;
            try
            {
                var path = parse.GetValue(values)!.FullName;
                var sellers = ReadValues(path);
                var split = RevenueSplit.Allocate(parse.GetValue(gross), new FeePolicy(parse.GetValue(feeRate), parse.GetValue(feeMin)), sellers);
                AtomicFile.Write(parse.GetValue(output)!.FullName, writer =>
                {
                    writer.WriteLine("party,amount");
                    foreach (var share in split.Shares)
                    {
                        writer.WriteLine($"{ValueFiles.Field(share.SellerId)},{share.Amount.ToString(CultureInfo.InvariantCulture)}");
                    }

                    writer.WriteLine($"{PlatformFeeParty},{split.Fee.ToString(CultureInfo.InvariantCulture)}");
                });
                WriteTable(console, split);
                return Task.FromResult(ExitCodes.Success);
            }
            catch (Exception exception) when (exception is DatasetFormatException or SettlementInputException)
            {
                error.WriteLine($"error: {exception.Message}");
                return Task.FromResult(ExitCodes.BadInput);
            }
            catch (FileNotFoundException exception)
            {
                error.WriteLine($"error: {exception.Message}");
                return Task.FromResult(ExitCodes.BadInput);
            }
        });
        return command;
    }

    /// <summary>The split as a table: party, weight, cents; says when the sale was split equally for want of a positive value.</summary>
    public static void WriteTable(TextWriter writer, SplitResult split)
    {
        writer.WriteLine($"{"party",-24} {"weight",8} {"cents",14}");
        foreach (var share in split.Shares)
        {
            writer.WriteLine($"{share.SellerId,-24} {share.Weight,8:P2} {share.Amount,14:N0}");
        }

        writer.WriteLine($"{PlatformFeeParty,-24} {"",8} {split.Fee,14:N0}");
        writer.WriteLine($"{"gross",-24} {"",8} {split.Gross,14:N0}");
        if (split.EqualSplit)
        {
            writer.WriteLine("no seller had a positive value: the net was split equally");
        }
    }

    private static readonly int MaxFieldLength = new DatasetReadOptions { SourceName = "" }.MaxFieldLength;

    /// <summary>Reads group,value[,stderr] rows; a bad row is reported with the file, its line and the field.</summary>
    internal static List<ValuedSeller> ReadValues(string path)
    {
        using var reader = new StreamReader(path);
        var header = reader.ReadLine() ?? throw new DatasetFormatException(path, null, null, "the file is empty; expected a group,value,stderr header");
        var columns = CsvLine.Split(header, path, 0, MaxFieldLength);
        if (columns.Count < 2 || columns[0] != "group" || columns[1] != "value")
        {
            throw new DatasetFormatException(path, null, null, $"expected a header starting group,value (what value ... --by-group writes), got '{header}'");
        }

        var sellers = new List<ValuedSeller>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        long row = 0;
        while (reader.ReadLine() is { } line)
        {
            row++;
            if (line.Length == 0)
            {
                continue;
            }

            var fields = CsvLine.Split(line, path, row, MaxFieldLength);
            if (fields.Count != columns.Count)
            {
                throw new DatasetFormatException(path, row, null, $"expected {columns.Count} fields, got {fields.Count}");
            }

            if (fields[0].Length == 0 || fields[0] == PlatformFeeParty)
            {
                throw new DatasetFormatException(path, row, "group", fields[0].Length == 0 ? "the group is empty" : $"'{PlatformFeeParty}' names the platform's share and cannot be a seller");
            }

            if (!seen.Add(fields[0]))
            {
                throw new DatasetFormatException(path, row, "group", $"'{fields[0]}' appears more than once");
            }

            if (!double.TryParse(fields[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
            {
                throw new DatasetFormatException(path, row, "value", $"expected a finite number, got '{fields[1]}'");
            }

            sellers.Add(new ValuedSeller(fields[0], value));
        }

        if (sellers.Count == 0)
        {
            throw new DatasetFormatException(path, null, null, "no seller rows; there is nobody to pay");
        }

        return sellers;
    }
}
