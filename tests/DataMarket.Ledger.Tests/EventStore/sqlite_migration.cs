using DataMarket.Ledger.Model;
using DataMarket.Ledger.Storage;
using DataMarket.Ledger.Tests.Harness;

namespace DataMarket.Ledger.Tests.EventStore;

/// <summary>An embedded-mode ledger file from the first release opens, gains the inbox outcome columns, and keeps its data.</summary>
public sealed class sqlite_migration(SqliteFixture fixture) : IClassFixture<SqliteFixture>
{
    [Fact]
    public async Task a_file_without_inbox_outcomes_is_brought_forward_at_start()
    {
        var buyer = AccountRef.Buyer("migrated", "USD");
        var charge = new TransferRequest { Id = Guid.NewGuid(), Debit = AccountRef.PaymentClearing("USD"), Credit = buyer, Amount = 700, Code = TransferCode.Charge };
        Assert.Equal(LedgerStatus.Committed, (await fixture.Database.Ledger.CommitAsync(charge)).Status);
        await ExecuteAsync(fixture.Database, "ALTER TABLE {inbox} DROP COLUMN rejection", "ALTER TABLE {inbox} DROP COLUMN detail");
        Assert.Equal(0L, await InboxOutcomeColumnsAsync(fixture.Database));

        await using var reopened = await fixture.OpenAnotherAsync();
        await using var again = await fixture.OpenAnotherAsync(); // a second start finds nothing to do

        Assert.Equal(2L, await InboxOutcomeColumnsAsync(again));
        Assert.Equal(700, Assert.Single(await again.Ledger.GetBalancesAsync(buyer.Id)).PostedBalance);
        var refused = await again.Ledger.CommitAsync(
            new TransferRequest { Id = Guid.NewGuid(), Debit = buyer, Credit = AccountRef.SellerHeld("s", "USD"), Amount = 701, Code = TransferCode.Allocation },
            new LedgerCommandOptions { Inbox = new InboxReceipt("migration-test", Guid.NewGuid()) });
        Assert.Equal(LedgerRejection.ExceedsBalance, refused.Rejection);
    }

    private static async Task ExecuteAsync(LedgerDatabase database, params string[] statements)
    {
        await using var connection = await database.Backend.OpenAsync(CancellationToken.None);
        await using var transaction = await database.Backend.BeginAsync(connection, CancellationToken.None);
        await database.Backend.ExecuteAsync(transaction, statements.Select(s => new SqlStatement(s.Replace("{inbox}", ((Events.Sqlite.SqliteBackend)database.Backend).Table("inbox"), StringComparison.Ordinal))).ToList(), CancellationToken.None);
        await transaction.CommitAsync();
    }

    private static async Task<long> InboxOutcomeColumnsAsync(LedgerDatabase database)
    {
        await using var connection = await database.Backend.OpenAsync(CancellationToken.None);
        await using var command = StorageBackend.CreateCommand(
            connection,
            "SELECT count(*) FROM pragma_table_info(@table) WHERE name IN ('rejection', 'detail')",
            ("table", ((Events.Sqlite.SqliteBackend)database.Backend).Table("inbox")));
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
