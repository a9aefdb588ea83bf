using DataMarket.SettlementService.Benchmarks;

namespace DataMarket.Settlement.Tests;

/// <summary>
/// <c>bench settlement</c> on a few sellers, so the command cannot rot: seeding through the ledger port, one run on
/// scratch PostgreSQL schemas, and the bench's own checks (every seller paid its seeded share once, clean
/// reconciliation, a re-run changing nothing, ledger verify). Timings are printed by the command, never asserted.
/// </summary>
public sealed class settlement_bench_smoke
{
    [Fact]
    public async Task a_small_bench_pays_every_seeded_seller_once_and_its_checks_pass()
    {
        var lines = new List<string>();
        var report = await SettlementBenchmark.RunOnScratchPostgresAsync(two_scheduler_nodes_on_postgres.ConnectionString, new SettlementBenchmarkOptions
        {
            Sellers = 25,
            SellersPerSale = 7,
            // A few connections only: other test assemblies share the server's connection slots.
            PayoutConcurrency = 4,
            Progress = lines.Add,
        }, CancellationToken.None);

        Assert.True(report.Passed, string.Join("; ", report.Problems));
        Assert.Equal(25, report.Paid);
        Assert.Equal(report.SeededTotal, report.PaidTotal);
        Assert.True(report.Reconciliation!.Clean);
        Assert.Equal(25, report.Reconciliation.ProviderTransfers);
        Assert.True(report.LedgerVerified);
        Assert.Contains("sellers/s", report.ToText(), StringComparison.Ordinal);
        Assert.Contains(lines, l => l.StartsWith("settlement run completed", StringComparison.Ordinal));
    }
}
