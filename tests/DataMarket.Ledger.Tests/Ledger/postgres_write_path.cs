using DataMarket.Ledger.Events.Postgres;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Storage;
using DataMarket.Ledger.Tests.Harness;
using Npgsql;

namespace DataMarket.Ledger.Tests.Ledger;

/// <summary>
/// How the ledger uses PostgreSQL on its hot path: index probes for the rows a transfer touches, the
/// commit sent with the last writes, and the schema brought forward from older releases.
/// </summary>
public sealed class postgres_write_path(PostgresFixture fixture) : IClassFixture<PostgresFixture>
{
    private const string Usd = "USD";

    private static TransferRequest Charge(AccountRef buyer, long amount, string? reference = null) => new()
    {
        Id = Guid.NewGuid(),
        Debit = AccountRef.PaymentClearing(Usd),
        Credit = buyer,
        Amount = amount,
        Code = TransferCode.Charge,
        Reference = reference,
    };

    private async Task<string> PlanAsync(string sql)
    {
        await using var connection = await fixture.Database.Backend.OpenAsync(CancellationToken.None);
        await using var command = StorageBackend.CreateCommand(connection, "EXPLAIN " + sql);
        var lines = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            lines.Add(reader.GetString(0));
        }

        return string.Join('\n', lines);
    }

    [Fact]
    public async Task a_few_thousand_accounts_are_probed_by_index_not_scanned_whole()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var buyers = Enumerable.Range(0, 2_000).Select(i => AccountRef.Buyer($"plan-{run}-{i}", Usd)).ToArray();
        foreach (var chunk in buyers.Chunk(200))
        {
            var result = await fixture.Database.Ledger.CommitAsync(chunk.Select(b => Charge(b, 100)).ToArray());
            Assert.Equal(LedgerStatus.Committed, result.Status);
        }

        var accounts = fixture.Database.Backend.Table("accounts");
        var ids = string.Join(", ", buyers.Take(16).Select(b => $"'{b.Id}'"));
        var counts = string.Join(", ", Enumerable.Repeat("1", 16));

        // The shapes the ledger sends: lock the touched accounts, then write them back in one statement.
        var lockPlan = await PlanAsync($"SELECT id FROM {accounts} WHERE id = ANY(ARRAY[{ids}]) ORDER BY id FOR UPDATE");
        var updatePlan = await PlanAsync($"UPDATE {accounts} AS a SET debits_posted = u.n FROM unnest(ARRAY[{ids}], ARRAY[{counts}]::bigint[]) AS u(id, n) WHERE a.id = u.id");

        Assert.DoesNotContain("Seq Scan", lockPlan, StringComparison.Ordinal);
        Assert.Contains("accounts_pkey", lockPlan, StringComparison.Ordinal);
        Assert.DoesNotContain("Seq Scan", updatePlan, StringComparison.Ordinal);
        Assert.Contains("accounts_pkey", updatePlan, StringComparison.Ordinal);
    }

    [Fact]
    public void an_operators_own_random_page_cost_is_left_alone()
    {
        Assert.Equal("-c random_page_cost=1.1", PostgresBackend.WithIndexFriendlyCosts(null));
        Assert.Equal("-c search_path=x -c random_page_cost=1.1", PostgresBackend.WithIndexFriendlyCosts("-c search_path=x"));
        Assert.Equal("-c random_page_cost=2", PostgresBackend.WithIndexFriendlyCosts("-c random_page_cost=2"));
    }

    [Fact]
    public async Task a_group_whose_folded_commit_fails_leaves_nothing_behind_and_the_next_group_commits()
    {
        var database = fixture.Database;
        var schema = ((PostgresBackend)database.Backend).Schema;
        var buyer = AccountRef.Buyer("folded-" + Guid.NewGuid().ToString("N")[..8], Usd);
        Assert.Equal(LedgerStatus.Committed, (await database.Ledger.CommitAsync(Charge(buyer, 100))).Status);
        var before = await database.Ledger.GetBalancesAsync(buyer.Id);

        // Make the transfers insert (after the stream and event inserts of the same batch) fail for one reference.
        await ExecuteAsync(
            $"""
            CREATE OR REPLACE FUNCTION {schema}.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.reference = 'poison' THEN RAISE EXCEPTION 'refused by test trigger'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_poison BEFORE INSERT ON {schema}.transfers FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_poison();
            """);
        try
        {
            var poisoned = Charge(buyer, 50, reference: "poison");
            var failure = await Assert.ThrowsAsync<PostgresException>(() => database.Ledger.CommitAsync(poisoned));
            Assert.Contains("refused by test trigger", failure.MessageText, StringComparison.Ordinal);

            Assert.Null(await database.Ledger.GetTransferAsync(poisoned.Id));
            Assert.Equal(0L, await ScalarAsync($"SELECT count(*) FROM {schema}.streams WHERE id = 'transfer-{poisoned.Id}'"));
            Assert.Equal(before, await database.Ledger.GetBalancesAsync(buyer.Id));

            // The pooled connections were handed back clean: the next groups commit normally.
            var next = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => database.Ledger.CommitAsync(Charge(buyer, 10))));
            Assert.All(next, r => Assert.Equal(LedgerStatus.Committed, r.Status));
        }
        finally
        {
            await ExecuteAsync($"DROP TRIGGER refuse_poison ON {schema}.transfers");
        }

        Assert.Equal(180, Assert.Single(await database.Ledger.GetBalancesAsync(buyer.Id)).PostedBalance);
        var report = await database.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
    }

    [Fact]
    public async Task an_older_schema_is_migrated_at_start()
    {
        var schema = ((PostgresBackend)fixture.Database.Backend).Schema;
        // What the first release created: a foreign key from events to streams, an inbox without outcomes.
        await ExecuteAsync(
            $"""
            ALTER TABLE {schema}.events ADD CONSTRAINT events_stream_id_fkey FOREIGN KEY (stream_id) REFERENCES {schema}.streams(id);
            ALTER TABLE {schema}.inbox DROP COLUMN rejection, DROP COLUMN detail;
            """);

        await using (var reopened = await fixture.OpenAnotherAsync())
        {
            Assert.Equal(0L, await ScalarAsync($"SELECT count(*) FROM pg_constraint WHERE conname = 'events_stream_id_fkey' AND connamespace = '{schema}'::regnamespace"));
            Assert.Equal(2L, await ScalarAsync($"SELECT count(*) FROM information_schema.columns WHERE table_schema = '{schema}' AND table_name = 'inbox' AND column_name IN ('rejection', 'detail')"));
        }
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(PostgresFixture.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(PostgresFixture.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
