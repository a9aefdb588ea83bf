using DataMarket.Ledger.Model;
using DataMarket.Ledger.Tests.Harness;

namespace DataMarket.Ledger.Tests.Ledger;

/// <summary>
/// On PostgreSQL a group commit's first attempt decides on the accounts as this process last saw them and
/// assumes its transfer ids are new (no read round trip). Another process moving the balance in between
/// must change nothing about the outcomes: a refusal made on the stale view is decided again from a fresh
/// read, an acceptance made on it fails its revision check and is decided again, and a used id is still
/// found. SQLite (one writer, no cache) must give the same answers.
/// </summary>
public abstract class rows_cached_between_group_commits<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : LedgerDatabaseFixture
{
    [Fact]
    public async Task another_process_moving_the_balance_changes_no_outcome()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var buyer = AccountRef.Buyer("cached-" + run, "USD");
        var seller = AccountRef.SellerHeld("cached-" + run, "USD");
        await using var first = await fixture.OpenAnotherAsync();
        await using var second = await fixture.OpenAnotherAsync();
        TransferRequest Fund(long amount) => new() { Id = Guid.NewGuid(), Debit = AccountRef.PaymentClearing("USD"), Credit = buyer, Amount = amount, Code = TransferCode.Charge };
        TransferRequest Spend(long amount) => new() { Id = Guid.NewGuid(), Debit = buyer, Credit = seller, Amount = amount, Code = TransferCode.Allocation };

        // The first process holds the buyer at 10; the second brings it to 100.
        Assert.Equal(LedgerStatus.Committed, (await first.Ledger.CommitAsync(Fund(10))).Status);
        Assert.Equal(LedgerStatus.Committed, (await second.Ledger.CommitAsync(Fund(90))).Status);

        // On the first's view 50 exceeds the balance; on the database it does not.
        Assert.Equal(LedgerStatus.Committed, (await first.Ledger.CommitAsync(Spend(50))).Status);

        // Now the first holds 50; the second spends 40, leaving 10; the first's 30 would pass on its view only.
        Assert.Equal(LedgerStatus.Committed, (await second.Ledger.CommitAsync(Spend(40))).Status);
        var late = await first.Ledger.CommitAsync(Spend(30));
        Assert.Equal(LedgerRejection.ExceedsBalance, late.Rejection);
        Assert.Equal(10, Assert.Single(await first.Ledger.GetBalancesAsync(buyer.Id)).PostedBalance);

        // An id committed by the other process is found, with or without the same content.
        var shared = Spend(5);
        Assert.Equal(LedgerStatus.Committed, (await second.Ledger.CommitAsync(shared)).Status);
        Assert.Equal(LedgerStatus.AlreadyCommitted, (await first.Ledger.CommitAsync(shared)).Status);
        Assert.Equal(LedgerRejection.IdReusedWithDifferentContent, (await first.Ledger.CommitAsync(shared with { Amount = 4 })).Rejection);
        Assert.Equal(5, Assert.Single(await second.Ledger.GetBalancesAsync(buyer.Id)).PostedBalance);
        Assert.Equal(95, Assert.Single(await first.Ledger.GetBalancesAsync(seller.Id)).PostedBalance);
        var report = await first.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
    }
}

public sealed class rows_cached_between_group_commits_on_postgres(PostgresFixture fixture) : rows_cached_between_group_commits<PostgresFixture>(fixture);

public sealed class rows_cached_between_group_commits_on_sqlite(SqliteFixture fixture) : rows_cached_between_group_commits<SqliteFixture>(fixture);
