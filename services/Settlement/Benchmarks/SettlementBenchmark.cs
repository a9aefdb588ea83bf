using System.Diagnostics;
using System.Globalization;
using DataMarket.Ledger;
using DataMarket.Ledger.Model;
using DataMarket.Settlement;
using DataMarket.Settlement.Postings;
using DataMarket.Settlement.Split;
using DataMarket.SettlementService.Application;
using DataMarket.SettlementService.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace DataMarket.SettlementService.Benchmarks;

public sealed record SettlementBenchmarkOptions
{
    public int Sellers { get; init; } = 1_000;

    /// <summary>Sellers per seeded sale: each sale is one linked ledger batch (charge, fee, one share per seller), then one release batch.</summary>
    public int SellersPerSale { get; init; } = 1_000;

    public string Period { get; init; } = "2026-11";

    /// <summary>Sellers paid (and destinations seeded) at once; each holds a database connection while it works.</summary>
    public int PayoutConcurrency { get; init; } = new SettlementOptions().PayoutConcurrency;

    public Action<string>? Progress { get; init; }
}

/// <param name="Seconds">Wall time of the settlement run alone (seeding and checks excluded).</param>
/// <param name="RerunSeconds">Wall time of running the same period again (must change nothing).</param>
public sealed record SettlementBenchmarkReport(
    int Sellers, double SeedSeconds, double Seconds, double RerunSeconds, double LoadBefore, double LoadAfter,
    int Paid, long PaidTotal, long SeededTotal, Reconciliation? Reconciliation, bool LedgerVerified, IReadOnlyList<string> Problems)
{
    public double SellersPerSecond => Sellers / Seconds;

    public bool Passed => Problems.Count == 0;

    public string ToText() => string.Create(CultureInfo.InvariantCulture,
        $"""
        sellers {Sellers:N0}: run {Seconds:F2} s = {SellersPerSecond:N0} sellers/s (re-run {RerunSeconds:F2} s; seeding {SeedSeconds:F1} s, not timed)
        load average (1 min) {LoadBefore:F2} before the run, {LoadAfter:F2} after; {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")} GC
        paid {Paid:N0} sellers, {PaidTotal:N0} cents of {SeededTotal:N0} seeded; reconciliation {(Reconciliation is { Clean: true } r ? $"clean ({r.LedgerPayouts:N0} ledger payouts = {r.ProviderTransfers:N0} provider transfers)" : "NOT clean")}; ledger verify {(LedgerVerified ? "passed" : "FAILED")}
        {(Problems.Count == 0 ? "checks passed" : "PROBLEMS: " + string.Join("; ", Problems))}

        """);
}

/// <summary>
/// <c>bench settlement</c>: one royalty settlement run over many sellers on PostgreSQL with the sandbox rails, in
/// scratch schemas that are dropped afterwards. Sellers are seeded through the ledger port (a sale and a release per
/// bundle of sellers, the postings a purchase makes) and the settlement store (a sandbox payout destination per
/// seller), not through HTTP purchases: seeding 100,000 purchases would take far longer than the run. The timed part
/// is <see cref="SettlementRunner.RunAsync"/> alone; afterwards every seller must be paid its seeded share exactly
/// once, the reconciliation must be clean, a re-run must change nothing and <c>ledger verify</c> must pass.
/// </summary>
public static class SettlementBenchmark
{
    public static async Task<SettlementBenchmarkReport> RunOnScratchPostgresAsync(string connectionString, SettlementBenchmarkOptions options, CancellationToken cancellationToken)
    {
        var suffix = Guid.NewGuid().ToString("N")[..12];
        var ledgerSchema = $"ledger_bench_{suffix}";
        var settlementSchema = $"settlement_bench_{suffix}";
        try
        {
            await using var ledger = await LedgerDatabase.OpenPostgresAsync(connectionString, ledgerSchema, cancellationToken: cancellationToken);
            var settlement = new SettlementOptions
            {
                Store = SettlementStoreKind.Postgres,
                ConnectionString = connectionString,
                Schema = settlementSchema,
                Rails = RailsKind.Sandbox,
                MinimumPayout = 1,
                PayoutConcurrency = options.PayoutConcurrency,
            };
            var services = new ServiceCollection()
                .AddLogging()
                .AddSettlementCore(settlement)
                .AddSingleton(new LedgerAccess(_ => Task.FromResult(ledger.Ledger)));
            await using var provider = services.BuildServiceProvider();
            return await RunAsync(ledger, provider, options, ct => VacuumAsync(connectionString, [ledgerSchema, settlementSchema], ct), cancellationToken);
        }
        finally
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync(CancellationToken.None);
            await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {ledgerSchema} CASCADE; DROP SCHEMA IF EXISTS {settlementSchema} CASCADE", connection);
            await drop.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }

    /// <summary>
    /// Vacuums and analyzes every table of the schemas seeded, so the timed run meets tables in the state a month of
    /// autovacuum leaves them, not autovacuum's workers catching up on a bulk load beside it.
    /// </summary>
    private static async Task VacuumAsync(string connectionString, string[] schemas, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        var tables = new List<string>();
        await using (var list = new NpgsqlCommand("SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables WHERE schemaname = ANY(@schemas)", connection))
        {
            list.Parameters.AddWithValue("schemas", schemas);
            await using var reader = await list.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                tables.Add(reader.GetString(0));
            }
        }

        await using var vacuum = new NpgsqlCommand($"VACUUM (ANALYZE) {string.Join(", ", tables)}", connection) { CommandTimeout = 0 };
        await vacuum.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<SettlementBenchmarkReport> RunAsync(LedgerDatabase ledger, IServiceProvider services, SettlementBenchmarkOptions options, Func<CancellationToken, Task> vacuum, CancellationToken cancellationToken)
    {
        if (options.Sellers < 1 || options.SellersPerSale < 1 || options.PayoutConcurrency < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "sellers, sellers per sale and payout concurrency must be at least 1");
        }

        var progress = options.Progress ?? (_ => { });
        var access = services.GetRequiredService<LedgerAccess>();
        var store = services.GetRequiredService<SettlementStore>();
        var rails = services.GetRequiredService<IPaymentRails>();
        var runner = services.GetRequiredService<SettlementRunner>();
        var clock = Stopwatch.StartNew();

        var sellers = Enumerable.Range(0, options.Sellers).Select(i => $"seller-{i:D6}").ToArray();
        var shares = new Dictionary<string, long>(StringComparer.Ordinal);
        long seeded = 0;
        var fee = new FeePolicy(0.1m, 50);
        var sales = sellers.Chunk(options.SellersPerSale).Select((bundle, index) => (bundle, index)).ToList();
        await Parallel.ForEachAsync(sales, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken }, async (sale, ct) =>
        {
            // Varied values so the shares differ from seller to seller (and no share is below a cent).
            var valued = sale.bundle.Select((s, i) => new ValuedSeller(s, 1 + ((i * 7919 + sale.index) % 97))).ToList();
            var gross = checked(valued.Count * 1_000L + 10_000);
            var split = RevenueSplit.Allocate(gross, fee, valued);
            var purchase = PurchasePostings.TransferId(Guid.Empty, $"bench-sale:{sale.index}");
            await access.CommitAsync(PurchasePostings.Sale(purchase, "bench-buyer", "USD", split), "bench", ct);
            await access.CommitAsync(PurchasePostings.Release(purchase, "USD", split), "bench", ct);
            lock (shares)
            {
                foreach (var share in split.Shares)
                {
                    shares[share.SellerId] = share.Amount;
                    seeded = checked(seeded + share.Amount);
                }
            }
        });
        progress($"seeded {sales.Count:N0} sales over {sellers.Length:N0} sellers in the ledger ({clock.Elapsed.TotalSeconds:F1} s)");

        await Parallel.ForEachAsync(sellers, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.PayoutConcurrency), CancellationToken = cancellationToken }, async (seller, ct) =>
        {
            var account = await rails.CreateDestinationAsync(seller, ct);
            if (!await store.TryAppendAsync(MarketService.DestinationStream(seller), "payout-destination", 0, seller, ct,
                    new DestinationRegistered(seller, rails.Name, account.AccountId, DateTimeOffset.UtcNow)))
            {
                throw new InvalidOperationException($"seller {seller} already had a destination in a fresh schema");
            }
        });
        var seedSeconds = clock.Elapsed.TotalSeconds;
        progress($"registered {sellers.Length:N0} sandbox destinations ({seedSeconds:F1} s)");
        await vacuum(cancellationToken);
        seedSeconds = clock.Elapsed.TotalSeconds;
        progress($"vacuumed and analyzed the seeded tables ({seedSeconds:F1} s)");

        var loadBefore = LoadAverage();
        clock.Restart();
        var steps = new SettlementStepTimes();
        var run = await runner.RunAsync(options.Period, "bench", steps, cancellationToken);
        var seconds = clock.Elapsed.TotalSeconds;
        var loadAfter = LoadAverage();
        progress(string.Create(CultureInfo.InvariantCulture, $"settlement run {run.Status} in {seconds:F2} s ({steps})"));

        var problems = new List<string>();
        var balancesBefore = await ledger.Ledger.GetBalancesAsync(cancellationToken: cancellationToken);
        clock.Restart();
        var again = await runner.RunAsync(options.Period, "bench-rerun", cancellationToken);
        var rerunSeconds = clock.Elapsed.TotalSeconds;
        var balancesAfter = await ledger.Ledger.GetBalancesAsync(cancellationToken: cancellationToken);
        if (!balancesBefore.SequenceEqual(balancesAfter))
        {
            problems.Add("the re-run changed ledger balances");
        }

        if (again.Payouts.Count != run.Payouts.Count || again.Status != run.Status)
        {
            problems.Add("the re-run answered a different run");
        }

        if (run.Status != "completed")
        {
            problems.Add($"the run is {run.Status}");
        }

        var paid = run.Payouts.Where(p => p.Status == "paid").ToList();
        if (paid.Count != sellers.Length)
        {
            problems.Add($"{paid.Count:N0} of {sellers.Length:N0} sellers paid");
        }

        foreach (var payout in run.Payouts.Where(p => p.Amount != shares.GetValueOrDefault(p.SellerId)).Take(5))
        {
            problems.Add($"{payout.SellerId} paid {payout.Amount}, seeded {shares.GetValueOrDefault(payout.SellerId)}");
        }

        var leftOver = balancesAfter.Where(b => b.AccountId.StartsWith("seller_payable:", StringComparison.Ordinal) && (b.PostedBalance != 0 || b.AvailableBalance != 0)).ToList();
        if (leftOver.Count > 0)
        {
            problems.Add($"{leftOver.Count:N0} seller payable accounts are not empty (e.g. {leftOver[0].AccountId})");
        }

        if (balancesAfter.FirstOrDefault(b => b.AccountId == AccountRef.PayoutsInTransit("USD").Id) is { } transit && (transit.PostedBalance != 0 || transit.CreditsPending != 0))
        {
            problems.Add($"payouts in transit holds {transit.PostedBalance} posted, {transit.CreditsPending} pending");
        }

        var providerTransfers = await rails.ListTransfersAsync(options.Period, cancellationToken);
        if (providerTransfers.Count != sellers.Length || providerTransfers.Select(t => t.IdempotencyKey).Distinct(StringComparer.Ordinal).Count() != providerTransfers.Count)
        {
            problems.Add($"the sandbox holds {providerTransfers.Count:N0} transfers for {sellers.Length:N0} sellers");
        }

        if (run.Reconciliation is not { Clean: true })
        {
            problems.Add("reconciliation: " + string.Join("; ", run.Reconciliation?.Mismatches.Take(5) ?? ["none written"]));
        }

        var verification = await ledger.VerifyAsync(cancellationToken);
        if (!verification.Passed)
        {
            problems.Add("ledger verify failed");
        }

        return new SettlementBenchmarkReport(sellers.Length, seedSeconds, seconds, rerunSeconds, loadBefore, loadAfter,
            paid.Count, paid.Sum(p => p.Amount), seeded, run.Reconciliation, verification.Passed, problems);
    }

    /// <summary>The one-minute load average (Linux); NaN where /proc is missing.</summary>
    private static double LoadAverage()
    {
        try
        {
            var text = File.ReadAllText("/proc/loadavg");
            return double.Parse(text.Split(' ')[0], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return double.NaN;
        }
        catch (UnauthorizedAccessException)
        {
            return double.NaN;
        }
    }
}
