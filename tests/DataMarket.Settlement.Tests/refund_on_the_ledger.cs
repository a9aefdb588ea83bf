using DataMarket.Contracts;
using DataMarket.Ledger;
using DataMarket.Ledger.Model;
using DataMarket.Settlement.Postings;
using DataMarket.Settlement.Split;
using DataMarket.SettlementService.Infrastructure;

namespace DataMarket.Settlement.Tests;

/// <summary>The purchase lines committed to a real (SQLite) ledger: a full refund leaves every balance where it started.</summary>
public sealed class refund_on_the_ledger : IAsyncLifetime
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"datamarket-settlement-{Guid.NewGuid():N}.db");
    private LedgerDatabase _database = null!;

    public async Task InitializeAsync() => _database = await LedgerDatabase.OpenSqliteAsync($"Data Source={_path}");

    public async Task DisposeAsync()
    {
        await _database.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        File.Delete(_path);
    }

    [Fact]
    public async Task a_sale_then_a_full_refund_restores_every_balance_and_the_ledger_verifies()
    {
        var split = RevenueSplit.Allocate(12_345, new FeePolicy(0.1m, 50), [new ValuedSeller("a", 0.3), new ValuedSeller("b", 0.1), new ValuedSeller("c", -0.2)]);
        var purchase = Guid.NewGuid();

        var sale = await _database.Ledger.CommitAsync(PurchasePostings.Sale(purchase, "buyer-1", "USD", split).Select(LedgerAccess.ToRequest).ToList());
        Assert.Equal(LedgerStatus.Committed, sale.Status);
        var held = await _database.Ledger.GetBalancesAsync("seller_held:");
        Assert.Equal(split.Shares.Where(s => s.Amount > 0).Select(s => s.Amount), held.OrderBy(b => b.Owner).Select(b => b.PostedBalance));

        var refund = await _database.Ledger.CommitAsync(PurchasePostings.Refund(purchase, "buyer-1", "USD", split).Select(LedgerAccess.ToRequest).ToList());
        Assert.Equal(LedgerStatus.Committed, refund.Status);
        Assert.All(await _database.Ledger.GetBalancesAsync(), b => Assert.Equal(0, b.PostedBalance));
        // Resending the refund changes nothing.
        Assert.Equal(LedgerStatus.AlreadyCommitted, (await _database.Ledger.CommitAsync(PurchasePostings.Refund(purchase, "buyer-1", "USD", split).Select(LedgerAccess.ToRequest).ToList())).Status);
        var report = await _database.VerifyAsync();
        Assert.All(report.Checks, c => Assert.True(c.Passed, c.ToString()));
    }
}
