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

        await using (var connection = await database.Backend.OpenAsync(CancellationToken.None))
        await using (var transaction = await database.Backend.BeginAsync(connection, CancellationToken.None))
        {
            await database.Backend.ExecuteAsync(
                transaction,
                [new SqlStatement($"UPDATE {database.Backend.Table("accounts")} SET credits_posted = credits_posted + 1 WHERE id = @id", ("id", buyer.Id))],
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

public sealed class verifier_catches_a_tampered_projection_on_postgres(PostgresFixture fixture) : verifier_catches_a_tampered_projection<PostgresFixture>(fixture);

public sealed class verifier_catches_a_tampered_projection_on_sqlite(SqliteFixture fixture) : verifier_catches_a_tampered_projection<SqliteFixture>(fixture);

public sealed class benchmark_runner(SqliteFixture fixture) : IClassFixture<SqliteFixture>
{
    [Fact]
    public async Task a_short_run_reports_every_scenario_and_leaves_a_valid_ledger()
    {
        var options = new LedgerBenchmarkOptions
        {
            WarmUp = TimeSpan.FromMilliseconds(50),
            Duration = TimeSpan.FromMilliseconds(200),
            AppendWriters = [1],
            TransferWriters = [1, 2],
            PipelinedInFlightPerWriter = 2,
            Accounts = 5,
        };

        var report = await LedgerBenchmark.RunAsync(fixture.Database, options);

        Assert.Equal(
            ["append 1-event transactions/1", "append 10-event transactions/1", "transfers/1", "transfers/2", "transfers, 2 in flight/writer/2"],
            report.Results.Select(r => $"{r.Scenario}/{r.Writers}"));
        Assert.All(report.Results, r => Assert.True(r.Operations > 0, r.ToString()));
        Assert.Contains("transfers", report.ToText(), StringComparison.Ordinal);
        var verification = await fixture.Database.VerifyAsync();
        Assert.True(verification.Passed, verification.ToText());
    }
}
