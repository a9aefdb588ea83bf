using System.Globalization;
using DataMarket.Catalog.Application;
using DataMarket.Contracts;
using DataMarket.Ledger.Model;
using DataMarket.ServiceDefaults.Ledger;
using DataMarket.Settlement.Pricing;
using DataMarket.Settlement.Postings;
using DataMarket.Settlement.Split;
using DataMarket.Valuation.Statistics;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace DataMarket.Cli.Demo;

/// <summary>One purchase of the demo: the quote it bought and the ledger lines it committed.</summary>
public sealed record DemoPurchase(Guid PurchaseId, Quote Quote, IReadOnlyList<TransferLine> Lines);

/// <summary>
/// The demo's purchases: a quote per buyer from the tiered valuation of its bundle, priced theta x gain within the
/// listings' reserves and list prices, split by value, and committed to the ledger through <see cref="CommitTransfers"/>
/// on the bus (charge, platform fee, held shares, and, with the demo's zero refund window, their release).
/// </summary>
public static class DemoPurchases
{
    public const long ReservePerListing = 500;
    public const long ListPricePerListing = 25_000;
    public const decimal Theta = 100_000m;
    public static readonly FeePolicy Fee = new(0.10m, 50);

    public static async Task<DemoPurchase> BuyAsync(
        IServiceProvider services, IAnsiConsole console, string buyer, Guid taskId, IReadOnlyList<(Guid ListingId, string SellerId)> bundle, ValuationView tiered, CancellationToken cancellationToken)
    {
        var terms = bundle.Select(l => new ListingTerms(l.ListingId.ToString(), l.SellerId, ReservePerListing, ListPricePerListing)).ToList();
        var values = tiered.Sellers.Select(s => new SellerEstimate(s.SellerId, new ValueEstimate(s.Value.Value, s.Value.StandardError ?? double.NaN))).ToList();
        var quote = Quote.Create(Guid.NewGuid(), buyer, taskId.ToString(), terms, values, Theta, GainPolicy.Estimate, Fee, "USD", DateTimeOffset.UtcNow, Quote.DefaultLifetime);
        quote.CheckPurchasableBy(buyer, DateTimeOffset.UtcNow);

        var purchaseId = Guid.NewGuid();
        var lines = PurchasePostings.Sale(purchaseId, buyer, quote.Currency, quote.Split).Concat(PurchasePostings.Release(purchaseId, quote.Currency, quote.Split)).ToList();
        await services.GetRequiredService<IBus>().Publish(new CommitTransfers { CommandId = purchaseId, Transfers = lines, Actor = "demo" }, cancellationToken);
        await WaitForAsync(services, lines[^1].TransferId, cancellationToken);

        var table = new Table()
            .Title($"{buyer} buys {bundle.Count} listings: ${quote.Price / 100m:N2} = clamp({Theta:N0} cents x gain {quote.Pricing.Gain:F4}, reserves {quote.Pricing.Floor:N0}, list {quote.Pricing.Ceiling:N0})")
            .AddColumns("party", "tiered value", "weight", "cents");
        foreach (var share in quote.Split.Shares)
        {
            var value = values.Single(v => v.SellerId == share.SellerId).Value.Value;
            table.AddRow(share.SellerId, value.ToString("F4", CultureInfo.InvariantCulture), share.Weight.ToString("P2", CultureInfo.InvariantCulture), share.Amount.ToString("N0", CultureInfo.InvariantCulture));
        }

        table.AddRow("platform_fee", "", "", quote.Split.Fee.ToString("N0", CultureInfo.InvariantCulture));
        table.AddRow("[bold]gross[/]", "", "", quote.Split.Gross.ToString("N0", CultureInfo.InvariantCulture));
        console.Write(table);
        if (quote.Split.EqualSplit)
        {
            console.MarkupLine("No seller had a positive value: the net was split equally.");
        }

        return new DemoPurchase(purchaseId, quote, lines);
    }

    /// <summary>The ledger worker commits the batch asynchronously; the batch is all or nothing, so its last transfer stands for all.</summary>
    private static async Task WaitForAsync(IServiceProvider services, Guid transferId, CancellationToken cancellationToken)
    {
        var database = await services.GetRequiredService<LedgerHost>().Database;
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (await database.Ledger.GetTransferAsync(transferId, cancellationToken) is null)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the ledger did not commit transfer {transferId} within a minute");
            }

            await Task.Delay(50, cancellationToken);
        }
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
