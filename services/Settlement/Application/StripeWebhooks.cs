using DataMarket.SettlementService.Infrastructure;
using Microsoft.Extensions.Logging;
using Stripe;

namespace DataMarket.SettlementService.Application;

/// <summary>What a webhook delivery did.</summary>
public sealed record WebhookReceipt(string EventId, string Type, string Outcome);

/// <summary>
/// Stripe's webhooks: accepted only when the signature verifies against the endpoint's secret, handled once per event
/// id (a redelivery is answered "duplicate"), and each handler is itself idempotent, so events may arrive twice or in
/// any order. <c>payment_intent.succeeded</c> completes a pending purchase, <c>payment_intent.payment_failed</c> and
/// <c>payment_intent.canceled</c> fail one that has not completed, <c>account.updated</c> marks a seller's account ready
/// for payouts, <c>charge.dispute.created</c> records a dispute.
/// </summary>
public sealed class StripeWebhooks(
    SettlementStore store, MarketService market, DisputeBook disputes, SettlementOptions options, TimeProvider time, ILogger<StripeWebhooks> logger)
{
    public async Task<WebhookReceipt> HandleAsync(string json, string? signature, CancellationToken cancellationToken)
    {
        if (options.Rails != RailsKind.Stripe || string.IsNullOrEmpty(options.Stripe.WebhookSecret))
        {
            throw SettlementException.NotFound("webhook", "a Stripe webhook endpoint (Settlement:Rails is not Stripe, or Settlement:Stripe:WebhookSecret is unset)");
        }

        Event stripeEvent;
        try
        {
            // The library's pinned API version may differ from the account's; the fields read here exist in both.
            stripeEvent = EventUtility.ConstructEvent(json, signature ?? string.Empty, options.Stripe.WebhookSecret, throwOnApiVersionMismatch: false);
        }
        catch (StripeException exception)
        {
            throw new SettlementException(SettlementErrorKind.Invalid, "Stripe-Signature", $"the webhook's signature does not verify: {exception.Message}");
        }

        var stream = $"stripe-event:{stripeEvent.Id}";
        var (seen, _) = await store.ReadAsync(stream, cancellationToken);
        if (seen.Count > 0)
        {
            return new WebhookReceipt(stripeEvent.Id, stripeEvent.Type, "duplicate");
        }

        var outcome = await DispatchAsync(stripeEvent, cancellationToken);
        // Written after handling: a crash in between means Stripe redelivers and the idempotent handler runs again.
        await store.TryAppendAsync(stream, "stripe-event", 0, "stripe", cancellationToken, new StripeEventReceived(stripeEvent.Id, stripeEvent.Type, time.GetUtcNow()));
        return new WebhookReceipt(stripeEvent.Id, stripeEvent.Type, outcome);
    }

    private async Task<string> DispatchAsync(Event stripeEvent, CancellationToken cancellationToken)
    {
        switch (stripeEvent.Type, stripeEvent.Data?.Object)
        {
            case ("payment_intent.succeeded", PaymentIntent intent):
                return PurchaseOf(intent) is { } succeeded
                    ? await market.ConfirmChargeAsync(succeeded, intent.Id, cancellationToken) ? "purchase completed" : "already completed"
                    : "not a purchase";
            case ("payment_intent.payment_failed" or "payment_intent.canceled", PaymentIntent intent):
                return PurchaseOf(intent) is { } failed
                    ? await market.FailChargeAsync(failed, intent.LastPaymentError?.Message ?? stripeEvent.Type, cancellationToken) ? "purchase failed" : "ignored (not pending)"
                    : "not a purchase";
            case ("account.updated", Account account):
                return StripeRails.IsReady(account) && account.Metadata?.GetValueOrDefault("seller_id") is { Length: > 0 } seller
                    ? await market.MarkDestinationReadyAsync(seller, account.Id, cancellationToken) ? "destination ready" : "no change"
                    : "not ready";
            case ("charge.dispute.created", Dispute dispute):
                var purchase = await PurchaseByChargeAsync(dispute.PaymentIntentId, cancellationToken);
                if (purchase is null)
                {
                    logger.LogWarning("Dispute {Dispute} names payment {Payment}, which pays for no purchase", dispute.Id, dispute.PaymentIntentId);
                    return "not a purchase";
                }

                return await disputes.OpenAsync(dispute.Id, purchase.Value, dispute.Amount, cancellationToken) is null ? "nothing to take back" : "dispute recorded";
            default:
                return "ignored";
        }
    }

    /// <summary>A purchase's PaymentIntent carries the transfer group <c>purchase:{id}</c>.</summary>
    private static Guid? PurchaseOf(PaymentIntent intent) =>
        intent.TransferGroup is { } group && group.StartsWith("purchase:", StringComparison.Ordinal) && Guid.TryParseExact(group["purchase:".Length..], "N", out var id) ? id : null;

    private async Task<Guid?> PurchaseByChargeAsync(string? paymentIntentId, CancellationToken cancellationToken)
    {
        if (paymentIntentId is null)
        {
            return null;
        }

        // Disputes are rare: a scan of purchases and pending charges beats keeping another index.
        await foreach (var recorded in store.ScanAsync(new HashSet<string> { nameof(PurchaseCompleted) }, cancellationToken))
        {
            if (recorded is PurchaseCompleted c && c.ChargeReference == paymentIntentId)
            {
                return c.PurchaseId;
            }
        }

        return null;
    }
}
