using DataMarket.Settlement.Pricing;

namespace DataMarket.SettlementService.Application;

// The settlement service's own facts, one stream per quote, purchase, listing's terms, seller destination, purchase
// idempotency key, settlement run and sandbox provider operation. They stay inside this service (not contracts):
// nothing else consumes them.

public sealed record TermsPublished(Guid ListingId, string SellerId, long Reserve, long? ListPrice, string Licence, DateTimeOffset PublishedAt, IReadOnlyList<VersionPrice>? Versions = null);

public sealed record QuoteIssued(Guid QuoteId, Guid ValuationId, Quote Quote);

public sealed record PurchaseKeyClaimed(string BuyerId, string KeyHash, string BodyHash, Guid PurchaseId);

public sealed record PurchaseCompleted(
    Guid PurchaseId, Guid QuoteId, string BuyerId, string Currency, long Gross, long Fee, IReadOnlyList<PurchaseShare> Shares,
    IReadOnlyList<PurchasedListing> Listings, string ChargeReference, DateTimeOffset PurchasedAt, DateTimeOffset RefundableUntil, bool Released);

/// <summary>Written before the provider is asked: the charge's idempotency key, derived from the purchase.</summary>
public sealed record ChargeRequested(Guid PurchaseId, Guid QuoteId, string BuyerId, string IdempotencyKey, DateTimeOffset RequestedAt);

/// <summary>The provider accepted the charge but has not finished it (customer action, or a method that confirms later).</summary>
public sealed record PurchasePending(Guid PurchaseId, Guid QuoteId, string BuyerId, string Currency, long Gross, string ChargeReference, string? ClientSecret, DateTimeOffset RequestedAt);

/// <summary>The provider said a pending charge failed; nothing reached the ledger.</summary>
public sealed record PurchaseFailed(Guid PurchaseId, string Reason, DateTimeOffset FailedAt);

/// <summary>The buyer's bank took the payment back (a dispute) after the purchase completed.</summary>
/// <param name="HeldLeft">
/// For a dispute of part of the sale while the shares were held: each seller's share less what the dispute took,
/// which stays held and is released when the refund window ends. Null when the dispute took the whole sale back or
/// came after release.
/// </param>
/// <param name="Amount">What the dispute is for (null in events written before partial disputes while held were built).</param>
public sealed record PurchaseDisputed(Guid PurchaseId, string DisputeId, DateTimeOffset DisputedAt, long? Amount = null, IReadOnlyList<PurchaseShare>? HeldLeft = null);

/// <summary>
/// A dispute's effect, one stream per dispute: the gross left through payment clearing; while the shares were still
/// held they went back like a refund (<paramref name="Owed"/> empty), after release each seller owes its share,
/// netted from its next payouts.
/// </summary>
public sealed record DisputeOpened(string DisputeId, Guid PurchaseId, string Currency, long Amount, bool WasReleased, IReadOnlyList<PurchaseShare> Owed, DateTimeOffset OpenedAt);

/// <summary>A Stripe webhook event handled (its id: a redelivery is answered without handling it again).</summary>
public sealed record StripeEventReceived(string EventId, string Type, DateTimeOffset ReceivedAt);

public sealed record PurchaseShare(string SellerId, long Amount, double Weight);

/// <param name="Fraction">For a version purchase: the nested sample bought (download gives exactly its rows).</param>
public sealed record PurchasedListing(Guid ListingId, string SellerId, string Licence, decimal? Fraction = null);

/// <summary>Written before the provider is asked to refund: the refund's idempotency key, derived from the purchase.</summary>
public sealed record RefundRequested(Guid PurchaseId, string IdempotencyKey, DateTimeOffset RequestedAt);

public sealed record PurchaseRefunded(Guid PurchaseId, string RefundReference, DateTimeOffset RefundedAt);

public sealed record HoldsReleased(Guid PurchaseId, DateTimeOffset ReleasedAt);

/// <param name="AwaitingOnboarding">The seller still has to finish the provider's onboarding; payouts wait for <see cref="DestinationReady"/>.</param>
public sealed record DestinationRegistered(string SellerId, string Provider, string AccountId, DateTimeOffset RegisteredAt, bool AwaitingOnboarding = false);

/// <summary>The provider can transfer to the account now (Stripe: its transfers capability became active).</summary>
public sealed record DestinationReady(string SellerId, string AccountId, DateTimeOffset ReadyAt);

public sealed record RunStarted(string Period, DateTimeOffset StartedAt, string Node);

/// <summary>
/// The payouts a run makes, fixed once: a second node (or a re-run) pays this plan, never a new one. A large plan is
/// written as several of these in one append (the first carries the waiting sellers and the recoveries); the plan is
/// their payouts in order.
/// </summary>
/// <param name="Recoveries">What sellers owed from disputes, taken from their payable balance before the payout.</param>
/// <param name="Reversals">What sellers owed beyond their payable balance, taken back from their latest earlier transfers.</param>
public sealed record PayoutsPlanned(string Period, IReadOnlyList<PlannedPayout> Payouts, IReadOnlyList<string> WaitingForDestination, IReadOnlyList<PlannedRecovery>? Recoveries = null, IReadOnlyList<PlannedReversal>? Reversals = null);

/// <summary>
/// A reversal of (part of) a seller's transfer of an earlier period (<paramref name="TransferPeriod"/>), for what the
/// seller owes from disputes and its payable balance could not cover. The key derives from this period's recovery of
/// the seller's debt and the transfer (<c>reversal:{period}:{seller}:{currency}:{transfer}</c>), fixed in the plan
/// before the call; the ledger id derives from the key.
/// </summary>
public sealed record PlannedReversal(string SellerId, string Currency, long Amount, string TransferId, string TransferPeriod, string IdempotencyKey, Guid LedgerTransferId);

/// <summary>How a planned reversal ended: <c>reversed</c> (the money is back, the ledger recorded it) or <c>refused</c> (the debt stays).</summary>
public sealed record ReversalResolved(string SellerId, string Currency, long Amount, string TransferId, string IdempotencyKey, string Status, string? ProviderReversalId, string? Reason = null);

/// <summary>The reversals of a run resolved in one attempt, appended once (the first recorded outcome of a key stands).</summary>
public sealed record ReversalsResolved(string Period, IReadOnlyList<ReversalResolved> Reversals, DateTimeOffset ResolvedAt);

public sealed record PlannedRecovery(string SellerId, string Currency, long Amount, Guid LedgerTransferId);

public sealed record PlannedPayout(string SellerId, string Currency, long Amount, Guid LedgerTransferId, string IdempotencyKey, string Destination);

public sealed record PayoutSent(string SellerId, string Currency, string ProviderTransferId, DateTimeOffset SentAt);

public sealed record PayoutFailed(string SellerId, string Currency, string Reason, DateTimeOffset FailedAt);

/// <summary>A seller's statement for the period, written when its payout settled or failed.</summary>
/// <param name="Reason">Why a failed payout failed.</param>
public sealed record StatementWritten(string SellerId, string Period, string Currency, long Paid, string Status, string? ProviderTransferId, Guid LedgerTransferId, string? Reason = null);

/// <summary>
/// How a batch of the plan's payouts ended (one statement line each, paid or failed), appended once per batch so a
/// run's stream grows by one event per batch, not per seller. Earlier runs wrote <see cref="PayoutSent"/>,
/// <see cref="PayoutFailed"/> and <see cref="StatementWritten"/> one seller at a time; they are still read.
/// </summary>
public sealed record PayoutsResolved(string Period, IReadOnlyList<StatementWritten> Statements, DateTimeOffset ResolvedAt);

public sealed record RunCompleted(string Period, Reconciliation Reconciliation, DateTimeOffset CompletedAt);

public sealed record Reconciliation(long LedgerPayouts, long LedgerTotal, long ProviderTransfers, long ProviderTotal, IReadOnlyList<string> Mismatches)
{
    public bool Clean => Mismatches.Count == 0;
}

/// <summary>The sandbox provider's books: one stream per idempotency key.</summary>
public sealed record SandboxOperationRecorded(string Key, string Kind, long Amount, string Currency, string? Destination, string? Group, string ParametersHash, string ProviderId, DateTimeOffset At);
