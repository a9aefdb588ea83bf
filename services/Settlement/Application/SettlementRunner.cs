using System.Diagnostics;
using System.Globalization;
using DataMarket.Ledger.Model;
using DataMarket.Settlement.Postings;
using DataMarket.SettlementService.Infrastructure;
using Microsoft.Extensions.Logging;

namespace DataMarket.SettlementService.Application;

/// <summary>
/// A royalty settlement run, keyed by its period (a UTC month, "2026-11"). It releases holds whose refund window has
/// ended, fixes a plan once (every seller whose released balance is at least the minimum payout and who has a
/// destination), and pays each planned seller exactly once: a pending ledger payout, a provider transfer under the
/// key <c>payout:{period}:{seller}:{currency}</c>, then the ledger payout posted (or voided when the provider fails
/// for good), and a statement line. It ends with a reconciliation of the ledger's payouts against the provider's
/// transfers. Every step derives its ids from the period and the seller, so two nodes running the same period, a
/// crash and a restart, or a re-run pay nobody twice.
/// <para>
/// The run's stream is read once per run, not once per seller: the plan is a few events however many sellers it
/// holds, payouts are paid in batches (<see cref="SettlementOptions.PayoutBatchSize"/>), each step for the whole batch
/// at once (the ledger's group commit carries a step's reserves, posts or settlements hundreds per transaction; provider
/// calls go <see cref="SettlementOptions.PayoutConcurrency"/> at a time), and each batch's statements are appended as one event at the version this run knows. When another
/// node appended first, the run re-reads the stream and appends only the statements nobody has recorded.
/// </para>
/// </summary>
public sealed class SettlementRunner(
    SettlementStore store, LedgerAccess ledger, IPaymentRails rails, DisputeBook disputes, SettlementOptions options, TimeProvider time, ILogger<SettlementRunner> logger)
{
    private const string StreamType = "settlement-run";

    public async Task<SettlementRunView> RunAsync(string period, string node, CancellationToken cancellationToken) =>
        await RunAsync(period, node, new SettlementStepTimes(), cancellationToken);

    /// <param name="steps">Where this run's time goes, step by step (for <c>bench settlement</c>).</param>
    public async Task<SettlementRunView> RunAsync(string period, string node, SettlementStepTimes steps, CancellationToken cancellationToken)
    {
        ValidatePeriod(period);
        var planning = Stopwatch.GetTimestamp();
        var stream = RunStream(period);
        await AppendOnceAsync(stream, e => e.OfType<RunStarted>().Any(), () => Task.FromResult<object[]>([new RunStarted(period, time.GetUtcNow(), node)]), node, cancellationToken);
        var run = await ReadRunAsync(period, cancellationToken);
        if (run.Completed is not null)
        {
            return run.View();
        }

        if (run.Plan.Count == 0 && run.PlanEvents == 0)
        {
            await AppendOnceAsync(stream, e => e.OfType<PayoutsPlanned>().Any(), async () => [.. await PlanAsync(period, cancellationToken)], node, cancellationToken);
            run = await ReadRunAsync(period, cancellationToken);
        }

        steps.Add(SettlementStep.Plan, planning);
        // What sellers owe from disputes leaves their payable balance before the rest is paid out.
        foreach (var recovery in run.Recoveries)
        {
            await disputes.RecoverAsync(recovery, period, $"settlement:{node}", cancellationToken);
        }

        // What they owe beyond it comes back from their earlier transfers (once per key; a re-run resends only the unresolved).
        run = await ReverseAsync(run, node, cancellationToken);

        var book = await ledger.GetAsync(cancellationToken);
        var actor = new LedgerCommandOptions { Actor = $"settlement:{node}" };
        foreach (var batch in run.Plan.Where(p => run.Resolution(p) is null).Chunk(Math.Max(1, options.PayoutBatchSize)))
        {
            var statements = await PayBatchAsync(book, actor, period, batch, steps, cancellationToken);
            var recording = Stopwatch.GetTimestamp();
            run = await RecordAsync(run, statements, node, cancellationToken);
            steps.Add(SettlementStep.Record, recording);
        }

        if (run.Plan.All(p => run.Resolution(p) is not null) && run.ReversalPlan.All(r => run.Reversal(r) is not null))
        {
            var reconciling = Stopwatch.GetTimestamp();
            var reconciliation = await ReconcileAsync(book, period, run, cancellationToken);
            steps.Add(SettlementStep.Reconcile, reconciling);
            await AppendOnceAsync(stream, e => e.OfType<RunCompleted>().Any(), () => Task.FromResult<object[]>([new RunCompleted(period, reconciliation, time.GetUtcNow())]), node, cancellationToken);
            if (!reconciliation.Clean)
            {
                logger.LogError("Settlement {Period} reconciliation found mismatches: {Mismatches}", period, string.Join("; ", reconciliation.Mismatches.Take(20)));
            }

            run = await ReadRunAsync(period, cancellationToken);
        }
        else
        {
            logger.LogWarning("Settlement {Period} left payouts unresolved (provider unavailable); the next run resumes them", period);
        }

        return run.View();
    }

    public async Task<SettlementRunView?> GetAsync(string period, CancellationToken cancellationToken)
    {
        ValidatePeriod(period);
        var run = await ReadRunAsync(period, cancellationToken);
        return run.Started is null ? null : run.View();
    }

    public async Task<IReadOnlyList<SettlementRunView>> ListAsync(CancellationToken cancellationToken)
    {
        var periods = new SortedSet<string>(StringComparer.Ordinal);
        await foreach (var started in store.ScanAsync(new HashSet<string> { nameof(RunStarted) }, cancellationToken))
        {
            periods.Add(((RunStarted)started).Period);
        }

        var runs = new List<SettlementRunView>();
        foreach (var period in periods.Reverse())
        {
            runs.Add((await GetAsync(period, cancellationToken))!);
        }

        return runs;
    }

    public async Task<SellerStatementView> StatementAsync(string sellerId, string period, CancellationToken cancellationToken)
    {
        ValidatePeriod(period);
        var statement = await (await ledger.GetAsync(cancellationToken)).GetSellerStatementAsync(sellerId, period, cancellationToken);
        var run = await ReadRunAsync(period, cancellationToken);
        return new SellerStatementView(sellerId, period,
            statement.Lines.Select(l => new LedgerStatementLineView(l.Currency, l.Earned, l.Held, l.Paid)).ToList(),
            run.Statements.Where(s => s.SellerId == sellerId).ToList(),
            run.ReversalViews().Where(r => r.SellerId == sellerId).ToList());
    }

    /// <summary>The month before <paramref name="at"/>: what a run fired on the first of a month settles.</summary>
    public static string PreviousPeriod(DateTimeOffset at)
    {
        var utc = at.UtcDateTime;
        return new DateTime(utc.Year, utc.Month, 1, 0, 0, 0, DateTimeKind.Utc).AddMonths(-1).ToString("yyyy-MM", CultureInfo.InvariantCulture);
    }

    public static void ValidatePeriod(string? period)
    {
        if (period is null || period.Length != 7 || !DateTime.TryParseExact(period, "yyyy-MM", CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
        {
            throw new SettlementException(SettlementErrorKind.Invalid, "period", $"'{period}' is not a month written yyyy-MM (e.g. 2026-11)");
        }
    }

    public static Guid PayoutTransferId(string period, string sellerId, string currency) =>
        PurchasePostings.TransferId(PeriodId(period), $"payout:{sellerId}:{currency}");

    private static Guid PayoutSettlementTransferId(string period, string sellerId, string currency) =>
        PurchasePostings.TransferId(PeriodId(period), $"payout-settlement:{sellerId}:{currency}");

    private static Guid PeriodId(string period) => PurchasePostings.TransferId(Guid.Empty, $"settlement-period:{period}");

    private static string RunStream(string period) => $"settlement-run:{period}";

    /// <summary>
    /// The store's events a plan needs, folded in one pass: purchases whose holds are due (their refund window has
    /// ended and they were not refunded, released or wholly disputed), what sellers owe from disputes, and each
    /// seller's destination events. One scan instead of three: each scan reads every event of the store.
    /// </summary>
    private sealed class PlanFold(DateTimeOffset now)
    {
        private static readonly IReadOnlySet<string> HoldTypes = new HashSet<string>(StringComparer.Ordinal)
            { nameof(PurchaseCompleted), nameof(PurchaseRefunded), nameof(HoldsReleased), nameof(PurchaseDisputed) };

        public static readonly IReadOnlySet<string> Types = new HashSet<string>(
            [.. HoldTypes, .. DisputeBook.OwedTally.Types, nameof(DestinationRegistered), nameof(DestinationReady)], StringComparer.Ordinal);

        public Dictionary<Guid, PurchaseCompleted> Due { get; } = [];

        public DisputeBook.OwedTally Owed { get; } = new();

        public Dictionary<string, List<object>> Destinations { get; } = new(StringComparer.Ordinal);

        public void Apply(object recorded)
        {
            Owed.Apply(recorded);
            switch (recorded)
            {
                case PurchaseCompleted c when !c.Released && c.RefundableUntil <= now:
                    Due[c.PurchaseId] = c;
                    break;
                case PurchaseRefunded r:
                    Due.Remove(r.PurchaseId);
                    break;
                case HoldsReleased h:
                    Due.Remove(h.PurchaseId);
                    break;
                case PurchaseDisputed { HeldLeft: { } left } d when Due.TryGetValue(d.PurchaseId, out var held):
                    // A dispute of part of the sale while held: only what it left is released.
                    Due[d.PurchaseId] = held with { Shares = left };
                    break;
                case PurchaseDisputed d:
                    Due.Remove(d.PurchaseId);
                    break;
                case DestinationRegistered r:
                    AddDestination(r.SellerId, r);
                    break;
                case DestinationReady r:
                    AddDestination(r.SellerId, r);
                    break;
            }
        }

        private void AddDestination(string seller, object recorded) =>
            (Destinations.TryGetValue(seller, out var list) ? list : Destinations[seller] = []).Add(recorded);
    }

    /// <summary>Releases the holds <see cref="PlanFold"/> found due: they become payable.</summary>
    private async Task ReleaseHoldsAsync(IEnumerable<PurchaseCompleted> due, DateTimeOffset now, CancellationToken cancellationToken)
    {
        foreach (var purchase in due)
        {
            await ledger.CommitAsync(PurchasePostings.Release(purchase.PurchaseId, purchase.Currency, MarketService.SplitOf(purchase)), "settlement", cancellationToken);
            var stream = MarketService.PurchaseStream(purchase.PurchaseId);
            var (events, version) = await store.ReadAsync(stream, cancellationToken);
            if (!events.OfType<HoldsReleased>().Any())
            {
                await store.TryAppendAsync(stream, "purchase", version, "settlement", cancellationToken, new HoldsReleased(purchase.PurchaseId, now));
            }
        }
    }

    /// <summary>Payouts per plan event: a plan of 100,000 sellers is 50 events of a few hundred kilobytes, not one of tens of megabytes.</summary>
    private const int PayoutsPerPlanEvent = 2_000;

    private async Task<IReadOnlyList<PayoutsPlanned>> PlanAsync(string period, CancellationToken cancellationToken)
    {
        async Task<IReadOnlyList<AccountBalance>> ReadBalancesAsync() =>
            await (await ledger.GetAsync(cancellationToken)).GetBalancesAsync("seller_payable:", cancellationToken);

        async Task<PlanFold> ScanAsync(DateTimeOffset now)
        {
            var fold = new PlanFold(now);
            await foreach (var recorded in store.ScanAsync(PlanFold.Types, cancellationToken))
            {
                fold.Apply(recorded);
            }

            return fold;
        }

        // The ledger's balances and one scan of the settlement store, at once. Releasing due holds changes balances,
        // so when the scan finds any, they are released and the balances read again.
        var now = time.GetUtcNow();
        var balancesRead = ReadBalancesAsync();
        var scan = ScanAsync(now);
        await Task.WhenAll(balancesRead, scan);
        var (balances, fold) = (await balancesRead, await scan);
        if (fold.Due.Count > 0)
        {
            await ReleaseHoldsAsync(fold.Due.Values, now, cancellationToken);
            balances = await ReadBalancesAsync();
        }

        var (owed, destinations) = (fold.Owed.Owed(), fold.Destinations);
        var payouts = new List<PlannedPayout>();
        var recoveries = new List<PlannedRecovery>();
        var waiting = new List<string>();
        foreach (var balance in balances.Where(b => b.AvailableBalance > 0).OrderBy(b => b.Owner, StringComparer.Ordinal).ThenBy(b => b.Currency, StringComparer.Ordinal))
        {
            var recover = Math.Min(owed.GetValueOrDefault((balance.Owner, balance.Currency)), balance.AvailableBalance);
            if (recover > 0)
            {
                recoveries.Add(new PlannedRecovery(balance.Owner, balance.Currency, recover,
                    PurchasePostings.TransferId(PeriodId(period), $"dispute-recovery:{balance.Owner}:{balance.Currency}")));
            }

            var payable = balance.AvailableBalance - recover;
            if (payable < options.MinimumPayout || payable <= 0)
            {
                continue;
            }

            if (destinations.GetValueOrDefault(balance.Owner) is not { } events || MarketService.Usable(events) is not { } destination)
            {
                waiting.Add(balance.Owner);
                continue;
            }

            payouts.Add(new PlannedPayout(
                balance.Owner, balance.Currency, payable, PayoutTransferId(period, balance.Owner, balance.Currency),
                $"payout:{period}:{balance.Owner}:{balance.Currency}", destination.AccountId));
        }

        // Debts the payable balance does not cover (sellers with no balance at all included) come back by reversal.
        var available = balances.Where(b => b.AvailableBalance > 0).ToDictionary(b => (b.Owner, b.Currency), b => b.AvailableBalance);
        var shortfalls = owed.Select(o => (Debtor: o.Key, Shortfall: o.Value - Math.Min(o.Value, available.GetValueOrDefault(o.Key)))).Where(o => o.Shortfall > 0).ToList();
        IReadOnlyList<PlannedReversal> reversals = shortfalls.Count == 0 ? [] : await disputes.PlanReversalsAsync(period, shortfalls, cancellationToken);
        var parts = payouts.Chunk(PayoutsPerPlanEvent).ToList();
        return parts.Count == 0
            ? [new PayoutsPlanned(period, [], waiting, recoveries, reversals)]
            : parts.Select((part, i) => i == 0 ? new PayoutsPlanned(period, part, waiting, recoveries, reversals) : new PayoutsPlanned(period, part, [])).ToList();
    }

    /// <summary>
    /// Pays a batch of planned sellers, each step for the whole batch at once: every pending ledger payout, then the
    /// provider transfers (<see cref="SettlementOptions.PayoutConcurrency"/> at a time), then every post (or void), then
    /// every settlement transfer. Each seller's steps keep their order (reserved before sent, sent before posted), so a
    /// crash anywhere leaves what one seller's steps would; the ledger commands of a step are all in flight together,
    /// so its group commit carries hundreds of them per transaction (all of them write the one payouts_in_transit
    /// account, which allows one transaction at a time). Returns the statement lines of the sellers resolved now
    /// (none for a payout whose provider answer is still unknown: the next run sends it again under the same key).
    /// </summary>
    private async Task<IReadOnlyList<StatementWritten>> PayBatchAsync(ILedger book, LedgerCommandOptions actor, string period, IReadOnlyList<PlannedPayout> batch, SettlementStepTimes steps, CancellationToken cancellationToken)
    {
        var statements = new List<StatementWritten>();
        var started = Stopwatch.GetTimestamp();
        var reserved = await Task.WhenAll(batch.Select(payout => book.CommitAsync(new TransferRequest
        {
            Id = payout.LedgerTransferId,
            Debit = AccountRef.SellerPayable(payout.SellerId, payout.Currency),
            Credit = AccountRef.PayoutsInTransit(payout.Currency),
            Amount = payout.Amount,
            Code = TransferCode.Payout,
            Pending = true,
            Reference = payout.IdempotencyKey,
        }, actor, cancellationToken)));
        var unsure = Enumerable.Range(0, batch.Count).Where(i => reserved[i].Status != LedgerStatus.Committed).ToArray();
        var earlierAttempts = await book.GetTransfersAsync(unsure.Select(i => batch[i].LedgerTransferId).ToArray(), cancellationToken);
        var existing = batch.Select(p => earlierAttempts.GetValueOrDefault(p.LedgerTransferId)).ToArray();
        var toSend = new List<PlannedPayout>(batch.Count);
        for (var i = 0; i < batch.Count; i++)
        {
            var payout = batch[i];
            if (reserved[i].Status != LedgerStatus.Committed)
            {
                // Reserved by an earlier attempt (a restart, another node), or refused: what the ledger holds decides.
                if (existing[i] is not { } earlier)
                {
                    // Nothing was reserved (the balance moved since the plan, e.g. a dispute): nothing is sent either.
                    statements.Add(Failed(period, payout, $"the ledger refused the payout: {reserved[i].Rejection} {reserved[i].Detail}"));
                    continue;
                }

                if (earlier.State == TransferState.PendingVoided)
                {
                    statements.Add(Failed(period, payout, "the payout was voided earlier"));
                    continue;
                }
            }

            toSend.Add(payout);
        }

        started = steps.Add(SettlementStep.Reserve, started);
        var sent = await rails.TransferManyAsync(
            toSend.Select(p => new RailsTransfer(p.IdempotencyKey, p.Destination, p.Amount, p.Currency, period)).ToList(), Math.Max(1, options.PayoutConcurrency), cancellationToken);

        var outcomes = toSend.Zip(sent, (payout, answer) => (Payout: payout, Sent: answer)).ToList();
        var succeeded = outcomes.Where(x => x.Sent.Outcome == RailsOutcome.Succeeded).ToList();
        var declined = outcomes.Where(x => x.Sent.Outcome == RailsOutcome.Declined).ToList();
        foreach (var (payout, unknown) in outcomes.Where(x => x.Sent.Outcome is not (RailsOutcome.Succeeded or RailsOutcome.Declined)))
        {
            // Transient: the pending payout stays reserved and the next run sends it again under the same key.
            logger.LogWarning("Payout {Key} not confirmed: {Reason}", payout.IdempotencyKey, unknown.Reason);
        }

        started = steps.Add(SettlementStep.Provider, started);
        // Posts of the paid and voids of the refused, in one call: each is its own command with its own answer.
        var posted = await book.ResolvePendingAsync(
            [.. succeeded.Select(x => PendingTransferAction.PostOf(x.Payout.LedgerTransferId)), .. declined.Select(x => PendingTransferAction.VoidOf(x.Payout.LedgerTransferId))],
            actor, cancellationToken);
        for (var i = 0; i < succeeded.Count; i++)
        {
            if (!posted[i].Succeeded)
            {
                logger.LogError("Payout {Key} was sent ({Provider}) but the ledger refused to post it: {Rejection} {Detail}", succeeded[i].Payout.IdempotencyKey, succeeded[i].Sent.ProviderId, posted[i].Rejection, posted[i].Detail);
            }
        }

        started = steps.Add(SettlementStep.Post, started);
        await Task.WhenAll(succeeded.Select(x => book.CommitAsync(new TransferRequest
        {
            Id = PayoutSettlementTransferId(period, x.Payout.SellerId, x.Payout.Currency),
            Debit = AccountRef.PayoutsInTransit(x.Payout.Currency),
            Credit = AccountRef.PaymentClearing(x.Payout.Currency),
            Amount = x.Payout.Amount,
            Code = TransferCode.PayoutSettlement,
            Reference = x.Sent.ProviderId,
        }, actor, cancellationToken)));
        steps.Add(SettlementStep.Settle, started);
        statements.AddRange(succeeded.Select(x => new StatementWritten(x.Payout.SellerId, period, x.Payout.Currency, x.Payout.Amount, "paid", x.Sent.ProviderId, x.Payout.LedgerTransferId)));
        statements.AddRange(declined.Select(x => Failed(period, x.Payout, x.Sent.Reason ?? "the provider refused the transfer")));
        return statements;
    }

    private static StatementWritten Failed(string period, PlannedPayout payout, string reason) =>
        new(payout.SellerId, period, payout.Currency, 0, "failed", null, payout.LedgerTransferId, reason);

    /// <summary>
    /// Appends a batch's statements at the version this run knows; when another node appended first, re-reads the
    /// stream and appends only the statements still missing (the first recorded outcome of a payout stands).
    /// </summary>
    private async Task<RunState> RecordAsync(RunState run, IReadOnlyList<StatementWritten> statements, string node, CancellationToken cancellationToken)
    {
        var period = run.Started!.Period;
        while (true)
        {
            var fresh = statements.Where(s => run.Resolution(s.SellerId, s.Currency) is null)
                .OrderBy(s => s.SellerId, StringComparer.Ordinal).ThenBy(s => s.Currency, StringComparer.Ordinal).ToList();
            if (fresh.Count == 0)
            {
                return run;
            }

            var resolved = new PayoutsResolved(period, fresh, time.GetUtcNow());
            if (await store.TryAppendAsync(RunStream(period), StreamType, run.Version, $"settlement:{node}", cancellationToken, resolved))
            {
                run.Apply(resolved);
                run.Version++;
                return run;
            }

            run = await ReadRunAsync(period, cancellationToken);
        }
    }

    private async Task<Reconciliation> ReconcileAsync(ILedger book, string period, RunState run, CancellationToken cancellationToken)
    {
        // The provider's side and the ledger's side are independent reads: both at once.
        var providerRead = rails.ListTransfersAsync(period, cancellationToken);
        var storedRead = book.GetTransfersAsync(run.Plan.Select(p => p.LedgerTransferId).ToArray(), cancellationToken);
        await Task.WhenAll(providerRead, storedRead);
        var (provider, stored) = (await providerRead, await storedRead);
        var byKey = provider.GroupBy(t => t.IdempotencyKey, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var transfers = run.Plan.Select(p => stored.GetValueOrDefault(p.LedgerTransferId)).ToArray();
        var mismatches = new List<string>();
        long ledgerCount = 0, ledgerTotal = 0;
        for (var i = 0; i < run.Plan.Count; i++)
        {
            var payout = run.Plan[i];
            var transfer = transfers[i];
            var posted = transfer?.State == TransferState.PendingPosted;
            if (posted)
            {
                ledgerCount++;
                ledgerTotal = checked(ledgerTotal + transfer!.Amount);
            }

            var sent = byKey.GetValueOrDefault(payout.IdempotencyKey) ?? [];
            if (sent.Count > 1)
            {
                mismatches.Add($"{payout.SellerId}: the provider holds {sent.Count} transfers for {payout.IdempotencyKey}");
            }

            if (posted && sent.Count == 0)
            {
                mismatches.Add($"{payout.SellerId}: ledger payout {payout.LedgerTransferId} posted, no provider transfer");
            }
            else if (!posted && sent.Count > 0)
            {
                mismatches.Add($"{payout.SellerId}: provider transfer {sent[0].ProviderId} has no posted ledger payout");
            }
            else if (posted && sent.Sum(t => t.Amount) != transfer!.Amount)
            {
                mismatches.Add($"{payout.SellerId}: ledger paid {transfer.Amount}, the provider transferred {sent.Sum(t => t.Amount)}");
            }
        }

        var planned = run.Plan.Select(p => p.IdempotencyKey).ToHashSet(StringComparer.Ordinal);
        foreach (var stray in provider.Where(t => !planned.Contains(t.IdempotencyKey)))
        {
            mismatches.Add($"provider transfer {stray.ProviderId} ({stray.IdempotencyKey}, {stray.Amount}) belongs to no planned payout");
        }

        mismatches.AddRange(await ReversalMismatchesAsync(book, period, run, provider, cancellationToken));

        return new Reconciliation(ledgerCount, ledgerTotal, provider.Count, provider.Sum(t => t.Amount), mismatches);
    }

    /// <summary>
    /// Sends the plan's unresolved reversals (one at a time: there are few) and records how they ended in one
    /// <see cref="ReversalsResolved"/>; a transient answer leaves its reversal unresolved for the next run, under the same key.
    /// </summary>
    private async Task<RunState> ReverseAsync(RunState run, string node, CancellationToken cancellationToken)
    {
        var resolved = new List<ReversalResolved>();
        foreach (var reversal in run.ReversalPlan.Where(r => run.Reversal(r) is null))
        {
            if (await disputes.ReverseAsync(rails, reversal, $"settlement:{node}", cancellationToken) is { } outcome)
            {
                resolved.Add(outcome);
            }
        }

        var period = run.Started!.Period;
        while (resolved.Count > 0)
        {
            var fresh = resolved.Where(r => run.Reversal(r.IdempotencyKey) is null).ToList();
            if (fresh.Count == 0)
            {
                break;
            }

            var recorded = new ReversalsResolved(period, fresh, time.GetUtcNow());
            if (await store.TryAppendAsync(RunStream(period), StreamType, run.Version, $"settlement:{node}", cancellationToken, recorded))
            {
                run.Apply(recorded);
                run.Version++;
                break;
            }

            run = await ReadRunAsync(period, cancellationToken);
        }

        return run;
    }

    /// <summary>
    /// Reversals in the reconciliation: every reversed amount the provider shows on this period's transfers, and on the
    /// earlier transfers this run reversed, must be what the ledger recorded as reversed (each reversal's ledger
    /// transfer committed). Skipped, store scan included, when neither this run nor the provider shows a reversal.
    /// </summary>
    private async Task<IReadOnlyList<string>> ReversalMismatchesAsync(ILedger book, string period, RunState run, IReadOnlyList<ProviderTransfer> provider, CancellationToken cancellationToken)
    {
        if (run.ReversalPlan.Count == 0 && provider.All(t => t.Reversed == 0))
        {
            return [];
        }

        var mismatches = new List<string>();
        var recorded = await disputes.ReversedByTransferAsync(cancellationToken);
        var transfers = provider.ToList();
        foreach (var group in run.ReversalPlan.Select(r => r.TransferPeriod).Distinct(StringComparer.Ordinal).Where(g => g != period))
        {
            transfers.AddRange(await rails.ListTransfersAsync(group, cancellationToken));
        }

        foreach (var transfer in transfers.Where(t => t.Reversed != 0 || recorded.ContainsKey(t.ProviderId)))
        {
            var inLedger = recorded.GetValueOrDefault(transfer.ProviderId);
            if (inLedger != transfer.Reversed)
            {
                mismatches.Add($"provider transfer {transfer.ProviderId} ({transfer.IdempotencyKey}): the provider reversed {transfer.Reversed}, the ledger recorded {inLedger}");
            }
        }

        var done = run.ReversalPlan.Where(r => run.Reversal(r) is { Status: "reversed" }).ToList();
        var stored = await book.GetTransfersAsync(done.Select(r => r.LedgerTransferId).ToArray(), cancellationToken);
        foreach (var reversal in done.Where(r => stored.GetValueOrDefault(r.LedgerTransferId) is not { Amount: var amount } || amount != r.Amount))
        {
            mismatches.Add($"{reversal.SellerId}: reversal {reversal.IdempotencyKey} of {reversal.Amount} has no ledger transfer of that amount");
        }

        return mismatches;
    }

    private async Task<RunState> ReadRunAsync(string period, CancellationToken cancellationToken)
    {
        var (events, version) = await store.ReadAsync(RunStream(period), cancellationToken);
        var run = new RunState { Version = version };
        foreach (var recorded in events)
        {
            run.Apply(recorded);
        }

        return run;
    }

    /// <summary>Appends what <paramref name="make"/> builds unless <paramref name="done"/> already holds; a lost race re-reads and decides again.</summary>
    private async Task AppendOnceAsync(string stream, Func<IReadOnlyList<object>, bool> done, Func<Task<object[]>> make, string node, CancellationToken cancellationToken)
    {
        while (true)
        {
            var (events, version) = await store.ReadAsync(stream, cancellationToken);
            if (done(events))
            {
                return;
            }

            var made = await make();
            if (await store.TryAppendAsync(stream, StreamType, version, $"settlement:{node}", cancellationToken, made))
            {
                return;
            }
        }
    }

    /// <summary>A run's stream folded once: the plan, each payout's statement (first recorded wins) and the stream's version.</summary>
    private sealed class RunState
    {
        private readonly Dictionary<(string Seller, string Currency), StatementWritten> _resolved = [];
        private readonly Dictionary<(string Seller, string Currency), string> _reasons = [];
        private readonly Dictionary<string, ReversalResolved> _reversals = new(StringComparer.Ordinal);

        public RunStarted? Started { get; private set; }

        public RunCompleted? Completed { get; private set; }

        public long Version { get; set; }

        public int PlanEvents { get; private set; }

        public List<PlannedPayout> Plan { get; } = [];

        public List<string> Waiting { get; } = [];

        public List<PlannedRecovery> Recoveries { get; } = [];

        public List<PlannedReversal> ReversalPlan { get; } = [];

        public List<StatementWritten> Statements { get; } = [];

        public void Apply(object recorded)
        {
            switch (recorded)
            {
                case RunStarted started:
                    Started ??= started;
                    break;
                case PayoutsPlanned planned:
                    PlanEvents++;
                    Plan.AddRange(planned.Payouts);
                    Waiting.AddRange(planned.WaitingForDestination);
                    Recoveries.AddRange(planned.Recoveries ?? []);
                    ReversalPlan.AddRange(planned.Reversals ?? []);
                    break;
                case ReversalsResolved reversals:
                    foreach (var reversal in reversals.Reversals)
                    {
                        _reversals.TryAdd(reversal.IdempotencyKey, reversal);
                    }

                    break;
                case PayoutFailed failed:
                    // Written by earlier runs beside their StatementWritten, which did not carry the reason.
                    _reasons.TryAdd((failed.SellerId, failed.Currency), failed.Reason);
                    break;
                case StatementWritten statement:
                    Add(statement);
                    break;
                case PayoutsResolved resolved:
                    foreach (var statement in resolved.Statements)
                    {
                        Add(statement);
                    }

                    break;
                case RunCompleted completed:
                    Completed ??= completed;
                    break;
            }
        }

        public StatementWritten? Resolution(PlannedPayout payout) => Resolution(payout.SellerId, payout.Currency);

        public StatementWritten? Resolution(string sellerId, string currency) => _resolved.GetValueOrDefault((sellerId, currency));

        public ReversalResolved? Reversal(PlannedReversal reversal) => Reversal(reversal.IdempotencyKey);

        public ReversalResolved? Reversal(string idempotencyKey) => _reversals.GetValueOrDefault(idempotencyKey);

        public List<ReversalView> ReversalViews() => ReversalPlan.Select(r => (Plan: r, Done: Reversal(r)))
            .Select(x => new ReversalView(x.Plan.SellerId, x.Plan.Currency, x.Plan.Amount, x.Plan.TransferId, x.Plan.TransferPeriod, x.Plan.IdempotencyKey,
                x.Done?.Status ?? "pending", x.Done?.ProviderReversalId, x.Done?.Reason))
            .ToList();

        public SettlementRunView View()
        {
            var payouts = Plan.Select(p => Resolution(p) switch
            {
                { Status: "paid" } s => new PayoutView(p.SellerId, p.Currency, p.Amount, "paid", p.LedgerTransferId, p.IdempotencyKey, s.ProviderTransferId, null),
                { } f => new PayoutView(p.SellerId, p.Currency, p.Amount, "failed", p.LedgerTransferId, p.IdempotencyKey, null, f.Reason ?? _reasons.GetValueOrDefault((p.SellerId, p.Currency))),
                null => new PayoutView(p.SellerId, p.Currency, p.Amount, "pending", p.LedgerTransferId, p.IdempotencyKey, null, null),
            }).ToList();
            return new SettlementRunView(Started!.Period, Completed is null ? "in_progress" : "completed", Started.StartedAt, Completed?.CompletedAt, payouts,
                Waiting, Completed?.Reconciliation, ReversalViews());
        }

        private void Add(StatementWritten statement)
        {
            if (_resolved.TryAdd((statement.SellerId, statement.Currency), statement))
            {
                Statements.Add(statement);
            }
        }
    }
}

/// <summary>The steps of a settlement run whose time <see cref="SettlementStepTimes"/> sums.</summary>
public enum SettlementStep
{
    /// <summary>Start, hold releases and the plan (balances, destinations, PayoutsPlanned).</summary>
    Plan,
    /// <summary>Pending ledger payouts, and re-reads of those an earlier attempt reserved.</summary>
    Reserve,
    /// <summary>Provider transfers.</summary>
    Provider,
    /// <summary>Posts (and voids) of the pending payouts.</summary>
    Post,
    /// <summary>Settlement transfers out of payouts in transit.</summary>
    Settle,
    /// <summary>PayoutsResolved appends.</summary>
    Record,
    /// <summary>Reconciliation against the provider's transfers.</summary>
    Reconcile,
}

/// <summary>Seconds per step of one run (thread-safe adds; read after the run).</summary>
public sealed class SettlementStepTimes
{
    private readonly long[] _ticks = new long[Enum.GetValues<SettlementStep>().Length];

    /// <summary>Adds the time since <paramref name="since"/> (a <see cref="Stopwatch.GetTimestamp"/>) to the step; returns now.</summary>
    public long Add(SettlementStep step, long since)
    {
        var now = Stopwatch.GetTimestamp();
        Interlocked.Add(ref _ticks[(int)step], now - since);
        return now;
    }

    public double Seconds(SettlementStep step) => (double)Interlocked.Read(ref _ticks[(int)step]) / Stopwatch.Frequency;

    public override string ToString() => string.Join(", ",
        Enum.GetValues<SettlementStep>().Select(step => string.Create(CultureInfo.InvariantCulture, $"{step.ToString().ToLowerInvariant()} {Seconds(step):F2} s")));
}
