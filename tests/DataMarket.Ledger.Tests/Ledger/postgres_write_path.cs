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

        var accounts = $"{((PostgresBackend)fixture.Database.Backend).Schema}.mt_doc_accountdocument";
        var ids = string.Join(", ", buyers.Take(16).Select(b => $"'{b.Id}'"));

        // The shape of Marten's batched load of the accounts a group touches.
        var loadPlan = await PlanAsync($"SELECT data, id, mt_version FROM {accounts} WHERE id = ANY(ARRAY[{ids}])");

        Assert.DoesNotContain("Seq Scan", loadPlan, StringComparison.Ordinal);
        Assert.Contains("pkey", loadPlan, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ledger_sessions_probe_with_index_friendly_costs_unless_the_operator_set_their_own()
    {
        Assert.Equal("1.1", await SettingAsync(PostgresFixture.ConnectionString));
        var operatorSet = new NpgsqlConnectionStringBuilder(PostgresFixture.ConnectionString) { Options = "-c random_page_cost=2" }.ConnectionString;
        Assert.Equal("2", await SettingAsync(operatorSet));

        Assert.True(PostgresBackend.SetsRandomPageCost("-c search_path=x --random_page_cost=3"));
        Assert.False(PostgresBackend.SetsRandomPageCost("-c application_name=random_page_cost_fan"));
        Assert.False(PostgresBackend.SetsRandomPageCost(null));
    }

    private static async Task<string> SettingAsync(string connectionString)
    {
        await using var backend = new PostgresBackend(connectionString, "ledger_settings_probe");
        await using var connection = await backend.OpenAsync(CancellationToken.None);
        await using var command = StorageBackend.CreateCommand(connection, "SHOW random_page_cost");
        return (string)(await command.ExecuteScalarAsync())!;
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
                IF coalesce(NEW.data->>'Reference', NEW.data->>'reference') = 'poison' THEN RAISE EXCEPTION 'refused by test trigger'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_poison BEFORE INSERT ON {schema}.mt_doc_transferdocument FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_poison();
            CREATE OR REPLACE FUNCTION {schema}.refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF coalesce(NEW.data->>'Reference', NEW.data->>'reference') = 'poison-at-commit' THEN RAISE EXCEPTION 'refused at commit by test trigger'; END IF;
                RETURN NULL;
            END $$;
            CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON {schema}.mt_doc_transferdocument DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_at_commit();
            """);
        try
        {
            // One failure inside the batch (COMMIT is skipped), one raised by COMMIT itself (deferred).
            foreach (var (reference, message) in new[] { ("poison", "refused by test trigger"), ("poison-at-commit", "refused at commit by test trigger") })
            {
                var poisoned = Charge(buyer, 50, reference);
                var failure = await RaisedByPostgresAsync(database.Ledger.CommitAsync(poisoned));
                Assert.Equal(message, failure.MessageText);

                Assert.Null(await database.Ledger.GetTransferAsync(poisoned.Id));
                Assert.Equal(0L, await ScalarAsync($"SELECT count(*) FROM {database.Backend.StreamsTable} WHERE id = 'transfer-{poisoned.Id}'"));
                Assert.Equal(before, await database.Ledger.GetBalancesAsync(buyer.Id));
            }

            // Submitted together, the commands share groups: the poisoned one fails alone, its neighbours commit.
            var poisonedAmongThem = Charge(buyer, 50, "poison");
            var together = Enumerable.Range(0, 9).Select(i => i == 4 ? poisonedAmongThem : Charge(buyer, 10)).ToList();
            var submitted = together.Select(t => (t, database.Ledger.CommitAsync(t))).ToList();
            foreach (var (transfer, outcome) in submitted)
            {
                if (transfer == poisonedAmongThem)
                {
                    await RaisedByPostgresAsync(outcome);
                }
                else
                {
                    Assert.Equal(LedgerStatus.Committed, (await outcome).Status);
                }
            }

            Assert.Null(await database.Ledger.GetTransferAsync(poisonedAmongThem.Id));
        }
        finally
        {
            await ExecuteAsync($"DROP TRIGGER refuse_poison ON {schema}.mt_doc_transferdocument; DROP TRIGGER refuse_at_commit ON {schema}.mt_doc_transferdocument");
        }

        Assert.Equal(180, Assert.Single(await database.Ledger.GetBalancesAsync(buyer.Id)).PostedBalance);
        var report = await database.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
    }

    /// <summary>The server's error, whether Marten hands it on as it is or wrapped in its own exception.</summary>
    private static async Task<PostgresException> RaisedByPostgresAsync(Task task)
    {
        var thrown = await Record.ExceptionAsync(() => task);
        for (var e = thrown; e is not null; e = e.InnerException)
        {
            if (e is PostgresException postgres)
            {
                return postgres;
            }
        }

        throw new Xunit.Sdk.XunitException($"Expected a PostgreSQL error, got {thrown?.ToString() ?? "none"}.");
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
