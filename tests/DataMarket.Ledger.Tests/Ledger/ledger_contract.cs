using System.Collections.Concurrent;
using DataMarket.Ledger.Events;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Projections;
using DataMarket.Ledger.Tests.Harness;

namespace DataMarket.Ledger.Tests.Ledger;

/// <summary>Double-entry behaviour, identical on PostgreSQL and SQLite.</summary>
public abstract class ledger_contract<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : LedgerDatabaseFixture
{
    private const string Usd = "USD";

    private ILedger Ledger => fixture.Database.Ledger;

    private static string NewParty(string role) => role + "-" + Guid.NewGuid().ToString("N")[..10];

    private static TransferRequest Transfer(AccountRef debit, AccountRef credit, long amount, TransferCode code, bool pending = false, Guid? id = null) => new()
    {
        Id = id ?? Guid.NewGuid(),
        Debit = debit,
        Credit = credit,
        Amount = amount,
        Code = code,
        Pending = pending,
    };

    private async Task<AccountBalance> BalanceAsync(AccountRef account) =>
        Assert.Single(await Ledger.GetBalancesAsync(account.Id));

    private async Task<string> FundedBuyerAsync(long amount)
    {
        var buyer = NewParty("buyer");
        var result = await Ledger.CommitAsync(Transfer(AccountRef.PaymentClearing(Usd), AccountRef.Buyer(buyer, Usd), amount, TransferCode.Charge));
        Assert.Equal(LedgerStatus.Committed, result.Status);
        return buyer;
    }

    [Fact]
    public async Task a_purchase_moves_money_in_balanced_double_entries()
    {
        var buyer = await FundedBuyerAsync(10_000);
        var seller = NewParty("seller");

        var purchase = await Ledger.CommitAsync(
        [
            Transfer(AccountRef.Buyer(buyer, Usd), AccountRef.SellerHeld(seller, Usd), 8_500, TransferCode.Allocation),
            Transfer(AccountRef.Buyer(buyer, Usd), AccountRef.PlatformFees(Usd), 1_500, TransferCode.PlatformFee),
        ]);

        Assert.Equal(LedgerStatus.Committed, purchase.Status);
        Assert.Equal(0, (await BalanceAsync(AccountRef.Buyer(buyer, Usd))).PostedBalance);
        Assert.Equal(8_500, (await BalanceAsync(AccountRef.SellerHeld(seller, Usd))).PostedBalance);
        var report = await fixture.Database.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
    }

    [Fact]
    public async Task the_same_id_with_the_same_content_returns_the_original_and_changes_nothing()
    {
        var buyer = NewParty("buyer");
        var charge = Transfer(AccountRef.PaymentClearing(Usd), AccountRef.Buyer(buyer, Usd), 700, TransferCode.Charge);

        Assert.Equal(LedgerStatus.Committed, (await Ledger.CommitAsync(charge)).Status);
        Assert.Equal(LedgerStatus.AlreadyCommitted, (await Ledger.CommitAsync(charge)).Status);
        Assert.Equal(700, (await BalanceAsync(AccountRef.Buyer(buyer, Usd))).PostedBalance);

        var different = await Ledger.CommitAsync(charge with { Amount = 701 });
        Assert.Equal(LedgerRejection.IdReusedWithDifferentContent, different.Rejection);
        Assert.Equal(700, (await BalanceAsync(AccountRef.Buyer(buyer, Usd))).PostedBalance);
    }

    [Fact]
    public async Task a_linked_batch_commits_all_or_nothing()
    {
        var buyer = await FundedBuyerAsync(1_000);
        var seller = NewParty("seller");

        var result = await Ledger.CommitAsync(
        [
            Transfer(AccountRef.Buyer(buyer, Usd), AccountRef.SellerHeld(seller, Usd), 900, TransferCode.Allocation),
            Transfer(AccountRef.Buyer(buyer, Usd), AccountRef.PlatformFees(Usd), 200, TransferCode.PlatformFee),
        ]);

        Assert.Equal(LedgerRejection.ExceedsBalance, result.Rejection);
        Assert.Equal(1_000, (await BalanceAsync(AccountRef.Buyer(buyer, Usd))).PostedBalance);
        Assert.Empty(await Ledger.GetBalancesAsync(AccountRef.SellerHeld(seller, Usd).Id));
    }

    [Fact]
    public async Task invalid_transfers_are_rejected_before_touching_the_database()
    {
        var buyer = AccountRef.Buyer(NewParty("buyer"), Usd);
        Assert.Equal(LedgerRejection.InvalidAmount, (await Ledger.CommitAsync(Transfer(AccountRef.PaymentClearing(Usd), buyer, 0, TransferCode.Charge))).Rejection);
        Assert.Equal(LedgerRejection.SameAccount, (await Ledger.CommitAsync(Transfer(buyer, buyer, 5, TransferCode.Correction))).Rejection);
        Assert.Equal(LedgerRejection.CurrencyMismatch, (await Ledger.CommitAsync(Transfer(AccountRef.PaymentClearing("EUR"), buyer, 5, TransferCode.Charge))).Rejection);
        Assert.Equal(LedgerRejection.EmptyBatch, (await Ledger.CommitAsync([])).Rejection);
    }

    [Fact]
    public async Task a_pending_payout_posts_once_and_cannot_then_be_voided()
    {
        var seller = NewParty("seller");
        var payable = AccountRef.SellerPayable(seller, Usd);
        await Ledger.CommitAsync(Transfer(AccountRef.PaymentClearing(Usd), payable, 5_000, TransferCode.Correction));
        var payout = Transfer(payable, AccountRef.PayoutsInTransit(Usd), 3_000, TransferCode.Payout, pending: true);

        Assert.Equal(LedgerStatus.Committed, (await Ledger.CommitAsync(payout)).Status);
        Assert.Equal(2_000, (await BalanceAsync(payable)).AvailableBalance);
        var overdraw = await Ledger.CommitAsync(Transfer(payable, AccountRef.PayoutsInTransit(Usd), 2_001, TransferCode.Payout, pending: true));
        Assert.Equal(LedgerRejection.ExceedsBalance, overdraw.Rejection);

        Assert.Equal(LedgerStatus.Committed, (await Ledger.PostPendingAsync(payout.Id)).Status);
        Assert.Equal(LedgerStatus.AlreadyCommitted, (await Ledger.PostPendingAsync(payout.Id)).Status);
        Assert.Equal(LedgerRejection.PendingAlreadyResolved, (await Ledger.VoidPendingAsync(payout.Id)).Rejection);

        var balance = await BalanceAsync(payable);
        Assert.Equal((0L, 3_000L, 2_000L), (balance.DebitsPending, balance.DebitsPosted, balance.PostedBalance));
        Assert.Equal(TransferState.PendingPosted, (await Ledger.GetTransferAsync(payout.Id))!.State);
        Assert.Equal(LedgerRejection.PendingNotFound, (await Ledger.PostPendingAsync(Guid.NewGuid())).Rejection);
    }

    /// <summary>Sellers with a payable balance and a pending payout each, all into the one payouts_in_transit account.</summary>
    private async Task<(string Seller, TransferRequest Payout)[]> PendingPayoutsAsync(ILedger ledger, int count)
    {
        var payouts = Enumerable.Range(0, count).Select(i =>
        {
            var seller = NewParty("seller");
            return (seller, Transfer(AccountRef.SellerPayable(seller, Usd), AccountRef.PayoutsInTransit(Usd), 100 + i, TransferCode.Payout, pending: true));
        }).ToArray();
        Assert.Equal(LedgerStatus.Committed, (await ledger.CommitAsync(payouts.Select(p => Transfer(AccountRef.PaymentClearing(Usd), p.Item2.Debit, 1_000, TransferCode.Correction)).ToList())).Status);
        Assert.All(await Task.WhenAll(payouts.Select(p => ledger.CommitAsync(p.Item2))), r => Assert.Equal(LedgerStatus.Committed, r.Status));
        return payouts;
    }

    [Fact]
    public async Task posts_and_voids_of_pending_payouts_go_through_group_commit_and_each_caller_gets_its_own_answer()
    {
        // A handle of its own, so its group-commit counters see only this test's commands.
        await using var database = await fixture.OpenAnotherAsync();
        var ledger = database.Ledger;
        var payouts = await PendingPayoutsAsync(ledger, 24);
        var before = database.CommitStatistics.Read();

        // All at once: payout 0 posted and voided (one wins, the other is refused), payout 1 voided, the rest posted,
        // and a post of a transfer that does not exist.
        var contested = new[] { ledger.PostPendingAsync(payouts[0].Payout.Id), ledger.VoidPendingAsync(payouts[0].Payout.Id) };
        var voided = ledger.VoidPendingAsync(payouts[1].Payout.Id);
        var posted = payouts.Skip(2).Select(p => ledger.PostPendingAsync(p.Payout.Id)).ToArray();
        var unknown = ledger.PostPendingAsync(Guid.NewGuid());
        var contestedResults = await Task.WhenAll(contested);
        var postedResults = await Task.WhenAll(posted);

        Assert.Single(contestedResults, r => r.Status == LedgerStatus.Committed);
        Assert.Single(contestedResults, r => r.Rejection == LedgerRejection.PendingAlreadyResolved);
        Assert.Equal(LedgerStatus.Committed, (await voided).Status);
        Assert.All(postedResults, r => Assert.Equal(LedgerStatus.Committed, r.Status));
        Assert.Equal(LedgerRejection.PendingNotFound, (await unknown).Rejection);
        // Every post and void of a pending transfer went through the group-commit queue, the contested loser too unless
        // the winner was durable before the loser first read the transfer (then it is answered without a transaction).
        Assert.InRange((database.CommitStatistics.Read() - before).Commands, 1 + 1 + posted.Length, 2 + 1 + posted.Length);

        var winner = contestedResults[0].Status == LedgerStatus.Committed ? TransferState.PendingPosted : TransferState.PendingVoided;
        Assert.Equal(winner, (await ledger.GetTransferAsync(payouts[0].Payout.Id))!.State);
        Assert.Equal(TransferState.PendingVoided, (await ledger.GetTransferAsync(payouts[1].Payout.Id))!.State);
        foreach (var (seller, payout) in payouts)
        {
            var state = (await ledger.GetTransferAsync(payout.Id))!.State;
            var balance = await BalanceAsync(payout.Debit);
            var paid = state == TransferState.PendingPosted ? payout.Amount : 0;
            Assert.Equal((0L, paid, 1_000 - paid), (balance.DebitsPending, balance.DebitsPosted, balance.PostedBalance));
            var statement = await ledger.GetSellerStatementAsync(seller, LedgerProjection.Period(database.TimeProvider.GetUtcNow()));
            Assert.Equal(paid, statement.Lines.Sum(l => l.Paid));
        }

        // Answers for resolved transfers are final, and a redo changes nothing.
        Assert.All(await Task.WhenAll(payouts.Skip(2).Select(p => ledger.PostPendingAsync(p.Payout.Id))), r => Assert.Equal(LedgerStatus.AlreadyCommitted, r.Status));
        Assert.Equal(LedgerRejection.PendingAlreadyResolved, (await ledger.PostPendingAsync(payouts[1].Payout.Id)).Rejection);
        var report = await database.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
    }

    [Fact]
    public async Task resolving_many_pending_transfers_in_one_call_answers_each_in_order()
    {
        var payouts = await PendingPayoutsAsync(Ledger, 6);
        Assert.Equal(LedgerStatus.Committed, (await Ledger.VoidPendingAsync(payouts[5].Payout.Id)).Status);
        var charge = Transfer(AccountRef.PaymentClearing(Usd), AccountRef.Buyer(NewParty("buyer"), Usd), 10, TransferCode.Charge);
        Assert.Equal(LedgerStatus.Committed, (await Ledger.CommitAsync(charge)).Status);
        var unknown = Guid.NewGuid();

        var results = await Ledger.ResolvePendingAsync(
        [
            PendingTransferAction.PostOf(payouts[0].Payout.Id),
            PendingTransferAction.VoidOf(payouts[1].Payout.Id),
            PendingTransferAction.PostOf(payouts[2].Payout.Id),
            PendingTransferAction.PostOf(unknown),
            PendingTransferAction.PostOf(payouts[3].Payout.Id),
            PendingTransferAction.PostOf(payouts[5].Payout.Id),
            PendingTransferAction.PostOf(charge.Id),
            PendingTransferAction.VoidOf(payouts[4].Payout.Id),
        ]);

        Assert.Equal(
            [(LedgerStatus.Committed, (LedgerRejection?)null), (LedgerStatus.Committed, null), (LedgerStatus.Committed, null), (LedgerStatus.Rejected, LedgerRejection.PendingNotFound),
             (LedgerStatus.Committed, null), (LedgerStatus.Rejected, LedgerRejection.PendingAlreadyResolved), (LedgerStatus.Rejected, LedgerRejection.NotPending), (LedgerStatus.Committed, null)],
            results.Select(r => (r.Status, r.Rejection)));
        Assert.Equal(
            [TransferState.PendingPosted, TransferState.PendingVoided, TransferState.PendingPosted, TransferState.PendingPosted, TransferState.PendingVoided, TransferState.PendingVoided],
            await Task.WhenAll(payouts.Select(async p => (await Ledger.GetTransferAsync(p.Payout.Id))!.State)));
        foreach (var (_, payout) in payouts)
        {
            var paid = (await Ledger.GetTransferAsync(payout.Id))!.State == TransferState.PendingPosted ? payout.Amount : 0;
            Assert.Equal((0L, paid), ((await BalanceAsync(payout.Debit)).DebitsPending, (await BalanceAsync(payout.Debit)).DebitsPosted));
        }

        // Read back together: every transfer that exists (each id once), none for an unknown id.
        var read = await Ledger.GetTransfersAsync([.. payouts.Select(p => p.Payout.Id), unknown, payouts[0].Payout.Id, charge.Id]);
        Assert.Equal(payouts.Select(p => p.Payout.Id).Append(charge.Id).Order(), read.Keys.Order());
        Assert.All(payouts, p => Assert.Equal((p.Payout.Amount, p.Payout.Debit.Id), (read[p.Payout.Id].Amount, read[p.Payout.Id].DebitAccountId)));
        Assert.Equal(TransferState.PendingVoided, read[payouts[4].Payout.Id].State);
        Assert.Empty(await Ledger.GetTransfersAsync([]));

        // A redo answers the same without moving anything; an inbox receipt cannot cover many commands.
        Assert.All(await Ledger.ResolvePendingAsync([PendingTransferAction.PostOf(payouts[0].Payout.Id), PendingTransferAction.VoidOf(payouts[1].Payout.Id)]),
            r => Assert.Equal(LedgerStatus.AlreadyCommitted, r.Status));
        Assert.Equal(payouts[0].Payout.Amount, (await BalanceAsync(payouts[0].Payout.Debit)).DebitsPosted);
        await Assert.ThrowsAsync<ArgumentException>(() => Ledger.ResolvePendingAsync(
            [PendingTransferAction.PostOf(payouts[0].Payout.Id)], new LedgerCommandOptions { Inbox = new InboxReceipt("payouts", Guid.NewGuid()) }));
        Assert.Empty(await Ledger.ResolvePendingAsync([]));
        var report = await fixture.Database.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
    }

    [Fact]
    public async Task a_refused_resolution_in_a_group_leaves_the_others_in_that_group_committed()
    {
        await using var database = await fixture.OpenAnotherAsync();
        var service = (LedgerService)database.Ledger;
        var payouts = await PendingPayoutsAsync(database.Ledger, 3);
        EventMetadata Metadata() => service.NewMetadata(null);
        PendingResolution Resolution(TransferRequest payout, bool post) => new(
            new TransferRecord(payout.Id, payout.Debit.Id, payout.Credit.Id, payout.Amount, payout.Debit.Currency, payout.Code, true, TransferState.Pending, null, payout.Reference, DateTimeOffset.UnixEpoch, null),
            post);
        var missing = Transfer(AccountRef.SellerPayable(NewParty("seller"), Usd), AccountRef.PayoutsInTransit(Usd), 5, TransferCode.Payout, pending: true);

        // One group, decided in order: post 0, void 0 (already posted in this group), void 1, a missing transfer, post 2
        // and post 2 again (an idempotent answer from inside the group).
        List<CommitCommand> group =
        [
            new([], null, Metadata()) { Resolution = Resolution(payouts[0].Payout, post: true) },
            new([], null, Metadata()) { Resolution = Resolution(payouts[0].Payout, post: false) },
            new([], null, Metadata()) { Resolution = Resolution(payouts[1].Payout, post: false) },
            new([], null, Metadata()) { Resolution = Resolution(missing, post: true) },
            new([], null, Metadata()) { Resolution = Resolution(payouts[2].Payout, post: true) },
            new([], null, Metadata()) { Resolution = Resolution(payouts[2].Payout, post: true) },
        ];
        await using (var work = await service.Backend.BeginUnitOfWorkAsync(CancellationToken.None))
        {
            var (results, wrote, _) = await service.CommitManyAsync(work, group, inbox: null, CancellationToken.None);
            Assert.True(wrote);
            Assert.Equal(
                [LedgerStatus.Committed, LedgerStatus.Rejected, LedgerStatus.Committed, LedgerStatus.Rejected, LedgerStatus.Committed, LedgerStatus.AlreadyCommitted],
                results.Select(r => r.Status));
            Assert.Equal(LedgerRejection.PendingAlreadyResolved, results[1].Rejection);
            Assert.Equal(LedgerRejection.PendingNotFound, results[3].Rejection);
            await work.CommitAsync(CancellationToken.None);
        }

        Assert.Equal(
            [TransferState.PendingPosted, TransferState.PendingVoided, TransferState.PendingPosted],
            await Task.WhenAll(payouts.Select(async p => (await database.Ledger.GetTransferAsync(p.Payout.Id))!.State)));
        Assert.Equal(payouts[0].Payout.Amount, (await BalanceAsync(payouts[0].Payout.Debit)).DebitsPosted);
        Assert.Equal(0, (await BalanceAsync(payouts[1].Payout.Debit)).DebitsPosted);
        Assert.Equal(payouts[2].Payout.Amount, (await BalanceAsync(payouts[2].Payout.Debit)).DebitsPosted);
        var report = await database.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
    }

    [Fact]
    public async Task a_voided_pending_transfer_restores_balances_exactly()
    {
        var buyer = await FundedBuyerAsync(4_000);
        var seller = NewParty("seller");
        var before = await Ledger.GetBalancesAsync();
        var hold = Transfer(AccountRef.Buyer(buyer, Usd), AccountRef.SellerHeld(seller, Usd), 2_500, TransferCode.Allocation, pending: true);

        await Ledger.CommitAsync(hold);
        Assert.Equal(LedgerStatus.Committed, (await Ledger.VoidPendingAsync(hold.Id)).Status);
        Assert.Equal(LedgerStatus.AlreadyCommitted, (await Ledger.VoidPendingAsync(hold.Id)).Status);
        Assert.Equal(LedgerRejection.PendingAlreadyResolved, (await Ledger.PostPendingAsync(hold.Id)).Rejection);

        var after = await Ledger.GetBalancesAsync();
        var opened = AccountRef.SellerHeld(seller, Usd).Id;
        Assert.Equal(before, after.Where(a => a.AccountId != opened).ToList());
        Assert.Equal(0, after.Single(a => a.AccountId == opened) is var held ? held.DebitsPending + held.CreditsPending + held.CreditsPosted + held.DebitsPosted : -1);
    }

    [Fact]
    public async Task seller_statements_report_earned_held_and_paid_per_period()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 10, 30, 23, 0, 0, TimeSpan.Zero));
        await using var database = await fixture.OpenAnotherAsync(clock);
        var ledger = database.Ledger;
        var buyer = NewParty("buyer");
        var seller = NewParty("seller");
        await ledger.CommitAsync(Transfer(AccountRef.PaymentClearing(Usd), AccountRef.Buyer(buyer, Usd), 10_000, TransferCode.Charge));
        await ledger.CommitAsync(Transfer(AccountRef.Buyer(buyer, Usd), AccountRef.SellerHeld(seller, Usd), 6_000, TransferCode.Allocation));

        clock.Now = new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero);
        await ledger.CommitAsync(Transfer(AccountRef.Buyer(buyer, Usd), AccountRef.SellerHeld(seller, Usd), 1_000, TransferCode.Allocation));
        await ledger.CommitAsync(Transfer(AccountRef.SellerHeld(seller, Usd), AccountRef.SellerPayable(seller, Usd), 4_000, TransferCode.HoldRelease));
        var payout = Transfer(AccountRef.SellerPayable(seller, Usd), AccountRef.PayoutsInTransit(Usd), 3_500, TransferCode.Payout, pending: true);
        await ledger.CommitAsync(payout);
        clock.Now = new DateTimeOffset(2026, 11, 20, 9, 0, 0, TimeSpan.Zero);
        await ledger.PostPendingAsync(payout.Id);

        Assert.Equal([new SellerStatementLine(Usd, 6_000, 6_000, 0)], (await ledger.GetSellerStatementAsync(seller, "2026-10")).Lines);
        Assert.Equal([new SellerStatementLine(Usd, 1_000, -3_000, 3_500)], (await ledger.GetSellerStatementAsync(seller, "2026-11")).Lines);
        Assert.Empty((await ledger.GetSellerStatementAsync(seller, "2026-12")).Lines);
        await Assert.ThrowsAsync<ArgumentException>(() => ledger.GetSellerStatementAsync(seller, "November"));
    }

    [Fact]
    public async Task a_rebuild_by_replay_reproduces_the_inline_projections()
    {
        var buyer = await FundedBuyerAsync(9_000);
        var seller = NewParty("seller");
        await Ledger.CommitAsync(Transfer(AccountRef.Buyer(buyer, Usd), AccountRef.SellerHeld(seller, Usd), 3_000, TransferCode.Allocation));
        var pending = Transfer(AccountRef.Buyer(buyer, Usd), AccountRef.Refunds(Usd), 1_000, TransferCode.Refund, pending: true);
        await Ledger.CommitAsync(pending);
        var before = await Ledger.GetBalancesAsync();

        var replayed = await fixture.Database.RebuildProjectionsAsync();

        Assert.True(replayed > 0);
        Assert.Equal(before, await Ledger.GetBalancesAsync());
        var report = await fixture.Database.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
    }

    [Fact]
    public async Task concurrent_writers_over_shared_accounts_keep_every_invariant()
    {
        var buyers = Enumerable.Range(0, 3).Select(_ => NewParty("buyer")).ToArray();
        var sellers = Enumerable.Range(0, 3).Select(_ => NewParty("seller")).ToArray();
        foreach (var buyer in buyers)
        {
            await Ledger.CommitAsync(Transfer(AccountRef.PaymentClearing(Usd), AccountRef.Buyer(buyer, Usd), 1_000, TransferCode.Charge));
        }

        var committed = new ConcurrentBag<long>();
        var tasks = Enumerable.Range(0, 6).Select(writer => Task.Run(async () =>
        {
            var random = new Random(writer);
            for (var i = 0; i < 15; i++)
            {
                var buyer = buyers[random.Next(buyers.Length)];
                var seller = sellers[random.Next(sellers.Length)];
                var amount = random.Next(1, 120);
                var result = await Ledger.CommitAsync(
                [
                    Transfer(AccountRef.Buyer(buyer, Usd), AccountRef.SellerHeld(seller, Usd), amount, TransferCode.Allocation),
                    Transfer(AccountRef.Buyer(buyer, Usd), AccountRef.PlatformFees(Usd), 1, TransferCode.PlatformFee),
                ]);
                if (result.Status == LedgerStatus.Committed)
                {
                    committed.Add(amount);
                }
                else
                {
                    Assert.Equal(LedgerRejection.ExceedsBalance, result.Rejection);
                }
            }
        }));
        await Task.WhenAll(tasks);

        var held = (await Ledger.GetBalancesAsync("seller_held:")).Where(a => sellers.Contains(a.Owner)).Sum(a => a.PostedBalance);
        Assert.Equal(committed.Sum(), held);
        var buyerTotal = (await Ledger.GetBalancesAsync("buyer:")).Where(a => buyers.Contains(a.Owner)).Sum(a => a.PostedBalance);
        Assert.Equal(3_000 - committed.Sum() - committed.Count, buyerTotal);
        var report = await fixture.Database.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
    }

    [Fact]
    public async Task a_redelivered_message_is_absorbed_by_the_inbox()
    {
        var buyer = NewParty("buyer");
        var messageId = Guid.NewGuid();
        var options = new LedgerCommandOptions { Inbox = new InboxReceipt("charge-consumer", messageId) };

        var first = await Ledger.CommitAsync(Transfer(AccountRef.PaymentClearing(Usd), AccountRef.Buyer(buyer, Usd), 300, TransferCode.Charge), options);
        // A second delivery of the same message (even with a fresh transfer id) changes nothing.
        var second = await Ledger.CommitAsync(Transfer(AccountRef.PaymentClearing(Usd), AccountRef.Buyer(buyer, Usd), 300, TransferCode.Charge), options);

        Assert.Equal(LedgerStatus.Committed, first.Status);
        Assert.Equal(LedgerStatus.DuplicateMessage, second.Status);
        Assert.Equal(300, (await BalanceAsync(AccountRef.Buyer(buyer, Usd))).PostedBalance);
    }

    [Fact]
    public async Task a_message_that_overtook_its_pending_transfer_or_repeats_a_commit_is_not_consumed()
    {
        var buyer = NewParty("buyer");
        var hold = Transfer(AccountRef.PaymentClearing(Usd), AccountRef.Buyer(buyer, Usd), 400, TransferCode.Charge, pending: true);
        var capture = new LedgerCommandOptions { Inbox = new InboxReceipt("capture-consumer", Guid.NewGuid()) };

        // The capture arrives before the hold it captures: rejected, but the same message may come back later.
        Assert.Equal(LedgerRejection.PendingNotFound, (await Ledger.PostPendingAsync(hold.Id, capture)).Rejection);
        Assert.Equal(LedgerStatus.Committed, (await Ledger.CommitAsync(hold)).Status);
        Assert.Equal(LedgerStatus.Committed, (await Ledger.PostPendingAsync(hold.Id, capture)).Status);
        Assert.Equal(LedgerStatus.DuplicateMessage, (await Ledger.PostPendingAsync(hold.Id, capture)).Status);
        Assert.Equal(400, (await BalanceAsync(AccountRef.Buyer(buyer, Usd))).PostedBalance);

        // Repeating committed transfers under a new message writes nothing, receipt included: asked again, it answers again.
        var resend = new LedgerCommandOptions { Inbox = new InboxReceipt("charge-consumer", Guid.NewGuid()) };
        Assert.Equal(LedgerStatus.AlreadyCommitted, (await Ledger.CommitAsync(hold, resend)).Status);
        Assert.Equal(LedgerStatus.AlreadyCommitted, (await Ledger.CommitAsync(hold, resend)).Status);
    }

    [Fact]
    public async Task a_rejected_message_stays_rejected_when_redelivered_after_the_balance_allows_it()
    {
        var buyer = NewParty("buyer");
        var seller = NewParty("seller");
        var purchase = new LedgerCommandOptions { Inbox = new InboxReceipt("purchase-consumer", Guid.NewGuid()) };
        var allocation = Transfer(AccountRef.Buyer(buyer, Usd), AccountRef.SellerHeld(seller, Usd), 500, TransferCode.Allocation);

        var first = await Ledger.CommitAsync(allocation, purchase);
        Assert.Equal(LedgerStatus.Rejected, first.Status);
        Assert.Equal(LedgerRejection.ExceedsBalance, first.Rejection);

        // The buyer is funded in between; the redelivered message must still not move money.
        Assert.Equal(LedgerStatus.Committed, (await Ledger.CommitAsync(Transfer(AccountRef.PaymentClearing(Usd), AccountRef.Buyer(buyer, Usd), 1_000, TransferCode.Charge))).Status);
        var redelivered = await Ledger.CommitAsync(allocation, purchase);

        Assert.Equal(LedgerStatus.DuplicateMessage, redelivered.Status);
        Assert.Equal(LedgerRejection.ExceedsBalance, redelivered.Rejection);
        Assert.False(redelivered.Succeeded);
        Assert.Null(await Ledger.GetTransferAsync(allocation.Id));
        Assert.Equal(1_000, (await BalanceAsync(AccountRef.Buyer(buyer, Usd))).PostedBalance);

        // A different message with the same transfer is a new command and may now go through.
        var fresh = await Ledger.CommitAsync(allocation, new LedgerCommandOptions { Inbox = new InboxReceipt("purchase-consumer", Guid.NewGuid()) });
        Assert.Equal(LedgerStatus.Committed, fresh.Status);
        Assert.Equal(500, (await BalanceAsync(AccountRef.Buyer(buyer, Usd))).PostedBalance);
    }
}

public sealed class ledger_contract_on_postgres(PostgresFixture fixture) : ledger_contract<PostgresFixture>(fixture);

public sealed class ledger_contract_on_sqlite(SqliteFixture fixture) : ledger_contract<SqliteFixture>(fixture);
