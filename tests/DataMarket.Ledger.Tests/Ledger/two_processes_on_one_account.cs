using DataMarket.Ledger.Model;
using DataMarket.Ledger.Tests.Harness;

namespace DataMarket.Ledger.Tests.Ledger;

/// <summary>
/// Two handles on one database stand for two processes: each has its own group-commit writers and its own
/// in-process queueing, so only the store stops them from both spending the same money (on PostgreSQL the
/// account and statement documents' revisions; on SQLite its single writer). They race to spend one funded
/// account twice over, through group commit and through inbox commands: exactly the funded amount may move.
/// </summary>
public abstract class two_processes_on_one_account<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : LedgerDatabaseFixture
{
    [Fact]
    public async Task spend_exactly_the_balance_between_them_and_verify()
    {
        const int funded = 120;
        var run = Guid.NewGuid().ToString("N")[..8];
        var buyer = AccountRef.Buyer("shared-" + run, "USD");
        var seller = AccountRef.SellerHeld("shared-" + run, "USD");
        var clock = new ManualClock(new DateTimeOffset(2026, 11, 15, 12, 0, 0, TimeSpan.Zero));
        await using var first = await fixture.OpenAnotherAsync(clock);
        await using var second = await fixture.OpenAnotherAsync(clock);
        var funding = await first.Ledger.CommitAsync(new TransferRequest { Id = Guid.NewGuid(), Debit = AccountRef.PaymentClearing("USD"), Credit = buyer, Amount = funded, Code = TransferCode.Charge });
        Assert.Equal(LedgerStatus.Committed, funding.Status);

        // Twice as many one-cent allocations as there are cents, half from each process, half of them with an inbox receipt.
        var attempts = Enumerable.Range(0, 2 * funded).Select(i => (
            Database: i % 2 == 0 ? first : second,
            Transfer: new TransferRequest { Id = Guid.NewGuid(), Debit = buyer, Credit = seller, Amount = 1, Code = TransferCode.Allocation },
            Options: i % 4 < 2 ? null : new LedgerCommandOptions { Inbox = new InboxReceipt("race-" + run, Guid.NewGuid()) })).ToList();
        var outcomes = await Task.WhenAll(attempts.Chunk(attempts.Count / 8).Select(chunk => Task.Run(async () =>
        {
            var results = new List<LedgerResult>();
            foreach (var (database, transfer, options) in chunk)
            {
                results.Add(await database.Ledger.CommitAsync(transfer, options));
            }

            return results;
        })));

        var all = outcomes.SelectMany(o => o).ToList();
        Assert.Equal(funded, all.Count(r => r.Status == LedgerStatus.Committed));
        Assert.Equal(funded, all.Count(r => r.Rejection == LedgerRejection.ExceedsBalance));
        var balance = Assert.Single(await second.Ledger.GetBalancesAsync(buyer.Id));
        Assert.Equal(0, balance.PostedBalance);
        Assert.Equal(funded, Assert.Single(await first.Ledger.GetBalancesAsync(seller.Id)).PostedBalance);
        var statement = await first.Ledger.GetSellerStatementAsync(seller.Owner, "2026-11");
        Assert.Equal(funded, Assert.Single(statement.Lines).Earned);
        var report = await first.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
    }
}

public sealed class two_processes_on_one_account_on_postgres(PostgresFixture fixture) : two_processes_on_one_account<PostgresFixture>(fixture);

public sealed class two_processes_on_one_account_on_sqlite(SqliteFixture fixture) : two_processes_on_one_account<SqliteFixture>(fixture);
