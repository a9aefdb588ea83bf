using System.Net;
using DataMarket.SettlementService.Application;
using Stripe;

namespace DataMarket.SettlementService.Infrastructure;

/// <summary>
/// Stripe through Stripe.net, "separate charges and transfers": a purchase is a PaymentIntent on the platform with a
/// transfer group, a payout is a Transfer to the seller's Express connected account in the period's transfer group,
/// a refund refunds the PaymentIntent, and what a seller owes from a dispute that its payouts cannot cover comes back
/// as a reversal of its earlier transfer. Every call carries the caller's idempotency key (derived from the purchase,
/// or the period and seller), which is also written into the object's metadata so reconciliation can match
/// Stripe's transfers to planned payouts by key. Stripe.net retries 5xx and network errors itself under the same key
/// (<see cref="StripeOptions.MaxNetworkRetries"/>); what still fails is reported transient and retried by the next
/// attempt, again under the same key.
/// </summary>
public sealed class StripeRails : IPaymentRails
{
    private const string KeyMetadata = "idempotency_key";
    private readonly StripeClient _client;
    private readonly StripeOptions _options;

    public StripeRails(SettlementOptions options)
    {
        _options = options.Stripe;
        if (string.IsNullOrWhiteSpace(_options.ApiKey))
        {
            throw new InvalidOperationException("Settlement:Rails is Stripe but Settlement:Stripe:ApiKey is not set (give it through the environment: Settlement__Stripe__ApiKey)");
        }

        var http = new SystemNetHttpClient(new HttpClient { Timeout = _options.Timeout }, _options.MaxNetworkRetries);
        _client = new StripeClient(new StripeClientOptions
        {
            ApiKey = _options.ApiKey,
            ApiBase = _options.ApiBase ?? StripeClient.DefaultApiBase,
            ConnectBase = _options.ApiBase ?? StripeClient.DefaultConnectBase,
            HttpClient = http,
        });
    }

    public string Name => "stripe";

    public Task<RailsResult> ChargeAsync(string idempotencyKey, string buyerId, long amount, string currency, string group, CancellationToken cancellationToken) =>
        CallAsync(async () =>
        {
            var intent = await _client.V1.PaymentIntents.CreateAsync(new PaymentIntentCreateOptions
            {
                Amount = amount,
                Currency = currency.ToLowerInvariant(),
                TransferGroup = group,
                PaymentMethod = _options.PaymentMethod,
                Confirm = true,
                // A server-side confirmation cannot follow a redirect; 3-D Secure still ends in requires_action.
                AutomaticPaymentMethods = new PaymentIntentAutomaticPaymentMethodsOptions { Enabled = true, AllowRedirects = "never" },
                Metadata = new Dictionary<string, string> { [KeyMetadata] = idempotencyKey, ["buyer_id"] = buyerId },
            }, Request(idempotencyKey), cancellationToken);
            return Charged(intent);
        }, cancellationToken);

    public Task<RailsResult> RefundAsync(string idempotencyKey, string chargeId, long amount, string currency, CancellationToken cancellationToken) =>
        CallAsync(async () =>
        {
            var refund = await _client.V1.Refunds.CreateAsync(new RefundCreateOptions
            {
                PaymentIntent = chargeId,
                Amount = amount,
                Metadata = new Dictionary<string, string> { [KeyMetadata] = idempotencyKey },
            }, Request(idempotencyKey), cancellationToken);
            // A pending refund is one Stripe has accepted and will carry out; only a failed or canceled one is not.
            return refund.Status is "failed" or "canceled"
                ? new RailsResult(RailsOutcome.Declined, refund.Id, $"the refund {refund.Status}: {refund.FailureReason}")
                : RailsResult.Ok(refund.Id);
        }, cancellationToken);

    public Task<RailsResult> TransferAsync(string idempotencyKey, string destination, long amount, string currency, string group, CancellationToken cancellationToken) =>
        CallAsync(async () =>
        {
            var transfer = await _client.V1.Transfers.CreateAsync(new TransferCreateOptions
            {
                Amount = amount,
                Currency = currency.ToLowerInvariant(),
                Destination = destination,
                TransferGroup = group,
                Metadata = new Dictionary<string, string> { [KeyMetadata] = idempotencyKey },
            }, Request(idempotencyKey), cancellationToken);
            return RailsResult.Ok(transfer.Id);
        }, cancellationToken);

    public Task<RailsResult> ReverseTransferAsync(string idempotencyKey, string transferId, long amount, string currency, CancellationToken cancellationToken) =>
        CallAsync(async () =>
        {
            var reversal = await new TransferReversalService(_client).CreateAsync(transferId, new TransferReversalCreateOptions
            {
                Amount = amount,
                Metadata = new Dictionary<string, string> { [KeyMetadata] = idempotencyKey },
            }, Request(idempotencyKey), cancellationToken);
            return RailsResult.Ok(reversal.Id);
        }, cancellationToken);

    public Task<DestinationResult> CreateDestinationAsync(string sellerId, CancellationToken cancellationToken) =>
        AccountCallAsync(async () => await DestinationAsync(await _client.V1.Accounts.CreateAsync(new AccountCreateOptions
        {
            Type = "express",
            Capabilities = new AccountCapabilitiesOptions { Transfers = new AccountCapabilitiesTransfersOptions { Requested = true } },
            Metadata = new Dictionary<string, string> { ["seller_id"] = sellerId },
        }, Request($"account:{sellerId}"), cancellationToken), cancellationToken));

    public Task<DestinationResult> RefreshDestinationAsync(string sellerId, string accountId, CancellationToken cancellationToken) =>
        AccountCallAsync(async () => await DestinationAsync(await _client.V1.Accounts.GetAsync(accountId, cancellationToken: cancellationToken), cancellationToken));

    private static async Task<DestinationResult> AccountCallAsync(Func<Task<DestinationResult>> call)
    {
        try
        {
            return await call();
        }
        catch (StripeException exception)
        {
            throw new SettlementException(SettlementErrorKind.Unavailable, "destination", $"Stripe did not set up the payout account ({(int)exception.HttpStatusCode}: {exception.StripeError?.Message ?? exception.Message}); try again");
        }
    }

    public async Task<IReadOnlyList<ProviderTransfer>> ListTransfersAsync(string group, CancellationToken cancellationToken)
    {
        var transfers = new List<ProviderTransfer>();
        await foreach (var t in _client.V1.Transfers.ListAutoPagingAsync(new TransferListOptions { TransferGroup = group, Limit = 100 }, cancellationToken: cancellationToken))
        {
            transfers.Add(new ProviderTransfer(
                t.Id, t.Metadata?.GetValueOrDefault(KeyMetadata) ?? string.Empty, t.DestinationId, t.Amount, t.Currency.ToUpperInvariant(), t.TransferGroup, t.AmountReversed));
        }

        return transfers;
    }

    /// <summary>Transfers to the account are possible once Stripe has activated its transfers capability.</summary>
    public static bool IsReady(Account account) => account.Capabilities?.Transfers == "active";

    private async Task<DestinationResult> DestinationAsync(Account account, CancellationToken cancellationToken)
    {
        if (IsReady(account))
        {
            return new DestinationResult(account.Id, true, null);
        }

        // Account links are short-lived and single-use: a new one each time the seller asks.
        var link = await _client.V1.AccountLinks.CreateAsync(new AccountLinkCreateOptions
        {
            Account = account.Id,
            Type = "account_onboarding",
            ReturnUrl = _options.OnboardingReturnUrl,
            RefreshUrl = _options.OnboardingRefreshUrl,
        }, cancellationToken: cancellationToken);
        return new DestinationResult(account.Id, false, link.Url);
    }

    private static RailsResult Charged(PaymentIntent intent) => intent.Status switch
    {
        "succeeded" => RailsResult.Ok(intent.Id),
        "requires_action" or "processing" or "requires_confirmation" or "requires_capture" =>
            new RailsResult(RailsOutcome.Pending, intent.Id, $"the payment is {intent.Status}", intent.ClientSecret),
        _ => new RailsResult(RailsOutcome.Declined, intent.Id, intent.LastPaymentError?.Message ?? $"the payment is {intent.Status}"),
    };

    private static RequestOptions Request(string idempotencyKey) => new() { IdempotencyKey = idempotencyKey };

    /// <summary>
    /// Stripe's answers as outcomes: a card or request error (4xx other than 409/429) is final, a 5xx, 409, 429, a
    /// timeout or a broken connection is transient (the same key may be sent again). The caller's own cancellation
    /// is not an outcome: it propagates, as a crash would.
    /// </summary>
    private static async Task<RailsResult> CallAsync(Func<Task<RailsResult>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call();
        }
        catch (StripeException exception) when (IsTransient(exception.HttpStatusCode))
        {
            return new RailsResult(RailsOutcome.Transient, null, $"Stripe answered {(int)exception.HttpStatusCode}: {exception.StripeError?.Message ?? exception.Message}");
        }
        catch (StripeException exception)
        {
            return new RailsResult(RailsOutcome.Declined, exception.StripeError?.PaymentIntent?.Id,
                $"Stripe refused ({exception.StripeError?.Type ?? "error"}{(exception.StripeError?.Code is { } code ? $", {code}" : "")}): {exception.StripeError?.Message ?? exception.Message}");
        }
        catch (Exception exception) when (!cancellationToken.IsCancellationRequested && exception is HttpRequestException or IOException or OperationCanceledException)
        {
            return new RailsResult(RailsOutcome.Transient, null, $"no answer from Stripe ({exception.GetType().Name}: {exception.Message})");
        }
    }

    private static bool IsTransient(HttpStatusCode status) =>
        (int)status >= 500 || status is HttpStatusCode.Conflict or HttpStatusCode.TooManyRequests || status == 0;
}
