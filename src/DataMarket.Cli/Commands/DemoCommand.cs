using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using DataMarket.Catalog.Application;
using DataMarket.Catalog.Model;
using DataMarket.Cli.Demo;
using DataMarket.Valuation;
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
            return result.Succeeded ? ExitCodes.Success : ExitCodes.Failure;
        });
        return command;
    }

    public static async Task<DemoResult> RunAsync(DirectoryInfo? dataDir, int k, IAnsiConsole console, CancellationToken cancellationToken)
    {
        var temporary = dataDir is null;
        var directory = dataDir?.FullName ?? Path.Combine(Path.GetTempPath(), $"datamarket-demo-{Guid.NewGuid():N}");
        try
        {
            var builder = Host.CreateApplicationBuilder();
            // The demo releases holds at once (no refund window) and settles on its own, not on the monthly schedule.
            EmbeddedMarket.Configure(builder.Configuration, builder.Services, directory, new Dictionary<string, string?>
            {
                ["Settlement:RefundWindow"] = "00:00:00",
                ["Settlement:ScheduleEnabled"] = "false",
            });
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

    private static async Task<DemoResult> RunMarketAsync(IServiceProvider services, string directory, int k, IAnsiConsole console, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var market = new DemoMarket();
        console.MarkupLine($"[bold]DataMarket demo[/]: one process, in-memory bus, SQLite and blobs under [grey]{Markup.Escape(directory)}[/]");

        var table = new Table().Title("Listings").AddColumns("seller", "what it sells", "rows");
        var listingIds = new List<Guid>();
        foreach (var seller in market.Sellers)
        {
            await using var scope = services.CreateAsyncScope();
            var catalog = scope.ServiceProvider.GetRequiredService<CatalogService>();
            var listing = await catalog.CreateListingAsync(seller.Id, new CreateListingRequest($"{seller.Id} data", seller.Kind), cancellationToken);
            listing = await catalog.UploadListingDataAsync(
                seller.Id, listing.Id, new UploadOptions("csv", "label", $"{seller.Id}.csv"), new MemoryStream(Encoding.UTF8.GetBytes(seller.Csv)), cancellationToken);
            listingIds.Add(listing.Id);
            table.AddRow(seller.Id, seller.Kind, listing.Rows.ToString(CultureInfo.InvariantCulture));
        }

        console.Write(table);

        const string buyer = "buyer-1";
        Guid taskId;
        await using (var scope = services.CreateAsyncScope())
        {
            var catalog = scope.ServiceProvider.GetRequiredService<CatalogService>();
            var task = await catalog.PostTestTaskAsync(
                buyer, new PostTestTaskRequest("buyer task", new UploadOptions("csv", "label", "buyer-task.csv")),
                new MemoryStream(Encoding.UTF8.GetBytes(market.TestTaskCsv)), cancellationToken);
            taskId = task.Id;
            console.MarkupLine($"Buyer [bold]{buyer}[/] posted a test task of {task.Rows} rows and asked for three valuations (K={k}).");
        }

        var results = new Dictionary<string, ValuationView>();
        foreach (var method in new[] { ValuationMethods.KnnShapley, ValuationMethods.AsymmetricKnnShapley, ValuationMethods.SellerShapley })
        {
            var valuation = await ValueAsync(services, console, buyer, taskId, listingIds, method, k, cancellationToken);
            if (valuation.Status == ValuationStatus.Failed)
            {
                console.MarkupLine($"[red]Valuation by {method} failed:[/] {Markup.Escape(valuation.Error ?? "unknown reason")}");
                return new DemoResult(results, valuation);
            }

            results[method] = valuation;
        }

        var plain = results[ValuationMethods.KnnShapley];
        var values = new Table()
            .Title($"What each seller's data is worth to {buyer}'s task ({plain.TestPoints} test points; value ± standard error)")
            .AddColumns("seller", "points", "KNN-Shapley", "asymmetric", "seller-level");
        foreach (var seller in plain.Sellers)
        {
            var v = seller.Value;
            var asymmetric = results[ValuationMethods.AsymmetricKnnShapley].Sellers.Single(s => s.SellerId == seller.SellerId).Value;
            var sellerLevel = results[ValuationMethods.SellerShapley].Sellers.Single(s => s.SellerId == seller.SellerId).Value;
            values.AddRow(
                seller.SellerId,
                seller.Points.ToString(CultureInfo.InvariantCulture),
                WithError(v),
                WithError(asymmetric),
                WithError(sellerLevel));
        }

        console.Write(values);
        console.MarkupLine($"Each column sums to the utility of all listed data for the task, {F(plain.TotalUtility!.Value)} (mean top-{k} label agreement).");
        console.MarkupLine("[grey]KNN-Shapley: per-point values summed per seller. Asymmetric: sellers in listing order, so a later copy earns only what it adds. Seller-level: sellers as the players.[/]");

        // Purchases: the split always comes from the replication-robust tiered valuation of the bundle bought.
        var purchases = new List<DemoPurchase>();
        var sellersByListing = listingIds.Zip(market.Sellers, (id, seller) => (ListingId: id, SellerId: seller.Id)).ToList();
        var tiered = await ValueAsync(services, console, buyer, taskId, listingIds, ValuationMethods.TieredKnnShapley, k, cancellationToken);
        if (tiered.Status == ValuationStatus.Failed)
        {
            return new DemoResult(results, tiered);
        }

        results[ValuationMethods.TieredKnnShapley] = tiered;
        purchases.Add(await DemoPurchases.BuyAsync(services, console, buyer, sellersByListing, tiered, cancellationToken));

        const string secondBuyer = "buyer-2";
        var bundle = sellersByListing.Where(l => l.SellerId is "northwind" or "acme" or "copycat").ToList();
        await using (var scope = services.CreateAsyncScope())
        {
            var catalog = scope.ServiceProvider.GetRequiredService<CatalogService>();
            var task = await catalog.PostTestTaskAsync(
                secondBuyer, new PostTestTaskRequest("second buyer task", new UploadOptions("csv", "label", "buyer-2-task.csv")),
                new MemoryStream(Encoding.UTF8.GetBytes(market.TestTaskCsv)), cancellationToken);
            var secondValues = await ValueAsync(services, console, secondBuyer, task.Id, bundle.Select(l => l.ListingId).ToList(), ValuationMethods.TieredKnnShapley, k, cancellationToken);
            if (secondValues.Status == ValuationStatus.Failed)
            {
                return new DemoResult(results, secondValues);
            }

            purchases.Add(await DemoPurchases.BuyAsync(services, console, secondBuyer, bundle, secondValues, cancellationToken));
        }

        var payables = await DemoPurchases.PrintPayablesAsync(services, console, cancellationToken);
        var settlement = await DemoPurchases.SettleAsync(services, console, market.Sellers.Select(s => s.Id), cancellationToken);
        console.MarkupLine($"Done in {stopwatch.Elapsed.TotalSeconds:F1}s. Re-run this month's settlement (it changes nothing) or list its payouts with --data-dir kept:");
        console.MarkupLine($"[grey]datamarket settle --period {settlement.Period} --sqlite DIR/ledger.db; datamarket payouts --period {settlement.Period} --sqlite DIR/ledger.db; datamarket ledger verify --sqlite DIR/ledger.db[/]");
        console.MarkupLine($"[grey]To use the market in a browser: [bold]datamarket serve[/], then open {ServeCommand.DefaultUrl}/ and sign in as demo-seller, demo-buyer or demo-operator with the passwords serve prints (sellers upload datasets, buyers request valuations and see their charts, operators read the audit log).[/]");
        return new DemoResult(results, null) { Purchases = purchases, Payables = payables, Settlement = settlement };
    }

    private static async Task<ValuationView> ValueAsync(
        IServiceProvider services, IAnsiConsole console, string buyer, Guid taskId, List<Guid> listingIds, string method, int k, CancellationToken cancellationToken)
    {
        ValuationView valuation;
        await using (var scope = services.CreateAsyncScope())
        {
            var catalog = scope.ServiceProvider.GetRequiredService<CatalogService>();
            valuation = await catalog.RequestValuationAsync(buyer, new RequestValuationRequest(taskId, listingIds, method, k), cancellationToken);
        }

        return await console.Status().StartAsync($"Valuing by {method}…", async status =>
        {
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (true)
            {
                await using var scope = services.CreateAsyncScope();
                var catalog = scope.ServiceProvider.GetRequiredService<CatalogService>();
                var current = await catalog.GetValuationAsync(buyer, valuation.Id, cancellationToken);
                status.Status(current.TestPoints is { } total
                    ? $"{method}: {current.Status}, {current.CompletedTestPoints}/{total} test points…"
                    : $"{method}: {current.Status}…");
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
    }

    private static string F(double value) => value.ToString("F4", CultureInfo.InvariantCulture);

    private static string WithError(EstimateView value) =>
        value.StandardError is { } se ? $"{F(value.Value)} ± {F(se)}" : F(value.Value);
}

/// <summary>The demo's valuations by method, or the one that failed.</summary>
public sealed record DemoResult(IReadOnlyDictionary<string, ValuationView> Valuations, ValuationView? Failed)
{
    public IReadOnlyList<DemoPurchase> Purchases { get; init; } = [];

    public IReadOnlyList<DataMarket.Ledger.Model.AccountBalance> Payables { get; init; } = [];

    public DataMarket.SettlementService.Application.SettlementRunView? Settlement { get; init; }

    public bool Succeeded => Failed is null;
}
