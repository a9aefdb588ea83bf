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
/// transfers. Every step derives its ids from the period and the seller and appends to the run's stream at the
/// version it read, so two nodes running the same period, a crash and a restart, or a re-run pay nobody twice.
/// </summary>
public sealed class SettlementRunner(
    SettlementStore store, LedgerAccess ledger, IPaymentRails rails, DisputeBook disputes, SettlementOptions options, TimeProvider time, ILogger<SettlementRunner> logger)
{
    private const string StreamType = "settlement-run";

    public async Task<SettlementRunView> RunAsync(string period, string node, CancellationToken cancellationToken)
    {
        ValidatePeriod(period);
        var stream = RunStream(period);
        await AppendOnceAsync(stream, e => e.OfType<RunStarted>().Any(), () => Task.FromResult<object[]>([new RunStarted(period, time.GetUtcNow(), node)]), node, cancellationToken);
        var (events, _) = await store.ReadAsync(stream, cancellationToken);
        if (events.OfType<RunCompleted>().Any())
        {
            return View(events);
        }

        if (!events.OfType<PayoutsPlanned>().Any())
        {
            await ReleaseMaturedHoldsAsync(cancellationToken);
            await AppendOnceAsync(stream, e => e.OfType<PayoutsPlanned>().Any(), async () => [await PlanAsync(period, cancellationToken)], node, cancellationToken);
            (events, _) = await store.ReadAsync(stream, cancellationToken);
        }

        // What sellers owe from disputes leaves their payable balance before the rest is paid out.
        foreach (var recovery in events.OfType<PayoutsPlanned>().First().Recoveries ?? [])
        {
            await disputes.RecoverAsync(recovery, period, $"settlement:{node}", cancellationToken);
        }

        foreach (var payout in events.OfType<PayoutsPlanned>().First().Payouts)
        {
            await PayAsync(period, payout, node, cancellationToken);
        }

        (events, _) = await store.ReadAsync(stream, cancellationToken);
        var plan = events.OfType<PayoutsPlanned>().First();
        if (plan.Payouts.All(p => Resolution(events, p) is not null))
        {
            var reconciliation = await ReconcileAsync(period, plan, events, cancellationToken);
            await AppendOnceAsync(stream, e => e.OfType<RunCompleted>().Any(), () => Task.FromResult<object[]>([new RunCompleted(period, reconciliation, time.GetUtcNow())]), node, cancellationToken);
            if (!reconciliation.Clean)
            {
                logger.LogError("Settlement {Period} reconciliation found mismatches: {Mismatches}", period, string.Join("; ", reconciliation.Mismatches));
            }
        }
        else
        {
            logger.LogWarning("Settlement {Period} left payouts unresolved (provider unavailable); the next run resumes them", period);
        }

        (events, _) = await store.ReadAsync(stream, cancellationToken);
        return View(events);
    }

    public async Task<SettlementRunView?> GetAsync(string period, CancellationToken cancellationToken)
    {
        ValidatePeriod(period);
        var (events, _) = await store.ReadAsync(RunStream(period), cancellationToken);
        return events.OfType<RunStarted>().Any() ? View(events) : null;
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
        var (events, _) = await store.ReadAsync(RunStream(period), cancellationToken);
        return new SellerStatementView(sellerId, period,
            statement.Lines.Select(l => new LedgerStatementLineView(l.Currency, l.Earned, l.Held, l.Paid)).ToList(),
            events.OfType<StatementWritten>().Where(s => s.SellerId == sellerId).ToList());
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

    /// <summary>Holds of purchases whose refund window has ended (and that were not refunded) become payable.</summary>
    private async Task ReleaseMaturedHoldsAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var due = new Dictionary<Guid, PurchaseCompleted>();
        await foreach (var recorded in store.ScanAsync(new HashSet<string> { nameof(PurchaseCompleted), nameof(PurchaseRefunded), nameof(HoldsReleased), nameof(PurchaseDisputed) }, cancellationToken))
        {
            switch (recorded)
            {
                case PurchaseCompleted c when !c.Released && c.RefundableUntil <= now:
                    due[c.PurchaseId] = c;
                    break;
                case PurchaseRefunded r:
                    due.Remove(r.PurchaseId);
                    break;
                case HoldsReleased h:
                    due.Remove(h.PurchaseId);
                    break;
                case PurchaseDisputed d:
                    due.Remove(d.PurchaseId);
                    break;
            }
        }

        foreach (var purchase in due.Values)
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

    private async Task<PayoutsPlanned> PlanAsync(string period, CancellationToken cancellationToken)
    {
        var balances = await (await ledger.GetAsync(cancellationToken)).GetBalancesAsync("seller_payable:", cancellationToken);
        var owed = await disputes.OwedAsync(cancellationToken);
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

            var (destinations, _) = await store.ReadAsync(MarketService.DestinationStream(balance.Owner), cancellationToken);
            if (MarketService.Usable(destinations) is not { } destination)
            {
                waiting.Add(balance.Owner);
                continue;
            }

            payouts.Add(new PlannedPayout(
                balance.Owner, balance.Currency, payable, PayoutTransferId(period, balance.Owner, balance.Currency),
                $"payout:{period}:{balance.Owner}:{balance.Currency}", destination.AccountId));
        }

        return new PayoutsPlanned(period, payouts, waiting, recoveries);
    }

    private async Task PayAsync(string period, PlannedPayout payout, string node, CancellationToken cancellationToken)
    {
        var stream = RunStream(period);
        var (events, _) = await store.ReadAsync(stream, cancellationToken);
        if (Resolution(events, payout) is not null)
        {
            return;
        }

        var book = await ledger.GetAsync(cancellationToken);
        var reserve = await book.CommitAsync(new TransferRequest
        {
            Id = payout.LedgerTransferId,
            Debit = AccountRef.SellerPayable(payout.SellerId, payout.Currency),
            Credit = AccountRef.PayoutsInTransit(payout.Currency),
            Amount = payout.Amount,
            Code = TransferCode.Payout,
            Pending = true,
            Reference = payout.IdempotencyKey,
        }, new LedgerCommandOptions { Actor = $"settlement:{node}" }, cancellationToken);
        var existing = await book.GetTransferAsync(payout.LedgerTransferId, cancellationToken);
        if (!reserve.Succeeded && existing is null)
        {
            // Nothing was reserved (the balance moved since the plan, e.g. a dispute): nothing is sent either.
            await RecordFailureAsync(period, payout, $"the ledger refused the payout: {reserve.Rejection} {reserve.Detail}", node, cancellationToken);
            return;
        }

        if (existing?.State == TransferState.PendingVoided)
        {
            await RecordFailureAsync(period, payout, "the payout was voided earlier", node, cancellationToken);
            return;
        }

        var sent = await rails.TransferAsync(payout.IdempotencyKey, payout.Destination, payout.Amount, payout.Currency, period, cancellationToken);
        switch (sent.Outcome)
        {
            case RailsOutcome.Succeeded:
                await book.PostPendingAsync(payout.LedgerTransferId, new LedgerCommandOptions { Actor = $"settlement:{node}" }, cancellationToken);
                await book.CommitAsync(new TransferRequest
                {
                    Id = PayoutSettlementTransferId(period, payout.SellerId, payout.Currency),
                    Debit = AccountRef.PayoutsInTransit(payout.Currency),
                    Credit = AccountRef.PaymentClearing(payout.Currency),
                    Amount = payout.Amount,
                    Code = TransferCode.PayoutSettlement,
                    Reference = sent.ProviderId,
                }, new LedgerCommandOptions { Actor = $"settlement:{node}" }, cancellationToken);
                await AppendOnceAsync(stream, e => Resolution(e, payout) is not null, () => Task.FromResult<object[]>(
                [
                    new PayoutSent(payout.SellerId, payout.Currency, sent.ProviderId!, time.GetUtcNow()),
                    new StatementWritten(payout.SellerId, period, payout.Currency, payout.Amount, "paid", sent.ProviderId, payout.LedgerTransferId),
                ]), node, cancellationToken);
                break;
            case RailsOutcome.Declined:
                await book.VoidPendingAsync(payout.LedgerTransferId, new LedgerCommandOptions { Actor = $"settlement:{node}" }, cancellationToken);
                await RecordFailureAsync(period, payout, sent.Reason ?? "the provider refused the transfer", node, cancellationToken);
                break;
            default:
                // Transient: the pending payout stays reserved and the next run sends it again under the same key.
                logger.LogWarning("Payout {Key} not confirmed: {Reason}", payout.IdempotencyKey, sent.Reason);
                break;
        }
    }

    private Task RecordFailureAsync(string period, PlannedPayout payout, string reason, string node, CancellationToken cancellationToken) =>
        AppendOnceAsync(RunStream(period), e => Resolution(e, payout) is not null, () => Task.FromResult<object[]>(
        [
            new PayoutFailed(payout.SellerId, payout.Currency, reason, time.GetUtcNow()),
            new StatementWritten(payout.SellerId, period, payout.Currency, 0, "failed", null, payout.LedgerTransferId),
        ]), node, cancellationToken);

    private async Task<Reconciliation> ReconcileAsync(string period, PayoutsPlanned plan, IReadOnlyList<object> events, CancellationToken cancellationToken)
    {
        var book = await ledger.GetAsync(cancellationToken);
        var provider = await rails.ListTransfersAsync(period, cancellationToken);
        var byKey = provider.GroupBy(t => t.IdempotencyKey, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var mismatches = new List<string>();
        long ledgerCount = 0, ledgerTotal = 0;
        foreach (var payout in plan.Payouts)
        {
            var transfer = await book.GetTransferAsync(payout.LedgerTransferId, cancellationToken);
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

        var planned = plan.Payouts.Select(p => p.IdempotencyKey).ToHashSet(StringComparer.Ordinal);
        foreach (var stray in provider.Where(t => !planned.Contains(t.IdempotencyKey)))
        {
            mismatches.Add($"provider transfer {stray.ProviderId} ({stray.IdempotencyKey}, {stray.Amount}) belongs to no planned payout");
        }

        return new Reconciliation(ledgerCount, ledgerTotal, provider.Count, provider.Sum(t => t.Amount), mismatches);
    }

    private static object? Resolution(IReadOnlyList<object> events, PlannedPayout payout) =>
        events.FirstOrDefault(e => e is PayoutSent s && s.SellerId == payout.SellerId && s.Currency == payout.Currency
            || e is PayoutFailed f && f.SellerId == payout.SellerId && f.Currency == payout.Currency);

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

    private static SettlementRunView View(IReadOnlyList<object> events)
    {
        var started = events.OfType<RunStarted>().First();
        var plan = events.OfType<PayoutsPlanned>().FirstOrDefault();
        var completed = events.OfType<RunCompleted>().FirstOrDefault();
        var payouts = (plan?.Payouts ?? []).Select(p => Resolution(events, p) switch
        {
            PayoutSent s => new PayoutView(p.SellerId, p.Currency, p.Amount, "paid", p.LedgerTransferId, p.IdempotencyKey, s.ProviderTransferId, null),
            PayoutFailed f => new PayoutView(p.SellerId, p.Currency, p.Amount, "failed", p.LedgerTransferId, p.IdempotencyKey, null, f.Reason),
            _ => new PayoutView(p.SellerId, p.Currency, p.Amount, "pending", p.LedgerTransferId, p.IdempotencyKey, null, null),
        }).ToList();
        return new SettlementRunView(started.Period, completed is null ? "in_progress" : "completed", started.StartedAt, completed?.CompletedAt, payouts,
            plan?.WaitingForDestination ?? [], completed?.Reconciliation);
    }
}
