using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using DataMarket.Catalog.Application;
using DataMarket.Catalog.Model;
using DataMarket.Cli.Demo;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Spectre.Console;

namespace DataMarket.Cli.Commands;

/// <summary>
/// <c>datamarket demo</c>: sellers list data, a buyer posts a task and asks for a valuation, and the real
/// catalog and worker consumers answer over the in-memory bus. Prints what every seller's data is worth.
/// </summary>
public static class DemoCommand
{
    public static Command Build()
    {
        var dataDir = new Option<DirectoryInfo?>("--data-dir") { Description = "Keep the market's SQLite database and blobs in this folder (default: a temporary folder, removed afterwards)." };
        var k = new Option<int>("--k") { Description = "Neighbours for KNN-Shapley.", DefaultValueFactory = _ => ValuationMethods.DefaultK };
        var command = new Command("demo", "Run a small generated market end to end in one process and print each seller's value.") { dataDir, k };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var result = await RunAsync(parse.GetValue(dataDir), parse.GetValue(k), AnsiConsole.Console, cancellationToken);
            return result.Status == ValuationStatus.Completed ? ExitCodes.Success : ExitCodes.Failure;
        });
        return command;
    }

    public static async Task<ValuationView> RunAsync(DirectoryInfo? dataDir, int k, IAnsiConsole console, CancellationToken cancellationToken)
    {
        var temporary = dataDir is null;
        var directory = dataDir?.FullName ?? Path.Combine(Path.GetTempPath(), $"datamarket-demo-{Guid.NewGuid():N}");
        try
        {
            var builder = Host.CreateApplicationBuilder();
            EmbeddedMarket.Configure(builder.Configuration, builder.Services, directory);
            using var host = builder.Build();
            await host.StartAsync(cancellationToken);
            try
            {
                return await RunMarketAsync(host.Services, directory, k, console, cancellationToken);
            }
            finally
            {
                await host.StopAsync(CancellationToken.None);
            }
        }
        finally
        {
            if (temporary && Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    private static async Task<ValuationView> RunMarketAsync(IServiceProvider services, string directory, int k, IAnsiConsole console, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var market = new DemoMarket();
        console.MarkupLine($"[bold]DataMarket demo[/]: one process, in-memory bus, SQLite and blobs under [grey]{Markup.Escape(directory)}[/]");

        var table = new Table().Title("Listings").AddColumns("seller", "what it sells", "rows", "content (SHA-256)");
        var listingIds = new List<Guid>();
        var kinds = new Dictionary<string, string>();
        foreach (var seller in market.Sellers)
        {
            await using var scope = services.CreateAsyncScope();
            var catalog = scope.ServiceProvider.GetRequiredService<CatalogService>();
            var listing = await catalog.CreateListingAsync(seller.Id, new CreateListingRequest($"{seller.Id} data", seller.Kind), cancellationToken);
            listing = await catalog.UploadListingDataAsync(
                seller.Id, listing.Id, new UploadOptions("csv", "label", $"{seller.Id}.csv"), new MemoryStream(Encoding.UTF8.GetBytes(seller.Csv)), cancellationToken);
            listingIds.Add(listing.Id);
            kinds[seller.Id] = seller.Kind;
            table.AddRow(seller.Id, seller.Kind, listing.Rows.ToString(CultureInfo.InvariantCulture), listing.BlobId![..16] + "…");
        }

        console.Write(table);

        const string buyer = "buyer-1";
        ValuationView valuation;
        await using (var scope = services.CreateAsyncScope())
        {
            var catalog = scope.ServiceProvider.GetRequiredService<CatalogService>();
            var task = await catalog.PostTestTaskAsync(
                buyer, new PostTestTaskRequest("buyer task", new UploadOptions("csv", "label", "buyer-task.csv")),
                new MemoryStream(Encoding.UTF8.GetBytes(market.TestTaskCsv)), cancellationToken);
            console.MarkupLine($"Buyer [bold]{buyer}[/] posted a test task of {task.Rows} rows and asked for a KNN-Shapley valuation (K={k}).");
            valuation = await catalog.RequestValuationAsync(buyer, new RequestValuationRequest(task.Id, listingIds, ValuationMethods.KnnShapley, k), cancellationToken);
        }

        valuation = await console.Status().StartAsync("Valuing…", async status =>
        {
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (true)
            {
                await using var scope = services.CreateAsyncScope();
                var catalog = scope.ServiceProvider.GetRequiredService<CatalogService>();
                var current = await catalog.GetValuationAsync(buyer, valuation.Id, cancellationToken);
                status.Status(current.TestPoints is { } total
                    ? $"Valuation {current.Status}: {current.CompletedTestPoints}/{total} test points…"
                    : $"Valuation {current.Status}…");
                if (current.Status is ValuationStatus.Completed or ValuationStatus.Failed)
                {
                    return current;
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"valuation {valuation.Id} did not finish within 2 minutes (status {current.Status})");
                }

                await Task.Delay(100, cancellationToken);
            }
        });

        if (valuation.Status == ValuationStatus.Failed)
        {
            console.MarkupLine($"[red]Valuation failed:[/] {Markup.Escape(valuation.Error ?? "unknown reason")}");
            return valuation;
        }

        var values = new Table()
            .Title($"What each seller's data is worth to {buyer}'s task (KNN-Shapley, K={k}, {valuation.TestPoints} test points)")
            .AddColumns("seller", "points", "value", "std. error", "95% interval", "share");
        foreach (var seller in valuation.Sellers)
        {
            var v = seller.Value;
            values.AddRow(
                $"{seller.SellerId} [grey]({Markup.Escape(kinds.GetValueOrDefault(seller.SellerId, "?"))})[/]",
                seller.Points.ToString(CultureInfo.InvariantCulture),
                v.Value.ToString("F4", CultureInfo.InvariantCulture),
                v.StandardError?.ToString("F4", CultureInfo.InvariantCulture) ?? "n/a",
                v.Lower95 is { } lo && v.Upper95 is { } hi ? $"[[{lo.ToString("F4", CultureInfo.InvariantCulture)}, {hi.ToString("F4", CultureInfo.InvariantCulture)}]]" : "n/a",
                (v.Value / valuation.TotalUtility!.Value).ToString("P1", CultureInfo.InvariantCulture));
        }

        console.Write(values);
        console.MarkupLine($"Values sum to the utility of all listed data for the task: {valuation.TotalUtility!.Value.ToString("F4", CultureInfo.InvariantCulture)} (top-K label agreement). Done in {stopwatch.Elapsed.TotalSeconds:F1}s.");
        return valuation;
    }
}
