using DataMarket.Contracts;
using DataMarket.Ledger.Model;
using DataMarket.Settlement.Postings;
using DataMarket.SettlementService.Infrastructure;
using Microsoft.Extensions.Logging;

namespace DataMarket.SettlementService.Application;

/// <summary>
/// Disputes (chargebacks): the buyer's bank takes the payment back, or part of it. While the sellers' shares are still held the
/// ledger reverses the sale exactly like a refund, or, for a dispute of part of the sale, reverses that part (pro rata
/// from the fee and each held share) and leaves the rest held for the release. After release (the shares may already be paid out) the disputed
/// amount leaves payment clearing against the platform's <c>refunds</c> account, the platform gives up its fee (for a
/// dispute of part of the sale, its pro rata part, by largest remainder) into it, and each seller owes its share (or
/// its pro rata part): the next settlement runs take what it owes from its payable balance (into <c>refunds</c>)
/// before paying the rest, until the account is back at zero. One stream per dispute; ledger ids derive from it.
/// </summary>
public sealed class DisputeBook(SettlementStore store, LedgerAccess ledger, TimeProvider time, ILogger<DisputeBook> logger)
{
    /// <summary>Records the dispute once; null when the purchase is unknown, unpaid or refunded (nothing to take back).</summary>
    public async Task<DisputeOpened?> OpenAsync(string disputeId, Guid purchaseId, long? providerAmount, CancellationToken cancellationToken)
    {
        var stream = DisputeStream(disputeId);
        var (existing, _) = await store.ReadAsync(stream, cancellationToken);
        if (existing.OfType<DisputeOpened>().FirstOrDefault() is { } opened)
        {
            return opened;
        }

        var (events, _) = await store.ReadAsync(MarketService.PurchaseStream(purchaseId), cancellationToken);
        var completed = events.OfType<PurchaseCompleted>().FirstOrDefault();
        if (completed is null || events.OfType<PurchaseRefunded>().Any())
        {
            logger.LogWarning("Dispute {Dispute} names purchase {Purchase}, which is not paid or was refunded: nothing recorded", disputeId, purchaseId);
            return null;
        }

        if (events.OfType<PurchaseDisputed>().FirstOrDefault() is { } marked && marked.DisputeId != disputeId)
        {
            // A charge is disputed once; another dispute id for the same purchase would take the money back twice.
            logger.LogWarning("Dispute {Dispute} names purchase {Purchase}, already disputed by {Earlier}: nothing recorded", disputeId, purchaseId, marked.DisputeId);
            return null;
        }

        var released = completed.Released || events.OfType<HoldsReleased>().Any();
        var now = time.GetUtcNow();
        var split = MarketService.SplitOf(completed);
        var amount = providerAmount is { } named && named > 0 && named < completed.Gross ? named : completed.Gross;
        // The dispute takes its amount pro rata from the fee and each share (largest remainder, to the cent).
        var parts = DataMarket.Settlement.Split.DisputeSplit.ProRata(amount, split);
        // While held, a dispute of part of the sale leaves the rest of each share held, released when the window ends.
        var heldLeft = !released && amount < completed.Gross
            ? completed.Shares.Select(s => s with { Amount = s.Amount - parts.Shares.Single(p => p.SellerId == s.SellerId).Amount }).ToList()
            : null;
        // The purchase is marked first, so a settlement run no longer releases its holds (all of them, or more than is left) while the ledger is reversed.
        await AppendOnceAsync(MarketService.PurchaseStream(purchaseId), e => e.OfType<PurchaseDisputed>().Any(), new PurchaseDisputed(purchaseId, disputeId, now, amount, heldLeft), cancellationToken);
        (events, _) = await store.ReadAsync(MarketService.PurchaseStream(purchaseId), cancellationToken);
        released = released || events.OfType<HoldsReleased>().Any();

        var lines = released
            ? Chargeback(purchaseId, disputeId, completed.Currency, amount, parts.Fee)
            : amount < completed.Gross
                ? PurchasePostings.HeldDispute(purchaseId, disputeId, completed.BuyerId, completed.Currency, parts)
                : PurchasePostings.Refund(purchaseId, completed.BuyerId, completed.Currency, split);
        await ledger.CommitAsync(lines, "settlement:dispute", cancellationToken);
        var record = new DisputeOpened(disputeId, purchaseId, completed.Currency, amount, released,
            released ? parts.Shares.Where(s => s.Amount > 0).Select(s => completed.Shares.Single(p => p.SellerId == s.SellerId) with { Amount = s.Amount }).ToList() : [], now);
        await AppendOnceAsync(stream, e => e.OfType<DisputeOpened>().Any(), record, cancellationToken);
        return record;
    }

    /// <summary>
    /// What each seller still owes from disputes, by (seller, currency): owed shares less what runs have planned to
    /// take from payable balances and to reverse from transfers (a reversal the provider refused counts again).
    /// </summary>
    public async Task<IReadOnlyDictionary<(string Seller, string Currency), long>> OwedAsync(CancellationToken cancellationToken)
    {
        var tally = new OwedTally();
        await foreach (var recorded in store.ScanAsync(OwedTally.Types, cancellationToken))
        {
            tally.Apply(recorded);
        }

        return tally.Owed();
    }

    /// <summary><see cref="OwedAsync"/>'s fold over the store's events, for a reader that folds other things in the same pass (a run's plan).</summary>
    public sealed class OwedTally
    {
        public static readonly IReadOnlySet<string> Types = new HashSet<string>(StringComparer.Ordinal) { nameof(DisputeOpened), nameof(PayoutsPlanned), nameof(ReversalsResolved) };

        private readonly Dictionary<(string, string), long> _owed = [];
        private readonly HashSet<string> _resolved = new(StringComparer.Ordinal);

        public void Apply(object recorded)
        {
            switch (recorded)
            {
                case DisputeOpened d:
                    foreach (var share in d.Owed)
                    {
                        _owed[(share.SellerId, d.Currency)] = checked(_owed.GetValueOrDefault((share.SellerId, d.Currency)) + share.Amount);
                    }

                    break;
                case PayoutsPlanned p:
                    foreach (var recovery in p.Recoveries ?? [])
                    {
                        _owed[(recovery.SellerId, recovery.Currency)] = _owed.GetValueOrDefault((recovery.SellerId, recovery.Currency)) - recovery.Amount;
                    }

                    foreach (var reversal in p.Reversals ?? [])
                    {
                        _owed[(reversal.SellerId, reversal.Currency)] = _owed.GetValueOrDefault((reversal.SellerId, reversal.Currency)) - reversal.Amount;
                    }

                    break;
                case ReversalsResolved r:
                    // The first recorded outcome of a key stands; a refused reversal took nothing back.
                    foreach (var reversal in r.Reversals.Where(x => _resolved.Add(x.IdempotencyKey) && x.Status == "refused"))
                    {
                        _owed[(reversal.SellerId, reversal.Currency)] = checked(_owed.GetValueOrDefault((reversal.SellerId, reversal.Currency)) + reversal.Amount);
                    }

                    break;
            }
        }

        public IReadOnlyDictionary<(string Seller, string Currency), long> Owed() => _owed.Where(o => o.Value > 0).ToDictionary(o => o.Key, o => o.Value);
    }

    /// <summary>
    /// Plans, for each seller whose payable balance cannot cover what it owes, reversals of its paid transfers of
    /// periods before <paramref name="period"/>, the latest first, each up to what is left of it (paid less the
    /// reversals planned on it that were not refused), until the shortfall is covered or nothing is left; what no
    /// transfer covers stays owed (logged) and the next run nets it again.
    /// </summary>
    public async Task<IReadOnlyList<PlannedReversal>> PlanReversalsAsync(string period, IReadOnlyList<((string Seller, string Currency) Debtor, long Shortfall)> shortfalls, CancellationToken cancellationToken)
    {
        var debtors = shortfalls.Select(s => s.Debtor).ToHashSet();
        var paid = new Dictionary<string, StatementWritten>(StringComparer.Ordinal);
        var reversedOn = new Dictionary<string, long>(StringComparer.Ordinal);
        var resolved = new Dictionary<string, ReversalResolved>(StringComparer.Ordinal);
        void Paid(StatementWritten s)
        {
            if (s is { Status: "paid", ProviderTransferId: { } id } && string.CompareOrdinal(s.Period, period) < 0 && debtors.Contains((s.SellerId, s.Currency)))
            {
                paid.TryAdd(id, s);
            }
        }

        await foreach (var recorded in store.ScanAsync(new HashSet<string> { nameof(PayoutsResolved), nameof(StatementWritten), nameof(PayoutsPlanned), nameof(ReversalsResolved) }, cancellationToken))
        {
            switch (recorded)
            {
                case PayoutsResolved r:
                    r.Statements.ToList().ForEach(Paid);
                    break;
                case StatementWritten s:
                    Paid(s);
                    break;
                case PayoutsPlanned p:
                    foreach (var reversal in p.Reversals ?? [])
                    {
                        reversedOn[reversal.TransferId] = checked(reversedOn.GetValueOrDefault(reversal.TransferId) + reversal.Amount);
                    }

                    break;
                case ReversalsResolved r:
                    foreach (var reversal in r.Reversals)
                    {
                        resolved.TryAdd(reversal.IdempotencyKey, reversal);
                    }

                    break;
            }
        }

        foreach (var refused in resolved.Values.Where(r => r.Status == "refused"))
        {
            reversedOn[refused.TransferId] = reversedOn.GetValueOrDefault(refused.TransferId) - refused.Amount;
        }

        var planned = new List<PlannedReversal>();
        foreach (var ((seller, currency), shortfall) in shortfalls.OrderBy(s => s.Debtor.Seller, StringComparer.Ordinal).ThenBy(s => s.Debtor.Currency, StringComparer.Ordinal))
        {
            var left = shortfall;
            foreach (var transfer in paid.Values.Where(s => s.SellerId == seller && s.Currency == currency)
                         .OrderByDescending(s => s.Period, StringComparer.Ordinal).ThenBy(s => s.ProviderTransferId, StringComparer.Ordinal))
            {
                var take = Math.Min(left, transfer.Paid - reversedOn.GetValueOrDefault(transfer.ProviderTransferId!));
                if (take <= 0)
                {
                    continue;
                }

                var key = $"reversal:{period}:{seller}:{currency}:{transfer.ProviderTransferId}";
                planned.Add(new PlannedReversal(seller, currency, take, transfer.ProviderTransferId!, transfer.Period, key, ReversalLedgerId(key)));
                left -= take;
                if (left == 0)
                {
                    break;
                }
            }

            if (left > 0)
            {
                logger.LogWarning("Seller {Seller} owes {Left} {Currency} from disputes that neither its payable balance nor its earlier transfers cover; it stays owed", seller, left, currency);
            }
        }

        return planned;
    }

    /// <summary>
    /// Carries out a planned reversal: the provider takes the amount back from the seller's account, then the ledger
    /// records it (<c>payment_clearing -> refunds</c>: the money is back in the platform's balance and the seller's
    /// debt in <c>refunds</c> shrinks by it). Null while the provider's answer is unknown (the next run sends the same key).
    /// </summary>
    public async Task<ReversalResolved?> ReverseAsync(IPaymentRails rails, PlannedReversal reversal, string actor, CancellationToken cancellationToken)
    {
        var answer = await rails.ReverseTransferAsync(reversal.IdempotencyKey, reversal.TransferId, reversal.Amount, reversal.Currency, cancellationToken);
        switch (answer.Outcome)
        {
            case RailsOutcome.Succeeded:
                var book = await ledger.GetAsync(cancellationToken);
                var result = await book.CommitAsync(new TransferRequest
                {
                    Id = reversal.LedgerTransferId,
                    Debit = AccountRef.PaymentClearing(reversal.Currency),
                    Credit = AccountRef.Refunds(reversal.Currency),
                    Amount = reversal.Amount,
                    Code = TransferCode.Correction,
                    Reference = reversal.IdempotencyKey,
                }, new LedgerCommandOptions { Actor = actor }, cancellationToken);
                if (!result.Succeeded && await book.GetTransferAsync(reversal.LedgerTransferId, cancellationToken) is null)
                {
                    throw new InvalidOperationException($"the ledger refused transfer reversal {reversal.IdempotencyKey}: {result.Rejection} {result.Detail}");
                }

                return new ReversalResolved(reversal.SellerId, reversal.Currency, reversal.Amount, reversal.TransferId, reversal.IdempotencyKey, "reversed", answer.ProviderId);
            case RailsOutcome.Declined:
                logger.LogWarning("Reversal {Key} of {Amount} from transfer {Transfer} was refused ({Reason}); the seller's debt stays and the next run nets it again",
                    reversal.IdempotencyKey, reversal.Amount, reversal.TransferId, answer.Reason);
                return new ReversalResolved(reversal.SellerId, reversal.Currency, reversal.Amount, reversal.TransferId, reversal.IdempotencyKey, "refused", null, answer.Reason);
            default:
                logger.LogWarning("Reversal {Key} not confirmed: {Reason}", reversal.IdempotencyKey, answer.Reason);
                return null;
        }
    }

    /// <summary>What the ledger recorded as reversed, by provider transfer id (for reconciliation).</summary>
    public async Task<IReadOnlyDictionary<string, long>> ReversedByTransferAsync(CancellationToken cancellationToken)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var reversed = new Dictionary<string, long>(StringComparer.Ordinal);
        await foreach (var recorded in store.ScanAsync(new HashSet<string> { nameof(ReversalsResolved) }, cancellationToken))
        {
            foreach (var reversal in ((ReversalsResolved)recorded).Reversals.Where(r => seen.Add(r.IdempotencyKey) && r.Status == "reversed"))
            {
                reversed[reversal.TransferId] = checked(reversed.GetValueOrDefault(reversal.TransferId) + reversal.Amount);
            }
        }

        return reversed;
    }

    public static Guid ReversalLedgerId(string idempotencyKey) => PurchasePostings.TransferId(Guid.Empty, $"transfer-reversal:{idempotencyKey}");

    /// <summary>Takes a planned recovery from the seller's payable balance (idempotent by its id).</summary>
    public async Task<bool> RecoverAsync(PlannedRecovery recovery, string period, string actor, CancellationToken cancellationToken)
    {
        var book = await ledger.GetAsync(cancellationToken);
        var result = await book.CommitAsync(new TransferRequest
        {
            Id = recovery.LedgerTransferId,
            Debit = AccountRef.SellerPayable(recovery.SellerId, recovery.Currency),
            Credit = AccountRef.Refunds(recovery.Currency),
            Amount = recovery.Amount,
            Code = TransferCode.Correction,
            Reference = $"dispute-recovery:{period}",
        }, new LedgerCommandOptions { Actor = actor }, cancellationToken);
        if (!result.Succeeded && await book.GetTransferAsync(recovery.LedgerTransferId, cancellationToken) is null)
        {
            logger.LogError("Dispute recovery of {Amount} from {Seller} for {Period} was refused: {Rejection} {Detail}", recovery.Amount, recovery.SellerId, period, result.Rejection, result.Detail);
            return false;
        }

        return true;
    }

    internal static string DisputeStream(string disputeId) => $"dispute:{disputeId}";

    /// <summary>After release: the gross leaves clearing against <c>refunds</c>, and the platform's fee goes back into it.</summary>
    private static IReadOnlyList<TransferLine> Chargeback(Guid purchaseId, string disputeId, string currency, long gross, long fee) =>
        new List<TransferLine>
        {
            new()
            {
                TransferId = PurchasePostings.TransferId(purchaseId, $"dispute:{disputeId}:gross"), DebitAccount = AccountRef.Refunds(currency).Id,
                CreditAccount = AccountRef.PaymentClearing(currency).Id, Amount = gross, Code = "refund", Reference = $"dispute:{disputeId}",
            },
            new()
            {
                TransferId = PurchasePostings.TransferId(purchaseId, $"dispute:{disputeId}:fee"), DebitAccount = AccountRef.PlatformFees(currency).Id,
                CreditAccount = AccountRef.Refunds(currency).Id, Amount = fee, Code = "refund", Reference = $"dispute:{disputeId}",
            },
        }.Where(l => l.Amount > 0).ToList();

    private async Task AppendOnceAsync(string stream, Func<IReadOnlyList<object>, bool> done, object @event, CancellationToken cancellationToken)
    {
        while (true)
        {
            var (events, version) = await store.ReadAsync(stream, cancellationToken);
            if (done(events) || await store.TryAppendAsync(stream, "dispute", version, "settlement:dispute", cancellationToken, @event))
            {
                return;
            }
        }
    }
}
