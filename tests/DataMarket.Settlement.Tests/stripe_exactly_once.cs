using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using DataMarket.ServiceDefaults.Security;
using DataMarket.SettlementService.Application;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Settlement.Tests;

/// <summary>
/// The Stripe rails against a stateful fake Stripe: provider failures, a crash after Stripe moved the money and a
/// restart, pending charges finished by duplicate and out-of-order webhooks, onboarding, and a dispute after payout.
/// Each ends with one transfer per seller per period at the fake Stripe and in the ledger, a clean reconciliation and
/// a ledger that verifies.
/// </summary>
public sealed class stripe_exactly_once : IAsyncLifetime
{
    private const string Period = "2026-11";
    private FakeStripe _stripe = null!;
    private SettlementSite _site = null!;

    public async Task InitializeAsync()
    {
        _stripe = await FakeStripe.StartAsync();
        _site = await StartSiteAsync();
    }

    public async Task DisposeAsync()
    {
        await _site.DisposeAsync();
        await _stripe.DisposeAsync();
    }

    [Fact]
    public async Task a_provider_500_a_lost_answer_and_a_timeout_are_each_paid_once_by_the_next_run()
    {
        var shares = await SellAsync(("seller-a", 0.3), ("seller-b", 0.2), ("seller-c", 0.1));
        await RegisterAsync("seller-a", "seller-b", "seller-c");
        // Payouts go in seller order: a gets a 500 (nothing done), b's transfer happens but the connection breaks before the answer, c's happens and the gateway times out (504).
        _stripe.Inject("/v1/transfers", FakeFault.ServerError);
        _stripe.Inject("/v1/transfers", FakeFault.LoseAnswer);
        _stripe.Inject("/v1/transfers", FakeFault.Timeout);
        var runner = _site.Services.GetRequiredService<SettlementRunner>();

        var first = await runner.RunAsync(Period, "test", CancellationToken.None);
        Assert.Equal("in_progress", first.Status);
        Assert.All(first.Payouts, p => Assert.Equal("pending", p.Status));
        Assert.Equal(2, _stripe.TransfersIn(Period).Count);

        var second = await runner.RunAsync(Period, "test", CancellationToken.None);
        await AssertPaidOnceAsync(second, shares);
        Assert.Equal(6, _stripe.Requests["POST /v1/transfers"]);
    }

    [Fact]
    public async Task a_transfer_stripe_carries_out_but_answers_after_the_client_timed_out_is_paid_once_by_the_retry_under_the_same_key()
    {
        // A site whose Stripe client gives up after 10 s (the fake holds one answer back until it does).
        await _site.DisposeAsync();
        _site = await StartSiteAsync(extra: new Dictionary<string, string?> { ["Settlement:Stripe:Timeout"] = "00:00:10" });
        var shares = await SellAsync(("seller-a", 0.3), ("seller-b", 0.2), ("seller-c", 0.1));
        await RegisterAsync("seller-a", "seller-b", "seller-c");
        _stripe.Inject("/v1/transfers", FakeFault.Stall);
        var runner = _site.Services.GetRequiredService<SettlementRunner>();

        var first = await runner.RunAsync(Period, "test", CancellationToken.None);
        await _stripe.ClientGaveUp.WaitAsync(TimeSpan.FromMinutes(2));
        var stalled = Assert.Single(_stripe.AbandonedByClient);
        // Stripe moved the money; the client never heard: the payout stays reserved, not paid and not failed.
        Assert.Equal("in_progress", first.Status);
        Assert.Equal("pending", first.Payouts.Single(p => p.IdempotencyKey == stalled).Status);
        Assert.Single(_stripe.TransfersIn(Period), t => (string?)t["metadata"]!["idempotency_key"] == stalled);

        // The next run sends it again under the same key; Stripe answers the first transfer, and nothing moves twice.
        var run = await runner.RunAsync(Period, "test", CancellationToken.None);
        for (var retry = 0; retry < 2 && run.Status != "completed"; retry++)
        {
            // Only where this machine was too slow for another call's 10 s as well: those are retried under their keys too.
            run = await runner.RunAsync(Period, "test", CancellationToken.None);
        }

        await AssertPaidOnceAsync(run, shares);
        Assert.True(_stripe.RequestsByKey[stalled] >= 2);
        Assert.Equal(run.Payouts.Single(p => p.IdempotencyKey == stalled).ProviderTransferId,
            (string?)_stripe.TransfersIn(Period).Single(t => (string?)t["metadata"]!["idempotency_key"] == stalled)["id"]);
    }

    [Fact]
    public async Task a_batch_with_a_refused_transfer_voids_that_payout_and_posts_the_others_in_the_same_call()
    {
        var shares = await SellAsync(("seller-a", 0.3), ("seller-b", 0.2), ("seller-c", 0.1));
        await RegisterAsync("seller-a", "seller-b", "seller-c");
        // One transfer at a time, in seller order: Stripe refuses a's for good, b's and c's go through; the batch then
        // voids a's pending payout and posts b's and c's in one ledger call.
        _site.Options.PayoutConcurrency = 1;
        _stripe.Inject("/v1/transfers", FakeFault.Decline);
        var run = await _site.Services.GetRequiredService<SettlementRunner>().RunAsync(Period, "test", CancellationToken.None);

        Assert.Equal("completed", run.Status);
        Assert.True(run.Reconciliation!.Clean, string.Join("; ", run.Reconciliation.Mismatches));
        Assert.Equal(["failed", "paid", "paid"], run.Payouts.Select(p => p.Status));
        var ledger = await _site.LedgerAsync();
        var states = new List<DataMarket.Ledger.Model.TransferState>();
        foreach (var payout in run.Payouts)
        {
            states.Add((await ledger.GetTransferAsync(payout.LedgerTransferId))!.State);
        }

        Assert.Equal([DataMarket.Ledger.Model.TransferState.PendingVoided, DataMarket.Ledger.Model.TransferState.PendingPosted, DataMarket.Ledger.Model.TransferState.PendingPosted], states);
        Assert.Equal(["seller-b", "seller-c"], _stripe.TransfersIn(Period).Select(t => run.Payouts.Single(p => p.IdempotencyKey == (string?)t["metadata"]!["idempotency_key"]).SellerId).Order(StringComparer.Ordinal));
        // a's share stays payable for a later period.
        var payable = Assert.Single(await ledger.GetBalancesAsync(DataMarket.Ledger.Model.AccountRef.SellerPayable("seller-a", _site.Options.Currency).Id));
        Assert.Equal((shares["seller-a"], 0L), (payable.AvailableBalance, payable.DebitsPending));
        Assert.True(await _site.LedgerVerifiesAsync());
    }

    [Fact]
    public async Task a_crash_after_stripe_paid_and_a_restart_pay_each_seller_once()
    {
        var shares = await SellAsync(("seller-a", 0.3), ("seller-b", 0.2), ("seller-c", 0.1));
        await RegisterAsync("seller-a", "seller-b", "seller-c");
        using var crash = new CancellationTokenSource();
        // One seller at a time, so the crash falls exactly after the second transfer (with several in flight a third could be under way).
        _site.Options.PayoutConcurrency = 1;
        var transfers = 0;
        // The process dies right after Stripe carried out the second transfer, before the ledger heard of it.
        _stripe.AfterProcessed = (path, _) =>
        {
            if (path == "/v1/transfers" && Interlocked.Increment(ref transfers) == 2)
            {
                crash.Cancel();
            }
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _site.Services.GetRequiredService<SettlementRunner>().RunAsync(Period, "node-1", crash.Token));
        _stripe.AfterProcessed = null;
        Assert.Equal(2, _stripe.TransfersIn(Period).Count);

        _site.KeepFiles = true;
        var directory = _site.Directory;
        await _site.DisposeAsync();
        _site = await StartSiteAsync(directory);
        var run = await _site.Services.GetRequiredService<SettlementRunner>().RunAsync(Period, "node-1-restarted", CancellationToken.None);
        await AssertPaidOnceAsync(run, shares);
    }

    [Fact]
    public async Task a_pending_charge_completes_once_whatever_the_order_and_repetition_of_its_webhooks()
    {
        _stripe.ChargeStatus = "requires_action";
        await PublishAsync("seller-a", "seller-b");
        var late = await PurchaseOverHttpAsync("buyer-1", ("seller-a", 0.3), ("seller-b", 0.1));
        var early = await PurchaseOverHttpAsync("buyer-2", ("seller-a", 0.2), ("seller-b", 0.2));
        Assert.All(new[] { late, early }, p => Assert.Equal("pending", p.GetProperty("status").GetString()));
        Assert.Empty(await _site.BalancesAsync());
        var lateIntent = _stripe.PaymentIntents.Values.Single(i => (string?)i["transfer_group"] == $"purchase:{late.GetProperty("id").GetGuid():N}");
        var earlyIntent = _stripe.PaymentIntents.Values.Single(i => (string?)i["transfer_group"] == $"purchase:{early.GetProperty("id").GetGuid():N}");
        Assert.Equal((string?)lateIntent["client_secret"], late.GetProperty("clientSecret").GetString());

        // A forged or tampered delivery is refused and changes nothing.
        var (json, signature) = _stripe.CompleteAction((string)lateIntent["id"]!);
        Assert.Equal(HttpStatusCode.BadRequest, (await PostWebhookAsync(json, FakeStripe.Sign(json, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), "whsec_wrong"))).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await PostWebhookAsync(json.Replace("\"amount\":", "\"amount\": ", StringComparison.Ordinal), signature)).StatusCode);
        Assert.Empty(await _site.BalancesAsync());

        // Purchase 1: success, the same event again, then a stale failure notice of an earlier attempt.
        var failedEarlier = _stripe.FailedAttempt((string)lateIntent["id"]!);
        Assert.Equal("purchase completed", await WebhookOutcomeAsync(json, signature));
        Assert.Equal("duplicate", await WebhookOutcomeAsync(json, signature));
        Assert.Equal("ignored (not pending)", await WebhookOutcomeAsync(failedEarlier.Json, failedEarlier.Signature));
        // Purchase 2: the failure notice first, then the success of the retried attempt.
        var failedFirst = _stripe.FailedAttempt((string)earlyIntent["id"]!);
        Assert.Equal("purchase failed", await WebhookOutcomeAsync(failedFirst.Json, failedFirst.Signature));
        var succeeded = _stripe.CompleteAction((string)earlyIntent["id"]!);
        Assert.Equal("purchase completed", await WebhookOutcomeAsync(succeeded.Json, succeeded.Signature));
        var redelivered = _stripe.Event("payment_intent.succeeded", _stripe.PaymentIntents[(string)earlyIntent["id"]!]);
        Assert.Equal("already completed", await WebhookOutcomeAsync(redelivered.Json, redelivered.Signature));

        foreach (var purchase in new[] { late, early })
        {
            var view = await (await _site.SendAsync(HttpMethod.Get, $"/api/purchases/{purchase.GetProperty("id").GetGuid()}", purchase.GetProperty("buyerId").GetString()!, Roles.Buyer)).Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal("released", view.GetProperty("status").GetString());
        }

        var balances = await _site.BalancesAsync();
        Assert.Equal((long)lateIntent["amount"]! + (long)earlyIntent["amount"]!, -balances.Single(b => b.AccountId == "payment_clearing:platform:USD").PostedBalance);
        await RegisterAsync("seller-a", "seller-b");
        var expected = balances.Where(b => b.AccountId.StartsWith("seller_payable:", StringComparison.Ordinal)).ToDictionary(b => b.Owner, b => b.PostedBalance);
        var run = await _site.Services.GetRequiredService<SettlementRunner>().RunAsync(Period, "test", CancellationToken.None);
        await AssertPaidOnceAsync(run, expected);
    }

    [Fact]
    public async Task payouts_wait_for_onboarding_to_finish()
    {
        _stripe.AutoOnboard = false;
        var shares = await SellAsync(("seller-a", 0.3));
        var destination = await RegisterOverHttpAsync("seller-a");
        Assert.False(destination.GetProperty("ready").GetBoolean());
        Assert.StartsWith("https://connect.stripe.com/setup/", destination.GetProperty("onboardingUrl").GetString());
        var runner = _site.Services.GetRequiredService<SettlementRunner>();
        var waiting = await runner.RunAsync("2026-10", "test", CancellationToken.None);
        Assert.Empty(waiting.Payouts);
        Assert.Equal(["seller-a"], waiting.WaitingForDestination);

        var (json, signature) = _stripe.Onboard(destination.GetProperty("accountId").GetString()!);
        Assert.Equal("destination ready", await WebhookOutcomeAsync(json, signature));
        Assert.True((await RegisterOverHttpAsync("seller-a")).GetProperty("ready").GetBoolean());
        await AssertPaidOnceAsync(await runner.RunAsync(Period, "test", CancellationToken.None), shares);
    }

    [Fact]
    public async Task a_dispute_for_part_of_a_paid_out_sale_takes_that_part_pro_rata_from_the_fee_and_each_share()
    {
        var shares = await SellAsync(("seller-a", 0.3), ("seller-b", 0.1));
        var intent = _stripe.PaymentIntents.Values.Single();
        var gross = (long)intent["amount"]!;
        await RegisterAsync("seller-a", "seller-b");
        var runner = _site.Services.GetRequiredService<SettlementRunner>();
        await AssertPaidOnceAsync(await runner.RunAsync("2026-10", "test", CancellationToken.None), shares, "2026-10");
        var fees = (await _site.BalancesAsync()).Single(b => b.AccountId == "platform_fees:platform:USD").PostedBalance;

        var amount = gross / 3;
        var (json, signature) = _stripe.Dispute((string)intent["id"]!, amount);
        Assert.Equal("dispute recorded", await WebhookOutcomeAsync(json, signature));
        Assert.Equal("duplicate", await WebhookOutcomeAsync(json, signature));

        var owed = await _site.Services.GetRequiredService<DisputeBook>().OwedAsync(CancellationToken.None);
        var balances = await _site.BalancesAsync();
        var feeTaken = fees - balances.Single(b => b.AccountId == "platform_fees:platform:USD").PostedBalance;
        // The sellers owe what the bank took less the fee's part, and the refunds account holds exactly that debt.
        Assert.Equal(amount - feeTaken, owed.Values.Sum());
        Assert.Equal(-(amount - feeTaken), balances.Single(b => b.AccountId == "refunds:platform:USD").PostedBalance);
        foreach (var (seller, share) in shares)
        {
            // Within a cent of amount x share / gross, in exact integers.
            var part = owed.GetValueOrDefault((seller, "USD"));
            Assert.True(Math.Abs((decimal)part * gross - (decimal)amount * share) < gross, $"{seller} owes {part} of {share}");
        }

        Assert.True(Math.Abs((decimal)feeTaken * gross - (decimal)amount * (gross - shares.Values.Sum())) < gross);
        Assert.True(await _site.LedgerVerifiesAsync());
    }

    [Fact]
    public async Task a_dispute_after_payout_is_netted_from_the_next_payout_and_the_shortfall_reversed_from_the_earlier_transfer_once()
    {
        var (first, second) = await DisputeAfterPayoutAsync();
        var shortfall = first["seller-b"] - second["seller-b"];
        var transferB = _stripe.TransfersIn("2026-10").Single(t => (string?)t["metadata"]!["idempotency_key"] == "payout:2026-10:seller-b:USD");
        var runner = _site.Services.GetRequiredService<SettlementRunner>();
        var run = await runner.RunAsync(Period, "test", CancellationToken.None);

        // a is paid what its new share leaves after its debt; b's new share nets part of its debt, the rest comes back from its October transfer.
        var paidA = Assert.Single(run.Payouts);
        Assert.Equal(("seller-a", second["seller-a"] - first["seller-a"]), (paidA.SellerId, paidA.Amount));
        var reversal = Assert.Single(run.Reversals!);
        Assert.Equal(("seller-b", shortfall, (string)transferB["id"]!, "2026-10", "reversed"), (reversal.SellerId, reversal.Amount, reversal.TransferId, reversal.TransferPeriod, reversal.Status));
        Assert.Equal("reversal:2026-11:seller-b:USD:" + (string)transferB["id"]!, reversal.IdempotencyKey);
        var atStripe = Assert.Single(_stripe.Reversals);
        Assert.Equal((shortfall, reversal.IdempotencyKey, reversal.ProviderReversalId), ((long)atStripe["amount"]!, (string?)atStripe["metadata"]!["idempotency_key"], (string?)atStripe["id"]));
        Assert.Equal(shortfall, (long)transferB["amount_reversed"]!);
        Assert.Equal(second["seller-b"], _stripe.AccountBalances[(string)transferB["destination"]!]);
        Assert.True(run.Reconciliation!.Clean, string.Join("; ", run.Reconciliation.Mismatches));
        await AssertDebtsSettledAsync();
        var statement = await runner.StatementAsync("seller-b", Period, CancellationToken.None);
        Assert.Equal(reversal, Assert.Single(statement.Reversals!));

        // The dispute's webhook again, the same period again and the next period: no second reversal.
        var (json, signature) = _stripe.Event("charge.dispute.created", new System.Text.Json.Nodes.JsonObject
        {
            ["id"] = _disputeId, ["object"] = "dispute", ["amount"] = first.Values.Sum() + _firstFee, ["currency"] = "usd",
            ["payment_intent"] = _disputedIntent, ["status"] = "needs_response", ["reason"] = "fraudulent", ["created"] = 0, ["livemode"] = false,
            ["metadata"] = new System.Text.Json.Nodes.JsonObject(),
        });
        Assert.Equal("dispute recorded", await WebhookOutcomeAsync(json, signature));
        Assert.Equal(run, await runner.RunAsync(Period, "test", CancellationToken.None), new RunViewComparer());
        var next = await runner.RunAsync("2026-12", "test", CancellationToken.None);
        Assert.Empty(next.Reversals!);
        Assert.True(next.Reconciliation!.Clean, string.Join("; ", next.Reconciliation.Mismatches));
        Assert.Single(_stripe.Reversals);
        Assert.Equal(1, _stripe.Requests[$"POST /v1/transfers/{(string)transferB["id"]!}/reversals"]);
        await AssertDebtsSettledAsync();
    }

    [Fact]
    public async Task a_reversal_the_provider_refuses_leaves_the_debt_recorded_and_the_next_run_tries_again()
    {
        var (first, second) = await DisputeAfterPayoutAsync();
        var shortfall = first["seller-b"] - second["seller-b"];
        var transferB = (string)_stripe.TransfersIn("2026-10").Single(t => (string?)t["metadata"]!["idempotency_key"] == "payout:2026-10:seller-b:USD")["id"]!;
        _stripe.Inject($"/v1/transfers/{transferB}/reversals", FakeFault.Decline);
        var runner = _site.Services.GetRequiredService<SettlementRunner>();
        var disputes = _site.Services.GetRequiredService<DisputeBook>();

        var refused = await runner.RunAsync(Period, "test", CancellationToken.None);
        Assert.Equal("completed", refused.Status);
        var reversal = Assert.Single(refused.Reversals!);
        Assert.Equal(("refused", shortfall), (reversal.Status, reversal.Amount));
        Assert.Contains("cannot receive transfers", reversal.Reason, StringComparison.Ordinal);
        Assert.True(refused.Reconciliation!.Clean, string.Join("; ", refused.Reconciliation.Mismatches));
        Assert.Empty(_stripe.Reversals);
        Assert.Equal(shortfall, (await disputes.OwedAsync(CancellationToken.None))[("seller-b", "USD")]);
        Assert.Equal(-shortfall, (await _site.BalancesAsync()).Single(b => b.AccountId == "refunds:platform:USD").PostedBalance);
        Assert.True(await _site.LedgerVerifiesAsync());

        // The next period nets again (nothing payable) and reverses under its own key.
        var retried = await runner.RunAsync("2026-12", "test", CancellationToken.None);
        Assert.Equal(("reversed", shortfall, "reversal:2026-12:seller-b:USD:" + transferB), (retried.Reversals![0].Status, retried.Reversals[0].Amount, retried.Reversals[0].IdempotencyKey));
        Assert.True(retried.Reconciliation!.Clean, string.Join("; ", retried.Reconciliation.Mismatches));
        Assert.Single(_stripe.Reversals);
        await AssertDebtsSettledAsync();
    }

    [Fact]
    public async Task a_reversal_carried_out_whose_answer_was_lost_is_recorded_once_by_the_next_attempt_under_the_same_key()
    {
        var (first, second) = await DisputeAfterPayoutAsync();
        var transferB = (string)_stripe.TransfersIn("2026-10").Single(t => (string?)t["metadata"]!["idempotency_key"] == "payout:2026-10:seller-b:USD")["id"]!;
        _stripe.Inject($"/v1/transfers/{transferB}/reversals", FakeFault.LoseAnswer);
        var runner = _site.Services.GetRequiredService<SettlementRunner>();

        // Stripe reversed, the run never heard: the reversal stays pending and the run unfinished (the debt is not owed twice meanwhile).
        var lost = await runner.RunAsync(Period, "test", CancellationToken.None);
        Assert.Equal(("in_progress", "pending"), (lost.Status, Assert.Single(lost.Reversals!).Status));
        Assert.Single(_stripe.Reversals);
        Assert.Empty(await _site.Services.GetRequiredService<DisputeBook>().OwedAsync(CancellationToken.None));

        var resumed = await runner.RunAsync(Period, "test", CancellationToken.None);
        Assert.Equal(("completed", "reversed", first["seller-b"] - second["seller-b"]), (resumed.Status, resumed.Reversals![0].Status, resumed.Reversals[0].Amount));
        Assert.True(resumed.Reconciliation!.Clean, string.Join("; ", resumed.Reconciliation.Mismatches));
        Assert.Single(_stripe.Reversals);
        Assert.Equal(2, _stripe.RequestsByKey[resumed.Reversals[0].IdempotencyKey]);
        Assert.Equal((string?)_stripe.Reversals[0]["id"], resumed.Reversals[0].ProviderReversalId);
        await AssertDebtsSettledAsync();
    }

    private string _disputeId = string.Empty;
    private string _disputedIntent = string.Empty;
    private long _firstFee;

    /// <summary>
    /// A sale to a and b paid out in October, then wholly disputed; a second sale pays a more than it owes and b less
    /// (b's shortfall is what a reversal must bring back). Returns each sale's shares.
    /// </summary>
    private async Task<(Dictionary<string, long> First, Dictionary<string, long> Second)> DisputeAfterPayoutAsync()
    {
        var first = await SellAsync(("seller-a", 0.3), ("seller-b", 0.1));
        var disputedIntent = _stripe.PaymentIntents.Values.Single();
        _disputedIntent = (string)disputedIntent["id"]!;
        _firstFee = (long)disputedIntent["amount"]! - first.Values.Sum();
        await RegisterAsync("seller-a", "seller-b");
        var runner = _site.Services.GetRequiredService<SettlementRunner>();
        await AssertPaidOnceAsync(await runner.RunAsync("2026-10", "test", CancellationToken.None), first, "2026-10");

        var (json, signature) = _stripe.Dispute(_disputedIntent);
        _disputeId = (string)System.Text.Json.Nodes.JsonNode.Parse(json)!["data"]!["object"]!["id"]!;
        Assert.Equal("dispute recorded", await WebhookOutcomeAsync(json, signature));
        Assert.Equal("duplicate", await WebhookOutcomeAsync(json, signature));
        Assert.Equal(first.Values.Sum(), -(await _site.BalancesAsync()).Single(b => b.AccountId == "refunds:platform:USD").PostedBalance);
        var second = await SellAsync(("seller-a", 0.9), ("seller-b", 0.01));
        Assert.True(second["seller-a"] > first["seller-a"] && second["seller-b"] < first["seller-b"]);
        return (first, second);
    }

    /// <summary>Nobody owes anything, refunds and the sellers' payables are back at zero, and the ledger verifies.</summary>
    private async Task AssertDebtsSettledAsync()
    {
        Assert.Empty(await _site.Services.GetRequiredService<DisputeBook>().OwedAsync(CancellationToken.None));
        var balances = await _site.BalancesAsync();
        Assert.Equal(0, balances.Single(b => b.AccountId == "refunds:platform:USD").PostedBalance);
        Assert.All(balances.Where(b => b.AccountId.StartsWith("seller_", StringComparison.Ordinal)), b => Assert.Equal(0, b.PostedBalance));
        // The platform's clearing balance is what Stripe holds for it: what came in, less what left.
        Assert.Equal(_stripe.PlatformBalance, -balances.Single(b => b.AccountId == "payment_clearing:platform:USD").PostedBalance);
        Assert.True(await _site.LedgerVerifiesAsync());
    }

    /// <summary>Two views of a run are the same run: same payouts, reversals and reconciliation (lists compared by content).</summary>
    private sealed class RunViewComparer : IEqualityComparer<SettlementRunView>
    {
        public bool Equals(SettlementRunView? x, SettlementRunView? y) =>
            x is not null && y is not null && x.Status == y.Status && x.Payouts.SequenceEqual(y.Payouts) && x.Reversals!.SequenceEqual(y.Reversals!)
            && x.Reconciliation!.Mismatches.SequenceEqual(y.Reconciliation!.Mismatches) && x.Reconciliation.ProviderTotal == y.Reconciliation.ProviderTotal;

        public int GetHashCode(SettlementRunView obj) => obj.Period.GetHashCode(StringComparison.Ordinal);
    }

    [Fact]
    public async Task a_refund_inside_the_window_refunds_the_payment_intent_once()
    {
        _site.Options.RefundWindow = TimeSpan.FromDays(14);
        var purchase = await SellAsync(("seller-a", 0.3), ("seller-b", 0.1));
        var buyer = _lastBuyer;
        var first = await _site.SendAsync(HttpMethod.Post, $"/api/purchases/{_lastPurchase}/refund", buyer, Roles.Buyer);
        var again = await _site.SendAsync(HttpMethod.Post, $"/api/purchases/{_lastPurchase}/refund", buyer, Roles.Buyer);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        var refund = Assert.Single(_stripe.Refunds);
        Assert.Equal((string?)_stripe.PaymentIntents.Values.Single()["id"], (string?)refund["payment_intent"]);
        Assert.Equal($"refund:{_lastPurchase:N}", (string?)refund["metadata"]!["idempotency_key"]);
        Assert.Equal(0, _stripe.PlatformBalance);
        Assert.All(await _site.BalancesAsync(), b => Assert.Equal(0, b.PostedBalance));
        Assert.Equal(2, purchase.Count);
        Assert.True(await _site.LedgerVerifiesAsync());
    }

    private Task<SettlementSite> StartSiteAsync(string? directory = null, IDictionary<string, string?>? extra = null)
    {
        var settings = _stripe.Settings();
        settings["Settlement:RefundWindow"] = "00:00:00";
        foreach (var (name, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[name] = value;
        }

        return SettlementSite.StartAsync(settings, directory);
    }

    /// <summary>One transfer per planned seller at Stripe, of the ledger's amount, posted in the ledger; clean reconciliation; ledger verifies.</summary>
    private async Task AssertPaidOnceAsync(SettlementRunView run, IReadOnlyDictionary<string, long> shares, string period = Period)
    {
        Assert.Equal("completed", run.Status);
        Assert.True(run.Reconciliation!.Clean, string.Join("; ", run.Reconciliation.Mismatches));
        Assert.Equal(shares.Keys.Order(StringComparer.Ordinal), run.Payouts.Select(p => p.SellerId));
        var atStripe = _stripe.TransfersIn(period);
        Assert.Equal(shares.Count, atStripe.Count);
        var ledger = await _site.LedgerAsync();
        foreach (var payout in run.Payouts)
        {
            Assert.Equal("paid", payout.Status);
            var transfer = Assert.Single(atStripe, t => (string?)t["metadata"]!["idempotency_key"] == payout.IdempotencyKey);
            Assert.Equal(shares[payout.SellerId], (long)transfer["amount"]!);
            Assert.Equal(shares[payout.SellerId], _stripe.AccountBalances[(string)transfer["destination"]!] - PaidEarlier((string)transfer["destination"]!, period));
            var recorded = await ledger.GetTransferAsync(payout.LedgerTransferId);
            Assert.Equal(DataMarket.Ledger.Model.TransferState.PendingPosted, recorded!.State);
            Assert.Equal(shares[payout.SellerId], recorded.Amount);
        }

        Assert.True(await _site.LedgerVerifiesAsync());
    }

    private long PaidEarlier(string destination, string period) =>
        _stripe.Transfers.Values.Where(t => (string?)t["destination"] == destination && (string?)t["transfer_group"] != period).Sum(t => (long)t["amount"]!);

    /// <summary>One purchase through the service (charged at the fake Stripe); each seller's share by seller.</summary>
    private async Task<Dictionary<string, long>> SellAsync(params (string Seller, double Value)[] values)
    {
        var purchase = await _site.SellAsync(values);
        Assert.Equal(_site.Options.RefundWindow > TimeSpan.Zero ? "held" : "released", purchase.Status);
        (_lastBuyer, _lastPurchase) = (purchase.BuyerId, purchase.Id);
        return purchase.Shares.ToDictionary(s => s.SellerId, s => s.Amount);
    }

    private readonly Dictionary<string, Guid> _listings = [];
    private string _lastBuyer = string.Empty;
    private Guid _lastPurchase;

    private async Task PublishAsync(params string[] sellers)
    {
        await using var scope = _site.Services.CreateAsyncScope();
        var market = scope.ServiceProvider.GetRequiredService<MarketService>();
        foreach (var seller in sellers)
        {
            _listings[seller] = await _site.AddListingAsync(seller, "x,label\n1,0\n");
            await market.PublishTermsAsync(seller, _listings[seller], new PublishTermsRequest(500, 20_000, null), CancellationToken.None);
        }
    }

    private async Task<JsonElement> PurchaseOverHttpAsync(string buyer, params (string Seller, double Value)[] values)
    {
        var valuation = await _site.AddValuationAsync(buyer, values.Select(v => _listings[v.Seller]).ToList(), values);
        var quote = await (await _site.SendAsync(HttpMethod.Post, "/api/quotes", buyer, Roles.Buyer, $"{{\"valuationId\":\"{valuation}\",\"theta\":10000}}")).Content.ReadFromJsonAsync<JsonElement>();
        var body = $"{{\"quoteId\":\"{quote.GetProperty("id").GetGuid()}\"}}";
        var response = await _site.SendAsync(HttpMethod.Post, "/api/purchases", buyer, Roles.Buyer, body, "key-1");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        // A retry while pending answers the same pending purchase and charges nothing new.
        var retry = await _site.SendAsync(HttpMethod.Post, "/api/purchases", buyer, Roles.Buyer, body, "key-1");
        Assert.Equal(HttpStatusCode.Accepted, retry.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    private async Task RegisterAsync(params string[] sellers) =>
        Assert.All(await _site.RegisterDestinationsAsync(sellers), d => Assert.True(d.Ready));

    private async Task<JsonElement> RegisterOverHttpAsync(string seller)
    {
        var response = await _site.SendAsync(HttpMethod.Post, $"/api/sellers/{seller}/destination", seller, Roles.Seller);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    private Task<HttpResponseMessage> PostWebhookAsync(string json, string signature)
    {
        // No account: Stripe's signature is the only credential.
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/payments/stripe/webhook") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        request.Headers.Add("Stripe-Signature", signature);
        return _site.Http.SendAsync(request);
    }

    private async Task<string> WebhookOutcomeAsync(string json, string signature)
    {
        var response = await PostWebhookAsync(json, signature);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.GetProperty("outcome").GetString()!;
    }
}
