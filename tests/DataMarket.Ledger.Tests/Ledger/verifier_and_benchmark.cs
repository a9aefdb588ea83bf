using DataMarket.Ledger.Benchmarks;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Storage;
using DataMarket.Ledger.Tests.Harness;

namespace DataMarket.Ledger.Tests.Ledger;

/// <summary>The verifier notices a projection that no longer matches the log, and a rebuild repairs it.</summary>
public abstract class verifier_catches_a_tampered_projection<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : LedgerDatabaseFixture
{
    [Fact]
    public async Task tampering_fails_verification_and_a_rebuild_restores_the_log_state()
    {
        var database = fixture.Database;
        var buyer = AccountRef.Buyer("tampered-" + Guid.NewGuid().ToString("N")[..8], "USD");
        await database.Ledger.CommitAsync(new TransferRequest { Id = Guid.NewGuid(), Debit = AccountRef.PaymentClearing("USD"), Credit = buyer, Amount = 1_000, Code = TransferCode.Charge });
        Assert.True((await database.VerifyAsync()).Passed);

        if (database.Backend is Events.Postgres.PostgresBackend postgres)
        {
            // The balance is a Marten document: change it behind the ledger's back, as a stray writer would.
            await using var session = postgres.Marten.Store.LightweightSession();
            var account = (await session.LoadAsync<Events.MartenStore.AccountDocument>(buyer.Id))!;
            account.CreditsPosted++;
            session.UpdateRevision(account, account.Revision + 1);
            await session.SaveChangesAsync();
        }
        else
        {
            await using var connection = await database.Backend.OpenAsync(CancellationToken.None);
            await using var transaction = await database.Backend.BeginAsync(connection, CancellationToken.None);
            await database.Backend.ExecuteAsync(
                transaction,
                [new SqlStatement($"UPDATE {((Events.Sqlite.SqliteBackend)database.Backend).Table("accounts")} SET credits_posted = credits_posted + 1 WHERE id = @id", ("id", buyer.Id))],
                CancellationToken.None);
            await transaction.CommitAsync();
        }

        var broken = await database.VerifyAsync();
        Assert.False(broken.Passed);
        Assert.Contains(broken.Checks, c => c.Name == "debits equal credits per currency" && !c.Passed);
        Assert.Contains(broken.Checks, c => c.Name == "rebuild equals inline projections" && !c.Passed);

        await database.RebuildProjectionsAsync();

        var repaired = await database.VerifyAsync();
        Assert.True(repaired.Passed, repaired.ToText());
        Assert.Equal(1_000, Assert.Single(await database.Ledger.GetBalancesAsync(buyer.Id)).PostedBalance);
    }
}

/// <summary>
/// An event whose stream row is gone: SQLite keeps a foreign key and refuses; Marten's cascading key takes
/// the events with the row.
/// </summary>
public abstract class an_orphan_event<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : LedgerDatabaseFixture
{
    protected LedgerDatabase Database => fixture.Database;

    protected async Task<string> AppendOneAsync()
    {
        var streamId = "orphan-" + Guid.NewGuid().ToString("N")[..8];
        await Database.Events.AppendAsync(streamId, "test", Events.ExpectedVersion.NoStream, [new Events.NewEvent(Guid.NewGuid(), "test.happened", "{}", new Events.EventMetadata { Timestamp = DateTimeOffset.UtcNow })]);
        Assert.True((await Database.VerifyAsync()).Passed);
        return streamId;
    }

    protected async Task DeleteStreamRowAsync(string streamId)
    {
        await using var connection = await Database.Backend.OpenAsync(CancellationToken.None);
        await using var transaction = await Database.Backend.BeginAsync(connection, CancellationToken.None);
        await Database.Backend.ExecuteAsync(
            transaction,
            [new SqlStatement($"DELETE FROM {Database.Backend.StreamsTable} WHERE id = @id", ("id", streamId))],
            CancellationToken.None);
        await transaction.CommitAsync();
    }
}

/// <summary>
/// On Marten, events hang on their stream row by a cascading foreign key: an orphan cannot be made (the
/// events go with the row), so the verifier's stream checks are shown on a stream row with a wrong version.
/// </summary>
public sealed class an_orphan_event_on_postgres(PostgresFixture fixture) : an_orphan_event<PostgresFixture>(fixture)
{
    [Fact]
    public async Task cannot_be_made_because_the_events_go_with_their_stream_row()
    {
        var streamId = await AppendOneAsync();

        await DeleteStreamRowAsync(streamId);

        Assert.Empty(await Database.Events.ReadStreamAsync(streamId));
        Assert.True((await Database.VerifyAsync()).Passed);
    }

    [Fact]
    public async Task a_stream_row_with_a_wrong_version_fails_verification()
    {
        var streamId = await AppendOneAsync();
        await SetStreamVersionAsync(streamId, 5);

        var broken = await Database.VerifyAsync();
        Assert.False(broken.Passed);
        var streams = Assert.Single(broken.Checks, c => c.Name == "stream versions contiguous from 1");
        Assert.Contains("1 streams with gaps or wrong version", streams.Detail, StringComparison.Ordinal);

        // The class shares one database: put the row back.
        await SetStreamVersionAsync(streamId, 1);
        Assert.True((await Database.VerifyAsync()).Passed);
    }

    private async Task SetStreamVersionAsync(string streamId, long version)
    {
        await using var connection = await Database.Backend.OpenAsync(CancellationToken.None);
        await using var transaction = await Database.Backend.BeginAsync(connection, CancellationToken.None);
        await Database.Backend.ExecuteAsync(
            transaction,
            [new SqlStatement($"UPDATE {Database.Backend.StreamsTable} SET version = @version WHERE id = @id", ("version", version), ("id", streamId))],
            CancellationToken.None);
        await transaction.CommitAsync();
    }
}

public sealed class an_orphan_event_on_sqlite(SqliteFixture fixture) : an_orphan_event<SqliteFixture>(fixture)
{
    [Fact]
    public async Task cannot_be_made()
    {
        var streamId = await AppendOneAsync();

        var refused = await Assert.ThrowsAsync<Microsoft.Data.Sqlite.SqliteException>(() => DeleteStreamRowAsync(streamId));

        Assert.Contains("FOREIGN KEY", refused.Message, StringComparison.Ordinal);
        Assert.True((await Database.VerifyAsync()).Passed);
    }
}

public sealed class verifier_catches_a_tampered_projection_on_postgres(PostgresFixture fixture) : verifier_catches_a_tampered_projection<PostgresFixture>(fixture);

public sealed class verifier_catches_a_tampered_projection_on_sqlite(SqliteFixture fixture) : verifier_catches_a_tampered_projection<SqliteFixture>(fixture);

public sealed class benchmark_runner(SqliteFixture fixture) : IClassFixture<SqliteFixture>
{
    [Fact]
    public async Task a_short_run_reports_every_scenario_and_leaves_a_valid_ledger()
    {
        var progressed = new List<string>();
        var options = new LedgerBenchmarkOptions
        {
            WarmUp = TimeSpan.FromMilliseconds(50),
            MaxWarmUp = TimeSpan.FromMilliseconds(300),
            Duration = TimeSpan.FromSeconds(1),
            AppendWriters = [1],
            TransferWriters = [1, 2],
            PipelinedInFlightPerWriter = 2,
            Accounts = 5,
            Burst = 20,
            Progress = r => progressed.Add($"{r.Scenario}/{r.Writers}"),
        };

        var report = await LedgerBenchmark.RunAsync(fixture.Database, options);

        Assert.Equal(report.Results.Select(r => $"{r.Scenario}/{r.Writers}"), progressed);

        Assert.Equal(
            ["append 1-event transactions/1", "append 10-event transactions/1", "transfers/1", "transfers/2", "transfers, 2 in flight/writer/2",
             "burst: payouts into 1 shared account/20", "burst: posts (ResolvePendingAsync)/20"],
            report.Results.Select(r => $"{r.Scenario}/{r.Writers}"));
        Assert.All(report.Results, r => Assert.True(r.Operations > 0, r.ToString()));
        Assert.All(report.Results, r => Assert.InRange(r.WarmedUp, options.WarmUp, options.MaxWarmUp + TimeSpan.FromSeconds(5)));
        Assert.Contains("transfers", report.ToText(), StringComparison.Ordinal);
        var verification = await fixture.Database.VerifyAsync();
        Assert.True(verification.Passed, verification.ToText());
    }
}

public sealed class benchmark_report
{
    private static LedgerBenchmarkResult Transfers(int writers, long operations) => new("transfers", writers, operations, operations, TimeSpan.FromSeconds(1));

    [Fact]
    public void it_prints_the_group_commit_ratio_and_whether_the_16_writer_targets_are_met()
    {
        var pipelined = new LedgerBenchmarkResult("transfers, 8 in flight/writer", 16, 5_000, 5_000, TimeSpan.FromSeconds(1));
        var met = new LedgerBenchmarkReport("postgresql", [Transfers(1, 800), Transfers(4, 2_800), Transfers(16, 7_200), pipelined]).ToText();
        var missed = new LedgerBenchmarkReport("postgresql", [Transfers(1, 800), Transfers(16, 2_499), pipelined with { Operations = 4_999 }]).ToText();

        Assert.Contains("16 writers reach 9.0x the transfers/s of 1 writer", met, StringComparison.Ordinal);
        Assert.Contains("at least 2,500 transfers/s with 16 writers x 1 in flight: met (7,200/s)", met, StringComparison.Ordinal);
        Assert.Contains("at least 5,000 transfers/s with 16 writers x 8 in flight: met (5,000/s)", met, StringComparison.Ordinal);
        Assert.Contains("with 16 writers x 1 in flight: NOT met (2,499/s)", missed, StringComparison.Ordinal);
        Assert.Contains("with 16 writers x 8 in flight: NOT met (4,999/s)", missed, StringComparison.Ordinal);
    }

    [Fact]
    public void a_run_without_16_writers_makes_no_claim_about_the_target()
    {
        var text = new LedgerBenchmarkReport("sqlite", [Transfers(1, 100), Transfers(2, 150)]).ToText();

        Assert.Contains("2 writers reach 1.5x", text, StringComparison.Ordinal);
        Assert.DoesNotContain("target", text, StringComparison.Ordinal);
    }
}
