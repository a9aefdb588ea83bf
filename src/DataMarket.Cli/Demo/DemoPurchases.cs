using System.Globalization;
using DataMarket.Catalog.Application;
using DataMarket.Ledger.Model;
using DataMarket.ServiceDefaults.Ledger;
using DataMarket.Cli.Commands;
using DataMarket.SettlementService.Application;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace DataMarket.Cli.Demo;

/// <summary>One purchase of the demo: the quote it bought.</summary>
public sealed record DemoPurchase(Guid PurchaseId, QuoteView Quote);

/// <summary>
/// The demo's purchases, through the settlement service as the API runs them: each seller publishes price terms, the
/// buyer gets a quote from the tiered valuation of its bundle (theta x gain within the listings' reserves and list
/// prices, split by value) and buys it; the purchase commits charge, platform fee, held shares and, with the demo's
/// zero refund window, their release to the ledger.
/// </summary>
public static class DemoPurchases
{
    public const long ReservePerListing = 500;
    public const long ListPricePerListing = 25_000;
    public const decimal Theta = 100_000m;

    public static async Task<DemoPurchase> BuyAsync(
        IServiceProvider services, IAnsiConsole console, string buyer, IReadOnlyList<(Guid ListingId, string SellerId)> bundle, ValuationView tiered, CancellationToken cancellationToken)
    {
        await using var scope = services.CreateAsyncScope();
        var market = scope.ServiceProvider.GetRequiredService<MarketService>();
        foreach (var (listingId, sellerId) in bundle)
        {
            await market.PublishTermsAsync(sellerId, listingId, new PublishTermsRequest(ReservePerListing, ListPricePerListing, "demo"), cancellationToken);
        }

        var quote = await market.CreateQuoteAsync(buyer, new CreateQuoteRequest(tiered.Id, Theta, null), cancellationToken);
        var purchase = await market.PurchaseAsync(buyer, new CreatePurchaseRequest(quote.Id), $"demo-{quote.Id:N}", cancellationToken);

        var table = new Table()
            .Title($"{buyer} buys {bundle.Count} listings: ${quote.Price / 100m:N2} = clamp({Theta:N0} cents x gain {quote.Gain:F4}, reserves {quote.Floor:N0}, list {quote.Ceiling:N0})")
            .AddColumns("party", "tiered value", "weight", "cents");
        foreach (var share in quote.Shares)
        {
            table.AddRow(share.SellerId, share.Value.ToString("F4", CultureInfo.InvariantCulture), share.Weight.ToString("P2", CultureInfo.InvariantCulture), share.Amount.ToString("N0", CultureInfo.InvariantCulture));
        }

        table.AddRow("platform_fee", "", "", quote.Fee.ToString("N0", CultureInfo.InvariantCulture));
        table.AddRow("[bold]gross[/]", "", "", quote.Price.ToString("N0", CultureInfo.InvariantCulture));
        console.Write(table);
        if (quote.EqualSplit)
        {
            console.MarkupLine("No seller had a positive value: the net was split equally.");
        }

        return new DemoPurchase(purchase.Id, quote);
    }

    /// <summary>Every seller registers a (sandbox) payout destination, then one settlement run pays this month's released balances.</summary>
    public static async Task<SettlementRunView> SettleAsync(IServiceProvider services, IAnsiConsole console, IEnumerable<string> sellers, CancellationToken cancellationToken)
    {
        await using (var scope = services.CreateAsyncScope())
        {
            var market = scope.ServiceProvider.GetRequiredService<MarketService>();
            foreach (var seller in sellers)
            {
                await market.RegisterDestinationAsync(seller, cancellationToken);
            }
        }

        var period = DateTimeOffset.UtcNow.ToString("yyyy-MM", CultureInfo.InvariantCulture);
        var run = await services.GetRequiredService<SettlementRunner>().RunAsync(period, "demo", cancellationToken);
        SettleCommand.Print(console, run);
        return run;
    }

    /// <summary>What each seller is owed after the purchases (released earnings, payable at the next settlement run).</summary>
    public static async Task<IReadOnlyList<AccountBalance>> PrintPayablesAsync(IServiceProvider services, IAnsiConsole console, CancellationToken cancellationToken)
    {
        var database = await services.GetRequiredService<LedgerHost>().Database;
        var payables = await database.Ledger.GetBalancesAsync("seller_payable:", cancellationToken);
        var table = new Table().Title("Seller payables in the ledger after both purchases").AddColumns("account", "payable (cents)");
        foreach (var balance in payables)
        {
            table.AddRow(balance.AccountId, balance.PostedBalance.ToString("N0", CultureInfo.InvariantCulture));
        }

        console.Write(table);
        return payables;
    }
}
