using System.Security.Cryptography;
using System.Text;
using DataMarket.SettlementService.Application;

namespace DataMarket.SettlementService.Infrastructure;

public enum RailsOutcome
{
    Succeeded,
    /// <summary>
    /// Accepted but not finished: the customer must act (3-D Secure, <c>requires_action</c>) or the method confirms
    /// later (<c>processing</c>). The provider's webhook says how it ended.
    /// </summary>
    Pending,
    /// <summary>The provider said no for good (card declined, account closed): nothing was or will be moved.</summary>
    Declined,
    /// <summary>A 500, a timeout or a lost answer: the same call with the same key may be retried.</summary>
    Transient,
}

/// <param name="ClientSecret">For a pending charge: what the buyer's client needs to finish it (Stripe's PaymentIntent client secret).</param>
public sealed record RailsResult(RailsOutcome Outcome, string? ProviderId, string? Reason, string? ClientSecret = null)
{
    public static RailsResult Ok(string providerId) => new(RailsOutcome.Succeeded, providerId, null);
}

/// <summary>
/// A seller's payout account at the provider. <paramref name="Ready"/>: transfers to it are possible now; otherwise the
/// seller still has to finish onboarding at <paramref name="OnboardingUrl"/> and payouts wait.
/// </summary>
public sealed record DestinationResult(string AccountId, bool Ready, string? OnboardingUrl);

/// <summary>A transfer the provider holds, for reconciling a run against the ledger.</summary>
/// <param name="Amount">What was transferred (before any reversal).</param>
/// <param name="Reversed">How much of it has been reversed back to the platform since.</param>
public sealed record ProviderTransfer(string ProviderId, string IdempotencyKey, string Destination, long Amount, string Currency, string Group, long Reversed = 0);

/// <summary>
/// The payment provider. Every call carries an idempotency key derived from the business operation (purchase id,
/// period + seller), stored by the caller before the call: the same key and parameters give the first answer again,
/// the same key with other parameters is refused.
/// </summary>
public interface IPaymentRails
{
    string Name { get; }

    Task<RailsResult> ChargeAsync(string idempotencyKey, string buyerId, long amount, string currency, string group, CancellationToken cancellationToken);

    Task<RailsResult> RefundAsync(string idempotencyKey, string chargeId, long amount, string currency, CancellationToken cancellationToken);

    Task<RailsResult> TransferAsync(string idempotencyKey, string destination, long amount, string currency, string group, CancellationToken cancellationToken);

    /// <summary>
    /// Takes <paramref name="amount"/> of an earlier transfer back from the connected account into the platform's
    /// balance (Stripe: a transfer reversal). Refused (<see cref="RailsOutcome.Declined"/>) when more is asked than
    /// was transferred and not yet reversed.
    /// </summary>
    Task<RailsResult> ReverseTransferAsync(string idempotencyKey, string transferId, long amount, string currency, CancellationToken cancellationToken);

    /// <summary>Creates (once per seller: the key derives from the seller) the seller's payout account.</summary>
    Task<DestinationResult> CreateDestinationAsync(string sellerId, CancellationToken cancellationToken);

    /// <summary>The account's state now, with a fresh onboarding link when it is not ready yet.</summary>
    Task<DestinationResult> RefreshDestinationAsync(string sellerId, string accountId, CancellationToken cancellationToken);

    Task<IReadOnlyList<ProviderTransfer>> ListTransfersAsync(string group, CancellationToken cancellationToken);
}

/// <summary>
/// The embedded default: a simulated provider whose books are event streams in the settlement database, so a re-run
/// (another process, a restart) sees what it already did. <see cref="SandboxOptions.Behaviour"/> makes it decline,
/// fail (like a 500) or time out, for trying the failure paths.
/// </summary>
public sealed class SandboxRails(SettlementStore store, SettlementOptions options) : IPaymentRails
{
    private const string StreamType = "sandbox-operation";

    public string Name => "sandbox";

    public Task<RailsResult> ChargeAsync(string idempotencyKey, string buyerId, long amount, string currency, string group, CancellationToken cancellationToken) =>
        RecordAsync(idempotencyKey, "charge", amount, currency, buyerId, group, "ch_sandbox_", cancellationToken);

    public Task<RailsResult> RefundAsync(string idempotencyKey, string chargeId, long amount, string currency, CancellationToken cancellationToken) =>
        RecordAsync(idempotencyKey, "refund", amount, currency, chargeId, null, "re_sandbox_", cancellationToken);

    public Task<RailsResult> TransferAsync(string idempotencyKey, string destination, long amount, string currency, string group, CancellationToken cancellationToken) =>
        RecordAsync(idempotencyKey, "transfer", amount, currency, destination, group, "tr_sandbox_", cancellationToken);

    public async Task<RailsResult> ReverseTransferAsync(string idempotencyKey, string transferId, long amount, string currency, CancellationToken cancellationToken)
    {
        var stream = $"sandbox:reversal:{idempotencyKey}";
        var (existing, _) = await store.ReadAsync(stream, cancellationToken);
        if (!existing.OfType<SandboxOperationRecorded>().Any())
        {
            // A new key: what is left to reverse is the transfer less its earlier reversals (reversals are rare, so one
            // pass over the sandbox's books is affordable). A used key skips this and answers as it first did.
            long transferred = 0, reversed = 0;
            var found = false;
            await foreach (var recorded in store.ScanAsync(new HashSet<string> { nameof(SandboxOperationRecorded) }, cancellationToken))
            {
                switch (recorded)
                {
                    case SandboxOperationRecorded { Kind: "transfer" } t when t.ProviderId == transferId:
                        (found, transferred) = (true, t.Amount);
                        break;
                    case SandboxOperationRecorded { Kind: "reversal" } r when r.Destination == transferId:
                        reversed = checked(reversed + r.Amount);
                        break;
                }
            }

            if (!found || amount <= 0 || amount > transferred - reversed)
            {
                return new RailsResult(RailsOutcome.Declined, null, found
                    ? $"transfer {transferId} has {transferred - reversed} left to reverse, {amount} was asked (sandbox)"
                    : $"no transfer {transferId} (sandbox)");
            }
        }

        return await RecordAsync(idempotencyKey, "reversal", amount, currency, transferId, null, "trr_sandbox_", cancellationToken);
    }

    public Task<DestinationResult> CreateDestinationAsync(string sellerId, CancellationToken cancellationToken) =>
        Task.FromResult(new DestinationResult($"acct_sandbox_{Hash(sellerId)[..16]}", Ready: true, OnboardingUrl: null));

    public Task<DestinationResult> RefreshDestinationAsync(string sellerId, string accountId, CancellationToken cancellationToken) =>
        Task.FromResult(new DestinationResult(accountId, Ready: true, OnboardingUrl: null));

    public async Task<IReadOnlyList<ProviderTransfer>> ListTransfersAsync(string group, CancellationToken cancellationToken)
    {
        var transfers = new List<ProviderTransfer>();
        var reversed = new Dictionary<string, long>(StringComparer.Ordinal);
        await foreach (var recorded in store.ScanAsync(new HashSet<string> { nameof(SandboxOperationRecorded) }, cancellationToken))
        {
            if (recorded is SandboxOperationRecorded { Kind: "transfer" } op && op.Group == group)
            {
                transfers.Add(new ProviderTransfer(op.ProviderId, op.Key, op.Destination!, op.Amount, op.Currency, op.Group));
            }
            else if (recorded is SandboxOperationRecorded { Kind: "reversal" } reversal)
            {
                reversed[reversal.Destination!] = checked(reversed.GetValueOrDefault(reversal.Destination!) + reversal.Amount);
            }
        }

        return transfers.Select(t => t with { Reversed = reversed.GetValueOrDefault(t.ProviderId) }).ToList();
    }

    private async Task<RailsResult> RecordAsync(string key, string kind, long amount, string currency, string? counterparty, string? group, string prefix, CancellationToken cancellationToken)
    {
        var parameters = Hash($"{kind}|{amount}|{currency}|{counterparty}|{group}");
        var stream = $"sandbox:{kind}:{key}";
        var providerId = prefix + Hash(stream)[..24];
        if (options.Sandbox.Behaviour == SandboxBehaviour.Succeed
            && await store.TryAppendAsync(stream, StreamType, 0, "sandbox", cancellationToken,
                new SandboxOperationRecorded(key, kind, amount, currency, counterparty, group, parameters, providerId, DateTimeOffset.UtcNow)))
        {
            // A new key: recorded in one round trip (a settlement run makes one per seller). A used key falls through.
            return RailsResult.Ok(providerId);
        }

        var (existing, _) = await store.ReadAsync(stream, cancellationToken);
        if (existing.OfType<SandboxOperationRecorded>().FirstOrDefault() is { } first)
        {
            // Like Stripe: the first answer again for the same parameters, an idempotency error for others.
            return first.ParametersHash == parameters
                ? RailsResult.Ok(first.ProviderId)
                : new RailsResult(RailsOutcome.Declined, null, $"idempotency key '{key}' was used with other parameters");
        }

        switch (options.Sandbox.Behaviour)
        {
            case SandboxBehaviour.Decline:
                return new RailsResult(RailsOutcome.Declined, null, kind == "charge" ? "the card was declined (sandbox)" : $"the {kind} failed for good (sandbox)");
            case SandboxBehaviour.Fail:
                return new RailsResult(RailsOutcome.Transient, null, "the provider answered 500 (sandbox)");
            case SandboxBehaviour.TimeOut:
                return new RailsResult(RailsOutcome.Transient, null, "the provider did not answer in time (sandbox)");
        }

        var recorded = new SandboxOperationRecorded(key, kind, amount, currency, counterparty, group, parameters, providerId, DateTimeOffset.UtcNow);
        if (!await store.TryAppendAsync(stream, StreamType, 0, "sandbox", cancellationToken, recorded))
        {
            // Another caller with the same key won; answer what it got.
            return await RecordAsync(key, kind, amount, currency, counterparty, group, prefix, cancellationToken);
        }

        return RailsResult.Ok(providerId);
    }

    private static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}
