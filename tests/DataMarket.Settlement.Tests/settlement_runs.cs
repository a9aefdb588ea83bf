using DataMarket.Ledger.Model;
using DataMarket.SettlementService.Application;
using DataMarket.SettlementService.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Settlement.Tests;

/// <summary>
/// Settlement runs on the embedded stores (SQLite, sandbox rails): a run pays each seller with a destination and a
/// released balance at least the minimum exactly once; running the period again changes nothing; a provider outage
/// leaves the payout reserved and the next run finishes it under the same key.
/// </summary>
public sealed class settlement_runs : IAsyncLifetime
{
    private const string Period = "2026-11";
    private SettlementSite _site = null!;

    public async Task InitializeAsync() => _site = await SettlementSite.StartAsync(new Dictionary<string, string?> { ["Settlement:RefundWindow"] = "00:00:00" });

    public async Task DisposeAsync() => await _site.DisposeAsync();

    [Fact]
    public async Task a_second_run_of_the_same_period_changes_nothing()
    {
        await SellAsync(("seller-a", 0.3), ("seller-b", 0.1), ("seller-c", 0.2));
        await RegisterAsync("seller-a", "seller-b");
        var runner = _site.Services.GetRequiredService<SettlementRunner>();

        var first = await runner.RunAsync(Period, "test", CancellationToken.None);
        Assert.Equal("completed", first.Status);
        Assert.Equal(["seller-a", "seller-b"], first.Payouts.Select(p => p.SellerId));
        Assert.All(first.Payouts, p => Assert.Equal("paid", p.Status));
        Assert.Equal(["seller-c"], first.WaitingForDestination);
        Assert.True(first.Reconciliation!.Clean, string.Join("; ", first.Reconciliation.Mismatches));
        Assert.Equal(2, first.Reconciliation.ProviderTransfers);
        var balances = await _site.BalancesAsync();
        Assert.Equal(0, balances.Single(b => b.AccountId == "seller_payable:seller-a:USD").PostedBalance);
        Assert.True(balances.Single(b => b.AccountId == "seller_payable:seller-c:USD").PostedBalance > 0);

        // A sale after the run waits for the next period: re-running this one pays nothing new.
        await SellAsync(("seller-a", 0.5));
        var again = await runner.RunAsync(Period, "test", CancellationToken.None);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(first), System.Text.Json.JsonSerializer.Serialize(again));
        var after = await _site.BalancesAsync();
        Assert.Equal(balances.Single(b => b.AccountId == "payouts_in_transit:platform:USD"), after.Single(b => b.AccountId == "payouts_in_transit:platform:USD"));
        Assert.Equal(2, (await _site.Services.GetRequiredService<IPaymentRails>().ListTransfersAsync(Period, CancellationToken.None)).Count);

        var statement = await runner.StatementAsync("seller-a", Period, CancellationToken.None);
        Assert.Equal(first.Payouts[0].Amount, Assert.Single(statement.Payouts).Paid);
        Assert.True(await _site.LedgerVerifiesAsync());
    }

    [Fact]
    public async Task two_runs_of_a_period_at_once_paying_in_small_batches_pay_each_seller_once()
    {
        string[] sellers = ["seller-a", "seller-b", "seller-c", "seller-d", "seller-e"];
        await SellAsync(sellers.Select((s, i) => (s, 0.1 * (i + 1))).ToArray());
        await RegisterAsync(sellers);
        _site.Options.PayoutBatchSize = 2;
        _site.Options.PayoutConcurrency = 2;
        var runner = _site.Services.GetRequiredService<SettlementRunner>();

        // Both read the run once, pay their batches and append each batch's statements at the version they know:
        // whichever loses a race re-reads and appends only what is still missing.
        var runs = await Task.WhenAll(runner.RunAsync(Period, "node-1", CancellationToken.None), runner.RunAsync(Period, "node-2", CancellationToken.None));
        foreach (var run in runs.Append(await runner.RunAsync(Period, "node-3", CancellationToken.None)))
        {
            Assert.Equal("completed", run.Status);
            Assert.Equal(sellers, run.Payouts.Select(p => p.SellerId));
            Assert.All(run.Payouts, p => Assert.Equal("paid", p.Status));
            Assert.True(run.Reconciliation!.Clean, string.Join("; ", run.Reconciliation.Mismatches));
        }

        var transfers = await _site.Services.GetRequiredService<IPaymentRails>().ListTransfersAsync(Period, CancellationToken.None);
        Assert.Equal(sellers.Select(s => $"payout:{Period}:{s}:USD"), transfers.Select(t => t.IdempotencyKey).Order(StringComparer.Ordinal));
        var balances = await _site.BalancesAsync();
        Assert.All(sellers, s => Assert.Equal(0, balances.Single(b => b.AccountId == $"seller_payable:{s}:USD").PostedBalance));
        Assert.Equal(0, balances.Single(b => b.AccountId == "payouts_in_transit:platform:USD").PostedBalance);
        foreach (var seller in sellers)
        {
            Assert.Single((await runner.StatementAsync(seller, Period, CancellationToken.None)).Payouts);
        }

        Assert.True(await _site.LedgerVerifiesAsync());
    }

    [Fact]
    public async Task a_provider_outage_leaves_the_payout_reserved_and_the_next_run_sends_it_once()
    {
        await SellAsync(("seller-a", 0.3), ("seller-b", 0.1));
        await RegisterAsync("seller-a", "seller-b");
        var runner = _site.Services.GetRequiredService<SettlementRunner>();

        _site.Options.Sandbox.Behaviour = SandboxBehaviour.Fail;
        var failed = await runner.RunAsync(Period, "test", CancellationToken.None);
        Assert.Equal("in_progress", failed.Status);
        Assert.All(failed.Payouts, p => Assert.Equal("pending", p.Status));
        var inTransit = (await _site.BalancesAsync()).Single(b => b.AccountId == "payouts_in_transit:platform:USD");
        Assert.Equal(failed.Payouts.Sum(p => p.Amount), inTransit.CreditsPending);

        _site.Options.Sandbox.Behaviour = SandboxBehaviour.Succeed;
        var resumed = await runner.RunAsync(Period, "test", CancellationToken.None);
        Assert.Equal("completed", resumed.Status);
        Assert.All(resumed.Payouts, p => Assert.Equal("paid", p.Status));
        Assert.True(resumed.Reconciliation!.Clean);
        Assert.Equal(2, (await _site.Services.GetRequiredService<IPaymentRails>().ListTransfersAsync(Period, CancellationToken.None)).Count);
        Assert.True(await _site.LedgerVerifiesAsync());
    }

    [Fact]
    public async Task a_permanent_provider_failure_voids_the_payout_and_the_balance_stays_payable()
    {
        await SellAsync(("seller-a", 0.3));
        await RegisterAsync("seller-a");
        var before = (await _site.BalancesAsync()).Single(b => b.AccountId == "seller_payable:seller-a:USD");
        _site.Options.Sandbox.Behaviour = SandboxBehaviour.Decline;

        var run = await _site.Services.GetRequiredService<SettlementRunner>().RunAsync(Period, "test", CancellationToken.None);
        Assert.Equal("completed", run.Status);
        Assert.Equal("failed", Assert.Single(run.Payouts).Status);
        Assert.True(run.Reconciliation!.Clean);
        var after = (await _site.BalancesAsync()).Single(b => b.AccountId == "seller_payable:seller-a:USD");
        Assert.Equal(before.PostedBalance, after.AvailableBalance);
        var transfer = await (await _site.LedgerAsync()).GetTransferAsync(run.Payouts[0].LedgerTransferId);
        Assert.Equal(TransferState.PendingVoided, transfer!.State);
    }

    [Fact]
    public async Task a_sandbox_dispute_after_payout_is_netted_from_the_next_payout()
    {
        var disputed = await SellAsync(("seller-a", 0.3));
        await RegisterAsync("seller-a");
        var runner = _site.Services.GetRequiredService<SettlementRunner>();
        var paid = Assert.Single((await runner.RunAsync("2026-10", "test", CancellationToken.None)).Payouts).Amount;

        // Only an operator records a sandbox dispute; a second time changes nothing.
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, (await _site.SendAsync(HttpMethod.Post, $"/api/purchases/{disputed.Id}/dispute", disputed.BuyerId, DataMarket.ServiceDefaults.Security.Roles.Buyer)).StatusCode);
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, (await _site.SendAsync(HttpMethod.Post, $"/api/purchases/{disputed.Id}/dispute", "operator-1", DataMarket.ServiceDefaults.Security.Roles.Operator)).StatusCode);
        }

        Assert.Equal(paid, -(await _site.BalancesAsync()).Single(b => b.AccountId == "refunds:platform:USD").PostedBalance);
        var next = await SellAsync(("seller-a", 0.9));
        var run = await runner.RunAsync(Period, "test", CancellationToken.None);
        Assert.Equal(next.Shares.Single().Amount - paid, Assert.Single(run.Payouts).Amount);
        var balances = await _site.BalancesAsync();
        Assert.Equal(0, balances.Single(b => b.AccountId == "refunds:platform:USD").PostedBalance);
        Assert.Equal(0, balances.Single(b => b.AccountId == "seller_payable:seller-a:USD").PostedBalance);
        Assert.True(await _site.LedgerVerifiesAsync());
    }

    [Fact]
    public async Task a_sandbox_dispute_debt_no_payable_balance_covers_is_reversed_from_the_earlier_transfer_once()
    {
        var disputed = await SellAsync(("seller-a", 0.3));
        await RegisterAsync("seller-a");
        var runner = _site.Services.GetRequiredService<SettlementRunner>();
        var paid = Assert.Single((await runner.RunAsync("2026-10", "test", CancellationToken.None)).Payouts);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await _site.SendAsync(HttpMethod.Post, $"/api/purchases/{disputed.Id}/dispute", "operator-1", DataMarket.ServiceDefaults.Security.Roles.Operator)).StatusCode);

        // Nothing payable in November: the whole debt comes back from October's transfer, and a re-run sends nothing new.
        var run = await runner.RunAsync(Period, "test", CancellationToken.None);
        Assert.Empty(run.Payouts);
        var reversal = Assert.Single(run.Reversals!);
        Assert.Equal(("seller-a", paid.Amount, paid.ProviderTransferId, "reversed"), (reversal.SellerId, reversal.Amount, reversal.TransferId, reversal.Status));
        Assert.True(run.Reconciliation!.Clean, string.Join("; ", run.Reconciliation.Mismatches));
        Assert.Equal(run.Reversals, (await runner.RunAsync(Period, "test", CancellationToken.None)).Reversals);
        var october = Assert.Single(await _site.Services.GetRequiredService<IPaymentRails>().ListTransfersAsync("2026-10", CancellationToken.None));
        Assert.Equal((paid.Amount, paid.Amount), (october.Amount, october.Reversed));
        var balances = await _site.BalancesAsync();
        Assert.Equal(0, balances.Single(b => b.AccountId == "refunds:platform:USD").PostedBalance);
        Assert.Empty(await _site.Services.GetRequiredService<DisputeBook>().OwedAsync(CancellationToken.None));
        Assert.True(await _site.LedgerVerifiesAsync());
    }

    [Fact]
    public async Task a_sandbox_reversal_answers_a_reused_key_as_it_first_did_and_refuses_other_parameters_or_more_than_is_left()
    {
        var rails = _site.Services.GetRequiredService<IPaymentRails>();
        var transfer = await rails.TransferAsync("payout:2026-10:seller-r:USD", "acct_sandbox_r", 1_000, "USD", "2026-10", CancellationToken.None);
        Assert.Equal(RailsOutcome.Succeeded, transfer.Outcome);

        var first = await rails.ReverseTransferAsync("reversal:k1", transfer.ProviderId!, 300, "USD", CancellationToken.None);
        Assert.Equal(RailsOutcome.Succeeded, first.Outcome);
        Assert.Equal(first, await rails.ReverseTransferAsync("reversal:k1", transfer.ProviderId!, 300, "USD", CancellationToken.None));
        var changed = await rails.ReverseTransferAsync("reversal:k1", transfer.ProviderId!, 400, "USD", CancellationToken.None);
        Assert.Equal(RailsOutcome.Declined, changed.Outcome);
        Assert.Contains("other parameters", changed.Reason, StringComparison.Ordinal);
        var tooMuch = await rails.ReverseTransferAsync("reversal:k2", transfer.ProviderId!, 701, "USD", CancellationToken.None);
        Assert.Equal(RailsOutcome.Declined, tooMuch.Outcome);
        Assert.Contains("700 left", tooMuch.Reason, StringComparison.Ordinal);
        Assert.Equal(RailsOutcome.Declined, (await rails.ReverseTransferAsync("reversal:k3", "tr_sandbox_none", 1, "USD", CancellationToken.None)).Outcome);
        var rest = await rails.ReverseTransferAsync("reversal:k2b", transfer.ProviderId!, 700, "USD", CancellationToken.None);
        Assert.Equal(RailsOutcome.Succeeded, rest.Outcome);
        Assert.NotEqual(first.ProviderId, rest.ProviderId);

        var listed = Assert.Single(await rails.ListTransfersAsync("2026-10", CancellationToken.None));
        Assert.Equal((1_000L, 1_000L), (listed.Amount, listed.Reversed));
    }

    [Fact]
    public async Task a_dispute_of_part_of_a_held_sale_takes_that_part_and_the_release_pays_exactly_the_rest()
    {
        _site.Options.RefundWindow = TimeSpan.FromDays(14);
        var partly = await SellAsync(("seller-a", 0.3), ("seller-b", 0.1));
        var whole = await SellAsync(("seller-a", 0.2), ("seller-b", 0.2));
        Assert.Equal("held", partly.Status);
        var amount = partly.Gross / 3 + 1;
        async Task<System.Net.HttpStatusCode> DisputeAsync(Guid id, string query = "") =>
            (await _site.SendAsync(HttpMethod.Post, $"/api/purchases/{id}/dispute{query}", "operator-1", DataMarket.ServiceDefaults.Security.Roles.Operator)).StatusCode;
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, await DisputeAsync(partly.Id, "?amount=0"));
        Assert.Equal(System.Net.HttpStatusCode.OK, await DisputeAsync(partly.Id, $"?amount={amount}"));
        Assert.Equal(System.Net.HttpStatusCode.OK, await DisputeAsync(partly.Id, $"?amount={amount}"));
        Assert.Equal(System.Net.HttpStatusCode.OK, await DisputeAsync(whole.Id));

        // The disputed part leaves: pro rata from the fee and each held share, the rest stays held.
        await using var scope = _site.Services.CreateAsyncScope();
        var market = scope.ServiceProvider.GetRequiredService<MarketService>();
        var view = (await market.GetPurchaseAsync(partly.BuyerId, partly.Id, CancellationToken.None))!;
        Assert.Equal("partly_disputed", view.Status);
        var dispute = view.Dispute!;
        Assert.Equal((amount, true, true), (dispute.Amount, dispute.Partial, dispute.WhileHeld));
        Assert.Equal(amount, dispute.Fee + dispute.Shares.Sum(s => s.Amount));
        Assert.All(dispute.Shares, s => Assert.True(Math.Abs((decimal)s.Amount * partly.Gross - (decimal)amount * partly.Shares.Single(p => p.SellerId == s.SellerId).Amount) < partly.Gross));
        var wholeView = (await market.GetPurchaseAsync(whole.BuyerId, whole.Id, CancellationToken.None))!;
        Assert.Equal(("disputed", whole.Gross, false), (wholeView.Status, wholeView.Dispute!.Amount, wholeView.Dispute.Partial));
        var left = partly.Shares.ToDictionary(s => s.SellerId, s => s.Amount - dispute.Shares.Single(d => d.SellerId == s.SellerId).Amount);
        var balances = await _site.BalancesAsync();
        long Balance(string account) => balances.SingleOrDefault(b => b.AccountId == account)?.PostedBalance ?? 0;
        Assert.Equal(left["seller-a"], Balance("seller_held:seller-a:USD"));
        Assert.Equal(left["seller-b"], Balance("seller_held:seller-b:USD"));
        Assert.Equal(partly.Fee - dispute.Fee, Balance("platform_fees:platform:USD"));
        Assert.Equal(-(partly.Gross - amount), Balance("payment_clearing:platform:USD"));
        Assert.Equal(0, Balance("refunds:platform:USD"));
        Assert.All(balances.Where(b => b.AccountId.StartsWith("buyer:", StringComparison.Ordinal)), b => Assert.Equal(0, b.PostedBalance));

        // A refund afterwards is refused: the bank already returned part, and the rest is not the buyer's to take back.
        var refund = await Assert.ThrowsAsync<SettlementException>(() => market.RefundAsync(partly.BuyerId, partly.Id, CancellationToken.None));
        Assert.Equal(SettlementErrorKind.Conflict, refund.Kind);

        // After the window the run releases only what is left and pays it out; the whole dispute releases nothing.
        _site.Clock.Advance(TimeSpan.FromDays(15));
        await RegisterAsync("seller-a", "seller-b");
        var run = await _site.Services.GetRequiredService<SettlementRunner>().RunAsync(Period, "test", CancellationToken.None);
        Assert.Equal(left.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => (l.Key, l.Value, "paid")), run.Payouts.Select(p => (p.SellerId, p.Amount, p.Status)));
        Assert.True(run.Reconciliation!.Clean, string.Join("; ", run.Reconciliation.Mismatches));
        balances = await _site.BalancesAsync();
        Assert.All(balances.Where(b => b.AccountId.StartsWith("seller_", StringComparison.Ordinal)), b => Assert.Equal(0, b.PostedBalance));
        Assert.Equal(partly.Fee - dispute.Fee, Balance("platform_fees:platform:USD"));
        Assert.Equal(-(partly.Gross - amount - left.Values.Sum()), Balance("payment_clearing:platform:USD"));
        Assert.Equal("partly_disputed", (await market.GetPurchaseAsync(partly.BuyerId, partly.Id, CancellationToken.None))!.Status);
        Assert.True(await _site.LedgerVerifiesAsync());
    }

    private Task<PurchaseView> SellAsync(params (string Seller, double Value)[] values) => _site.SellAsync(values);

    private Task RegisterAsync(params string[] sellers) => _site.RegisterDestinationsAsync(sellers);
}
