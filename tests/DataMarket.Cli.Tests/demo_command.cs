using DataMarket.Catalog.Model;
using DataMarket.Cli.Commands;
using DataMarket.Valuation;
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

        var result = await DemoCommand.RunAsync(new DirectoryInfo(folder.Path), 5, console, CancellationToken.None);

        Assert.True(result.Succeeded);
        var valuation = result.Valuations[ValuationMethods.KnnShapley];
        Assert.Equal(ValuationStatus.Completed, valuation.Status);
        var values = valuation.Sellers.ToDictionary(s => s.SellerId, s => s.Value.Value);
        Assert.Equal(6, values.Count);
        foreach (var clean in new[] { "northwind", "bluebird", "acme" })
        {
            Assert.True(values["noisy-labels"] < values[clean], $"noisy-labels {values["noisy-labels"]} vs {clean} {values[clean]}");
            Assert.True(values["offworld"] < values[clean], $"offworld {values["offworld"]} vs {clean} {values[clean]}");
        }

        Assert.Equal(valuation.TotalUtility!.Value, values.Values.Sum(), 10);

        // The copying seller, listed after the original, earns far less under asymmetric Shapley than under plain.
        var asymmetric = result.Valuations[ValuationMethods.AsymmetricKnnShapley].Sellers.ToDictionary(s => s.SellerId, s => s.Value.Value);
        Assert.True(asymmetric["copycat"] < 0.25 * values["copycat"], $"copycat: asymmetric {asymmetric["copycat"]} vs plain {values["copycat"]}");
        Assert.True(asymmetric["northwind"] > values["northwind"], "the original keeps (more than) its plain value");
        Assert.Equal(valuation.TotalUtility.Value, asymmetric.Values.Sum(), 10);
        var sellerLevel = result.Valuations[ValuationMethods.SellerShapley].Sellers.ToDictionary(s => s.SellerId, s => s.Value.Value);
        Assert.Equal(valuation.TotalUtility.Value, sellerLevel.Values.Sum(), 10);
        var printed = writer.ToString();
        Assert.Contains("noisy-labels", printed);
        Assert.Contains("asymmetric", printed);
        // Two buyers bought; every purchase splits exactly and the copier of northwind earns less than northwind.
        Assert.Equal(["buyer-1", "buyer-2"], result.Purchases.Select(p => p.Quote.BuyerId));
        foreach (var purchase in result.Purchases)
        {
            var quote = purchase.Quote;
            Assert.Equal(quote.Price, quote.Fee + quote.Shares.Sum(s => s.Amount));
            Assert.InRange(quote.Price, quote.Floor, quote.Ceiling!.Value);
            var shares = quote.Shares.ToDictionary(s => s.SellerId, s => s.Amount);
            Assert.True(shares["copycat"] < shares["northwind"], $"copycat {shares["copycat"]} vs northwind {shares["northwind"]}");
        }

        // Every seller's payable is the sum of its shares (the demo's refund window is zero, so holds released).
        var owed = result.Purchases.SelectMany(p => p.Quote.Shares).GroupBy(s => s.SellerId).Where(g => g.Sum(s => s.Amount) > 0)
            .ToDictionary(g => g.Key, g => g.Sum(s => s.Amount));
        Assert.Equal(owed.OrderBy(o => o.Key).Select(o => new KeyValuePair<string, long>($"seller_payable:{o.Key}:USD", o.Value)),
            result.Payables.Select(b => new KeyValuePair<string, long>(b.AccountId, b.PostedBalance)).OrderBy(o => o.Key));

        // The settlement run paid each of them exactly what it was owed, once, and reconciled clean.
        var settlement = result.Settlement!;
        Assert.Equal("completed", settlement.Status);
        Assert.True(settlement.Reconciliation!.Clean, string.Join("; ", settlement.Reconciliation.Mismatches));
        Assert.Equal(owed.Where(o => o.Value >= 100).OrderBy(o => o.Key, StringComparer.Ordinal), settlement.Payouts.Select(p => new KeyValuePair<string, long>(p.SellerId, p.Amount)));
        Assert.All(settlement.Payouts, p => Assert.Equal("paid", p.Status));
        Assert.Contains("platform_fee", printed);

        // The data folder was kept because it was given, and holds the market's state, ledger included.
        Assert.True(File.Exists(Path.Combine(folder.Path, "catalog.db")));
        var (verifyExit, verifyOutput, _) = await CliRunner.RunAsync("ledger", "verify", "--sqlite", Path.Combine(folder.Path, "ledger.db"));
        Assert.True(verifyExit == 0, verifyOutput);

        // settle on the kept folder re-runs the period and changes nothing; payouts lists the same payouts.
        var ledgerFile = Path.Combine(folder.Path, "ledger.db");
        var (_, balancesBefore, _) = await CliRunner.RunAsync("ledger", "balances", "--sqlite", ledgerFile);
        var (settleExit, settleOutput, settleError) = await CliRunner.RunAsync("settle", "--period", settlement.Period, "--sqlite", ledgerFile);
        Assert.True(settleExit == 0, settleOutput + settleError);
        var (payoutsExit, payoutsOutput, _) = await CliRunner.RunAsync("payouts", "--period", settlement.Period, "--sqlite", ledgerFile);
        Assert.Equal(0, payoutsExit);
        Assert.Equal(settleOutput, payoutsOutput);
        Assert.All(settlement.Payouts, p => Assert.Contains(p.ProviderTransferId!, payoutsOutput));
        Assert.Contains("Reconciliation clean", payoutsOutput);
        var (_, balancesAfter, _) = await CliRunner.RunAsync("ledger", "balances", "--sqlite", ledgerFile);
        Assert.Contains("payouts_in_transit", balancesAfter);
        Assert.Equal(balancesBefore, balancesAfter);
        Assert.True((await CliRunner.RunAsync("ledger", "verify", "--sqlite", ledgerFile)).Item1 == 0);
        Assert.Equal(2, (await CliRunner.RunAsync("payouts", "--period", "2026-13", "--sqlite", ledgerFile)).Item1);
    }
}
