using DataMarket.Catalog.Model;
using DataMarket.Cli.Commands;
using Spectre.Console;

namespace DataMarket.Cli.Tests;

public sealed class demo_command
{
    [Fact]
    public async Task runs_the_market_in_one_process_and_ranks_bad_sellers_below_every_clean_seller()
    {
        var writer = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        using var folder = new TempFolder();

        var valuation = await DemoCommand.RunAsync(new DirectoryInfo(folder.Path), 5, console, CancellationToken.None);

        Assert.Equal(ValuationStatus.Completed, valuation.Status);
        var values = valuation.Sellers.ToDictionary(s => s.SellerId, s => s.Value.Value);
        Assert.Equal(6, values.Count);
        foreach (var clean in new[] { "northwind", "bluebird", "acme" })
        {
            Assert.True(values["noisy-labels"] < values[clean], $"noisy-labels {values["noisy-labels"]} vs {clean} {values[clean]}");
            Assert.True(values["offworld"] < values[clean], $"offworld {values["offworld"]} vs {clean} {values[clean]}");
        }

        Assert.Equal(valuation.TotalUtility!.Value, values.Values.Sum(), 10);
        var printed = writer.ToString();
        Assert.Contains("noisy-labels", printed);
        Assert.Contains("95% interval", printed);
        // The data folder was kept because it was given, and holds the market's state.
        Assert.True(File.Exists(Path.Combine(folder.Path, "catalog.db")));
    }
}
