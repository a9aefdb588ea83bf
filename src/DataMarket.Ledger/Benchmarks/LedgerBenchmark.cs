using System.Diagnostics;
using System.Globalization;
using System.Text;
using DataMarket.Ledger.Events;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Projections;

namespace DataMarket.Ledger.Benchmarks;

public sealed record LedgerBenchmarkOptions
{
    /// <summary>How long each scenario runs after its warm-up.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Each scenario runs at least this long before it is measured, and then until the JIT has settled (see
    /// <see cref="MaxWarmUp"/>): on 2 cores, tiered compilation of Marten's and Npgsql's hot paths takes a good part
    /// of the CPU for several seconds, and a scenario measured during it reports the compiler, not the ledger.
    /// </summary>
    public TimeSpan WarmUp { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// The longest a scenario waits for the JIT to settle: fewer than a handful of methods compiled in each quarter
    /// second of a whole second. One quiet quarter is not enough: 16 writers started in a fresh process compiled
    /// 400-1,600 methods a second for about ten seconds, with a lull under a quarter second near the start, and a
    /// scenario measured from that lull read 2,111-2,256 transfers/s against 3,283-3,640 after ten seconds of warm-up.
    /// </summary>
    public TimeSpan MaxWarmUp { get; init; } = TimeSpan.FromSeconds(10);

    public IReadOnlyList<int> AppendWriters { get; init; } = [1, 16];

    public IReadOnlyList<int> TransferWriters { get; init; } = [1, 4, 16];

    /// <summary>
    /// Extra scenario: writers that each keep this many transfers in flight (a service handling several
    /// requests at once). 0 or 1 skips it. Every transfer is still acknowledged only once durable.
    /// </summary>
    public int PipelinedInFlightPerWriter { get; init; } = 8;

    /// <summary>
    /// Burst scenarios in the shape of a settlement run's batch: this many independent commands queued at once
    /// (each caller awaits its own answer), all writing one shared account: pending payouts, each from its own
    /// seller's payable account into payouts in transit, then the posts of all of them through
    /// <see cref="ILedger.ResolvePendingAsync"/>. Repeated (a fresh batch each round) until
    /// <see cref="Duration"/> has been measured, after unmeasured rounds until the JIT has settled. 0 skips them.
    /// </summary>
    public int Burst { get; init; } = 1_000;

    /// <summary>Transfers pick a random buyer and seller from this many of each, so writers rarely queue on one row.</summary>
    public int Accounts { get; init; } = 1_000;

    /// <summary>Called as each scenario finishes (the whole run takes a while).</summary>
    public Action<LedgerBenchmarkResult>? Progress { get; init; }
}

/// <summary>Where a scenario's group commits spent their time: per group, transfers, database calls and milliseconds reading, deciding and saving.</summary>
public sealed record LedgerCommitProfile(double TransfersPerGroup, double DatabaseCallsPerGroup, double LoadMilliseconds, double DecideMilliseconds, double SaveMilliseconds, long Retries)
{
    /// <summary>The per-group averages of what a scenario's group commits spent, and of its database calls.</summary>
    internal static LedgerCommitProfile Of(CommitTotals spent, long calls)
    {
        var groups = Math.Max(1, spent.Groups);
        return new LedgerCommitProfile(
            (double)spent.Commands / groups,
            (double)calls / groups,
            CommitTotals.Milliseconds(spent.LoadTicks) / groups,
            CommitTotals.Milliseconds(spent.DecideTicks) / groups,
            CommitTotals.Milliseconds(spent.SaveTicks) / groups,
            spent.Retries);
    }

    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"per group: {TransfersPerGroup:F1} transfers, {DatabaseCallsPerGroup:F1} database calls, read {LoadMilliseconds:F1} ms, decide {DecideMilliseconds:F1} ms, save+commit {SaveMilliseconds:F1} ms; {Retries} retries");
}

public sealed record LedgerBenchmarkResult(string Scenario, int Writers, long Operations, long Events, TimeSpan Elapsed, LedgerCommitProfile? Profile = null)
{
    /// <summary>How long the scenario ran before it was measured (until the JIT settled).</summary>
    public TimeSpan WarmedUp { get; init; }

    public double OperationsPerSecond => Operations / Elapsed.TotalSeconds;
    public double EventsPerSecond => Events / Elapsed.TotalSeconds;
}

public sealed record LedgerBenchmarkReport(string Provider, IReadOnlyList<LedgerBenchmarkResult> Results)
{
    internal const string TransfersScenario = "transfers";
    internal const string PipelinedScenario = "transfers, 8 in flight/writer";
    internal const string BurstReserveScenario = "burst: payouts into 1 shared account";
    internal const string BurstPostScenario = "burst: posts (ResolvePendingAsync)";
    private const int TargetWriters = 16;

    /// <summary>Issue 11's targets on the 2-core development machine: 16 writers with one transfer in flight each, and with 8 (a settlement run's shape).</summary>
    private const double TargetOneInFlight = 2_500;
    private const double TargetEightInFlight = 5_000;

    public string ToText()
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"ledger benchmark on {Provider}");
        foreach (var r in Results)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  {r.Scenario,-36} writers {r.Writers,3}: {r.OperationsPerSecond,10:F0} ops/s  {r.EventsPerSecond,10:F0} events/s  ({r.Operations} in {r.Elapsed.TotalSeconds:F1} s after {r.WarmedUp.TotalSeconds:F1} s warm-up)");
            if (r.Profile is { } profile)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"  {"",36}   {profile}");
            }
        }

        var single = Results.FirstOrDefault(r => r.Scenario == TransfersScenario && r.Writers == 1);
        var most = Results.Where(r => r.Scenario == TransfersScenario).MaxBy(r => r.Writers);
        if (single is not null && most is not null && most.Writers > 1 && single.OperationsPerSecond > 0)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  group commit: {most.Writers} writers reach {most.OperationsPerSecond / single.OperationsPerSecond:F1}x the transfers/s of 1 writer in this run");
        }

        if (most is { Writers: TargetWriters })
        {
            AppendTarget(text, "16 writers x 1 in flight", TargetOneInFlight, most.OperationsPerSecond);
        }

        if (Results.FirstOrDefault(r => r.Scenario == PipelinedScenario && r.Writers == TargetWriters) is { } pipelined)
        {
            AppendTarget(text, "16 writers x 8 in flight", TargetEightInFlight, pipelined.OperationsPerSecond);
        }

        return text.ToString();
    }

    private static void AppendTarget(StringBuilder text, string shape, double target, double measured) =>
        text.AppendLine(CultureInfo.InvariantCulture, $"  target: at least {target:N0} transfers/s with {shape}: {(measured >= target ? "met" : "NOT met")} ({measured:N0}/s)");
}

/// <summary>
/// Sustained throughput of the store and the ledger: appends (1- and 10-event transactions) and
/// transfers (each its own durable transaction) with several concurrent writers. Run it on a
/// database of its own: it writes real events and accounts.
/// </summary>
public static class LedgerBenchmark
{
    /// <summary>
    /// Runs the benchmark in a scratch schema on PostgreSQL, verifies the ledger it produced, and drops
    /// the schema afterwards. What <c>datamarket bench ledger</c> calls.
    /// </summary>
    public static async Task<(LedgerBenchmarkReport Benchmark, Verification.LedgerVerificationReport Verification)> RunOnScratchPostgresAsync(
        string connectionString,
        LedgerBenchmarkOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var schema = "ledger_bench_" + Guid.NewGuid().ToString("N")[..12];
        try
        {
            await using var database = await LedgerDatabase.OpenPostgresAsync(connectionString, schema, cancellationToken: cancellationToken).ConfigureAwait(false);
            var benchmark = await RunAsync(database, options, cancellationToken).ConfigureAwait(false);
            var verification = await database.VerifyAsync(cancellationToken).ConfigureAwait(false);
            return (benchmark, verification);
        }
        finally
        {
            await using var backend = new Events.Postgres.PostgresBackend(connectionString, schema);
            await backend.DropSchemaAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Runs the benchmark against a run on an already open ledger (it adds real events and accounts to it).</summary>
    public static async Task<LedgerBenchmarkReport> RunAsync(LedgerDatabase database, LedgerBenchmarkOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(database);
        options ??= new LedgerBenchmarkOptions();
        var results = new List<LedgerBenchmarkResult>();
        var run = Guid.NewGuid().ToString("N")[..8];

        foreach (var eventsPerAppend in new[] { 1, 10 })
        {
            foreach (var writers in options.AppendWriters)
            {
                var events = Enumerable.Range(0, eventsPerAppend)
                    .Select(i => new NewEvent(Guid.Empty, "bench.tick", """{"value":1}""", new EventMetadata { Timestamp = DateTimeOffset.UtcNow }))
                    .ToArray();
                var result = await MeasureAsync($"append {eventsPerAppend}-event transactions", writers, options, async ct =>
                {
                    var batch = events.Select(e => e with { EventId = Guid.NewGuid() }).ToArray();
                    await database.Events.AppendAsync($"bench-{Guid.NewGuid():N}", "bench", ExpectedVersion.NoStream, batch, ct).ConfigureAwait(false);
                    return eventsPerAppend;
                }, cancellationToken).ConfigureAwait(false);
                results.Add(result);
                options.Progress?.Invoke(result);
            }
        }

        var currency = Currencies.TestCurrency;
        var buyers = Enumerable.Range(0, options.Accounts).Select(i => AccountRef.Buyer($"bench-{run}-{i}", currency)).ToArray();
        var sellers = Enumerable.Range(0, options.Accounts).Select(i => AccountRef.SellerHeld($"bench-{run}-{i}", currency)).ToArray();
        await FundAsync(database, buyers, TransferCode.Charge, cancellationToken).ConfigureAwait(false);

        var scenarios = options.TransferWriters.Select(w => (LedgerBenchmarkReport.TransfersScenario, w, 1)).ToList();
        if (options.PipelinedInFlightPerWriter > 1 && options.TransferWriters.Count > 0)
        {
            var most = options.TransferWriters.Max();
            var name = options.PipelinedInFlightPerWriter == 8 ? LedgerBenchmarkReport.PipelinedScenario : $"transfers, {options.PipelinedInFlightPerWriter} in flight/writer";
            scenarios.Add((name, most, options.PipelinedInFlightPerWriter));
        }

        foreach (var (scenario, writers, inFlight) in scenarios)
        {
            var before = database.CommitStatistics.Read();
            var calls = 0L;
            using var listener = CountDatabaseCalls(() => Interlocked.Increment(ref calls));
            var result = await MeasureAsync(scenario, writers * inFlight, options, async ct =>
            {
                var transfer = new TransferRequest
                {
                    Id = Guid.NewGuid(),
                    Debit = buyers[Random.Shared.Next(buyers.Length)],
                    Credit = sellers[Random.Shared.Next(sellers.Length)],
                    Amount = 1,
                    Code = TransferCode.Allocation,
                };
                var outcome = await database.Ledger.CommitAsync(transfer, cancellationToken: ct).ConfigureAwait(false);
                if (outcome.Status != LedgerStatus.Committed)
                {
                    throw new InvalidOperationException($"Benchmark transfer failed: {outcome}");
                }

                return 1;
            }, cancellationToken).ConfigureAwait(false);
            var profile = LedgerCommitProfile.Of(database.CommitStatistics.Read() - before, Interlocked.Read(ref calls));
            var measured = result with { Writers = writers, Profile = profile };
            results.Add(measured);
            options.Progress?.Invoke(measured);
        }

        if (options.Burst > 0)
        {
            foreach (var measured in await MeasureBurstAsync(database, options, run, cancellationToken).ConfigureAwait(false))
            {
                results.Add(measured);
                options.Progress?.Invoke(measured);
            }
        }

        return new LedgerBenchmarkReport(database.Provider, results);
    }

    /// <summary>
    /// A settlement run's batch: <see cref="LedgerBenchmarkOptions.Burst"/> pending payouts queued at once, each
    /// debiting its own seller and crediting the one payouts-in-transit account, then all their posts in one
    /// <see cref="ILedger.ResolvePendingAsync"/>. Every command must commit; the figures are commands per second
    /// of the burst's wall time (from queuing the first to the last answer).
    /// </summary>
    private static async Task<LedgerBenchmarkResult[]> MeasureBurstAsync(LedgerDatabase database, LedgerBenchmarkOptions options, string run, CancellationToken cancellationToken)
    {
        var currency = Currencies.TestCurrency;
        var sellers = Enumerable.Range(0, options.Burst).Select(i => AccountRef.SellerPayable($"burst-{run}-{i}", currency)).ToArray();
        await FundAsync(database, sellers, TransferCode.Allocation, cancellationToken).ConfigureAwait(false);

        var reserve = new BurstTotals();
        var post = new BurstTotals();
        var calls = 0L;
        using var listener = CountDatabaseCalls(() => Interlocked.Increment(ref calls));
        // Unmeasured rounds first, until one compiles fewer than a handful of methods (or the warm-up cap passes).
        var warming = Stopwatch.StartNew();
        var warmedUp = TimeSpan.Zero;
        var compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        for (var measure = false; !measure || reserve.Elapsed + post.Elapsed < options.Duration;)
        {
            if (!measure && warming.Elapsed >= options.WarmUp)
            {
                measure = JitSettled(ref compiled) || warming.Elapsed >= options.MaxWarmUp;
                warmedUp = warming.Elapsed;
            }

            var payouts = sellers.Select(seller => new TransferRequest
            {
                Id = Guid.NewGuid(),
                Debit = seller,
                Credit = AccountRef.PayoutsInTransit(currency),
                Amount = 1,
                Code = TransferCode.Payout,
                Pending = true,
                Reference = "bench-payout",
            }).ToArray();
            await reserve.MeasureAsync(database, payouts.Length, measure, () => calls, async () =>
            {
                var answers = await Task.WhenAll(payouts.Select(p => database.Ledger.CommitAsync(p, cancellationToken: cancellationToken))).ConfigureAwait(false);
                return answers.Count(a => a.Status == LedgerStatus.Committed);
            }).ConfigureAwait(false);
            await post.MeasureAsync(database, payouts.Length, measure, () => calls, async () =>
            {
                var answers = await database.Ledger.ResolvePendingAsync(payouts.Select(p => PendingTransferAction.PostOf(p.Id)).ToArray(), cancellationToken: cancellationToken).ConfigureAwait(false);
                return answers.Count(a => a.Status == LedgerStatus.Committed);
            }).ConfigureAwait(false);
        }

        return [reserve.Result(LedgerBenchmarkReport.BurstReserveScenario, options.Burst, warmedUp), post.Result(LedgerBenchmarkReport.BurstPostScenario, options.Burst, warmedUp)];
    }

    /// <summary>Credits each account a billion from payment clearing, a hundred accounts per linked batch.</summary>
    private static async Task FundAsync(LedgerDatabase database, IReadOnlyList<AccountRef> accounts, TransferCode code, CancellationToken cancellationToken)
    {
        foreach (var chunk in accounts.Chunk(100))
        {
            var funding = chunk.Select(account => new TransferRequest
            {
                Id = Guid.NewGuid(),
                Debit = AccountRef.PaymentClearing(account.Currency),
                Credit = account,
                Amount = 1_000_000_000,
                Code = code,
            }).ToArray();
            var funded = await database.Ledger.CommitAsync(funding, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (funded.Status != LedgerStatus.Committed)
            {
                throw new InvalidOperationException($"Benchmark funding failed: {funded}");
            }
        }
    }

    private sealed class BurstTotals
    {
        private long _commands;
        private long _calls;
        private CommitTotals _spent;

        public TimeSpan Elapsed { get; private set; }

        public async Task MeasureAsync(LedgerDatabase database, int expected, bool measure, Func<long> calls, Func<Task<int>> burst)
        {
            var before = database.CommitStatistics.Read();
            var callsBefore = calls();
            var stopwatch = Stopwatch.StartNew();
            var committed = await burst().ConfigureAwait(false);
            stopwatch.Stop();
            if (committed != expected)
            {
                throw new InvalidOperationException($"Benchmark burst: {expected - committed} of {expected} commands did not commit.");
            }

            if (!measure)
            {
                return;
            }

            Elapsed += stopwatch.Elapsed;
            _commands += committed;
            _calls += calls() - callsBefore;
            _spent += database.CommitStatistics.Read() - before;
        }

        public LedgerBenchmarkResult Result(string scenario, int callers, TimeSpan warmedUp) =>
            new(scenario, callers, _commands, _commands, Elapsed, LedgerCommitProfile.Of(_spent, _calls)) { WarmedUp = warmedUp };
    }

    /// <summary>Counts the commands and batches Npgsql sends (its activity source reports each one), warm-up included, like the group counts.</summary>
    private static ActivityListener CountDatabaseCalls(Action counted)
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Npgsql",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.PropagationData,
            ActivityStopped = _ => counted(),
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }

    private static async Task<LedgerBenchmarkResult> MeasureAsync(
        string scenario,
        int writers,
        LedgerBenchmarkOptions options,
        Func<CancellationToken, Task<int>> operation,
        CancellationToken cancellationToken)
    {
        long operations = 0;
        long events = 0;
        var measuring = false;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var tasks = Enumerable.Range(0, writers).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var produced = await operation(cancellationToken).ConfigureAwait(false);
                if (Volatile.Read(ref measuring))
                {
                    Interlocked.Increment(ref operations);
                    Interlocked.Add(ref events, produced);
                }
            }
        }, cancellationToken)).ToArray();

        var warmedUp = await WarmUpAsync(options, cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref measuring, true);
        var stopwatch = Stopwatch.StartNew();
        await Task.Delay(options.Duration, cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref measuring, false);
        var elapsed = stopwatch.Elapsed;
        var counted = Interlocked.Read(ref operations);
        var countedEvents = Interlocked.Read(ref events);
        await stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(tasks).ConfigureAwait(false);
        return new LedgerBenchmarkResult(scenario, writers, counted, countedEvents, elapsed) { WarmedUp = warmedUp };
    }

    /// <summary>
    /// Waits <see cref="LedgerBenchmarkOptions.WarmUp"/>, then until four quarter seconds in a row each pass with
    /// fewer than four methods compiled (or <see cref="LedgerBenchmarkOptions.MaxWarmUp"/> has passed); returns how
    /// long it waited.
    /// </summary>
    private static async Task<TimeSpan> WarmUpAsync(LedgerBenchmarkOptions options, CancellationToken cancellationToken)
    {
        var started = Stopwatch.StartNew();
        await Task.Delay(options.WarmUp, cancellationToken).ConfigureAwait(false);
        var compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        var quietQuarters = 0;
        while (started.Elapsed < options.MaxWarmUp && quietQuarters < 4)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken).ConfigureAwait(false);
            quietQuarters = JitSettled(ref compiled) ? quietQuarters + 1 : 0;
        }

        return started.Elapsed;
    }

    /// <summary>Whether fewer than four methods were compiled since <paramref name="compiled"/> was counted (which it counts again).</summary>
    private static bool JitSettled(ref long compiled)
    {
        var now = System.Runtime.JitInfo.GetCompiledMethodCount();
        var settled = now - compiled < 4;
        compiled = now;
        return settled;
    }
}
