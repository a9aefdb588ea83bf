using DataMarket.Ledger.Model;
using DataMarket.Ledger.Storage;
using DataMarket.Ledger.Tests.Harness;

namespace DataMarket.Ledger.Tests.Ledger;

/// <summary>
/// The guard under cross-process concurrency on balances, one step at a time: two processes read the same
/// account and statement revisions, the first saves, and the second's save is refused (as a retryable
/// conflict) instead of overwriting the first's balance.
/// </summary>
public sealed class account_revisions_on_postgres(PostgresFixture fixture) : IClassFixture<PostgresFixture>
{
    /// <param name="setBased">Small saves use Marten's single-row statements, large ones our set-based ones: both must refuse.</param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task a_save_over_a_revision_another_process_moved_is_refused_and_retryable(bool setBased)
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var buyer = AccountRef.Buyer("rev-" + run, "USD");
        var statement = new Projections.StatementKey("rev-" + run, "USD", "2026-11");
        await using var first = await fixture.OpenAnotherAsync();
        await using var second = await fixture.OpenAnotherAsync();
        foreach (var database in new[] { first, second })
        {
            ((Events.Postgres.PostgresBackend)database.Backend).Marten.SetBasedFrom = setBased ? 1 : int.MaxValue;
        }
        Assert.Equal(LedgerStatus.Committed, (await first.Ledger.CommitAsync(new TransferRequest { Id = Guid.NewGuid(), Debit = AccountRef.PaymentClearing("USD"), Credit = buyer, Amount = 100, Code = TransferCode.Charge })).Status);

        foreach (var target in new[] { "account", "statement" })
        {
            await using var a = await first.Backend.BeginUnitOfWorkAsync(CancellationToken.None);
            await using var b = await second.Backend.BeginUnitOfWorkAsync(CancellationToken.None);
            var keys = new LedgerKeys([], [buyer.Id], [statement]);
            var rowsA = await a.LoadAsync(keys, CancellationToken.None);
            var rowsB = await b.LoadAsync(keys, CancellationToken.None);
            if (target == "account")
            {
                var account = rowsA.Accounts[buyer.Id];
                account.DebitsPosted += 10;
                a.PutAccount(account);
                var stale = rowsB.Accounts[buyer.Id];
                stale.DebitsPosted += 20;
                b.PutAccount(stale);
            }
            else
            {
                // The first write of a statement row creates it: the second must not create it again.
                var delta = new Projections.StatementTotals(5, 0, 0);
                a.PutStatement(statement, delta, (rowsA.Statements.GetValueOrDefault(statement) ?? Projections.StatementTotals.Zero).Add(delta));
                b.PutStatement(statement, delta, (rowsB.Statements.GetValueOrDefault(statement) ?? Projections.StatementTotals.Zero).Add(delta));
            }

            await a.CommitAsync(CancellationToken.None);
            var refused = await Record.ExceptionAsync(() => b.CommitAsync(CancellationToken.None));
            Assert.NotNull(refused);
            Assert.True(second.Backend.IsTransient(refused), refused.ToString());
        }

        Assert.Equal(10, Assert.Single(await second.Ledger.GetBalancesAsync(buyer.Id)).DebitsPosted);
        Assert.Equal(5, Assert.Single((await second.Ledger.GetSellerStatementAsync(statement.Seller, "2026-11")).Lines).Earned);

        // Updating a statement row that exists is guarded the same way.
        await using var c = await first.Backend.BeginUnitOfWorkAsync(CancellationToken.None);
        await using var d = await second.Backend.BeginUnitOfWorkAsync(CancellationToken.None);
        var statementKeys = new LedgerKeys([], [], [statement]);
        var rowsC = await c.LoadAsync(statementKeys, CancellationToken.None);
        var rowsD = await d.LoadAsync(statementKeys, CancellationToken.None);
        var more = new Projections.StatementTotals(1, 0, 0);
        c.PutStatement(statement, more, rowsC.Statements[statement].Add(more));
        d.PutStatement(statement, more, rowsD.Statements[statement].Add(more));
        await c.CommitAsync(CancellationToken.None);
        Assert.True(second.Backend.IsTransient((await Record.ExceptionAsync(() => d.CommitAsync(CancellationToken.None)))!));
        Assert.Equal(6, Assert.Single((await first.Ledger.GetSellerStatementAsync(statement.Seller, "2026-11")).Lines).Earned);
    }

    /// <summary>
    /// A group's optimistic first attempt posts a pending transfer as read before it was queued; if another
    /// process resolved it meanwhile, the save's expected stream version refuses the post (retryable, nothing
    /// written) and the group decided again from a plain read finds it resolved.
    /// </summary>
    /// <param name="setBased">Small saves append with Marten's own expected version, large ones with our set-based statement: both must refuse.</param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task a_post_decided_on_a_transfer_another_process_resolved_is_refused_and_decided_again(bool setBased)
    {
        var buyer = AccountRef.Buyer("post-" + Guid.NewGuid().ToString("N")[..8], "USD");
        await using var first = await fixture.OpenAnotherAsync();
        await using var second = await fixture.OpenAnotherAsync();
        ((Events.Postgres.PostgresBackend)first.Backend).Marten.SetBasedFrom = setBased ? 1 : int.MaxValue;
        var pending = new TransferRequest { Id = Guid.NewGuid(), Debit = AccountRef.PaymentClearing("USD"), Credit = buyer, Amount = 10, Code = TransferCode.Charge, Pending = true };
        Assert.Equal(LedgerStatus.Committed, (await first.Ledger.CommitAsync(pending)).Status);
        var known = (await first.Ledger.GetTransferAsync(pending.Id))!;
        Assert.Equal(LedgerStatus.Committed, (await second.Ledger.VoidPendingAsync(pending.Id)).Status);

        var service = (Projections.LedgerService)first.Ledger;
        List<Projections.CommitCommand> group = [new([], null, service.NewMetadata(null)) { Resolution = new Projections.PendingResolution(known, Post: true) }];
        await using (var work = await first.Backend.BeginUnitOfWorkAsync(CancellationToken.None))
        {
            var (results, wrote, _) = await service.CommitManyAsync(work, group, inbox: null, CancellationToken.None, optimistic: true);
            Assert.True(wrote);
            Assert.Equal(LedgerStatus.Committed, results[0].Status);
            var refused = await Record.ExceptionAsync(() => work.CommitAsync(CancellationToken.None));
            Assert.NotNull(refused);
            Assert.True(first.Backend.IsTransient(refused), refused.ToString());
        }

        await using (var work = await first.Backend.BeginUnitOfWorkAsync(CancellationToken.None))
        {
            var (results, wrote, _) = await service.CommitManyAsync(work, group, inbox: null, CancellationToken.None, optimistic: false);
            Assert.False(wrote);
            Assert.Equal(LedgerRejection.PendingAlreadyResolved, results[0].Rejection);
        }

        // Through the public call the same: the answer comes from the stored state, nothing moves.
        Assert.Equal(LedgerRejection.PendingAlreadyResolved, (await first.Ledger.PostPendingAsync(pending.Id)).Rejection);
        var balance = Assert.Single(await first.Ledger.GetBalancesAsync(buyer.Id));
        Assert.Equal((0L, 0L), (balance.CreditsPending, balance.CreditsPosted));
        Assert.Equal(TransferState.PendingVoided, (await first.Ledger.GetTransferAsync(pending.Id))!.State);
        // (No ledger verify here: the test above writes documents without events on purpose, in the same database.)
        // The transfer's stream holds its commit and the other process's void, nothing of the refused post.
        var stream = await first.Events.ReadStreamAsync(LedgerEvent.TransferStream(pending.Id));
        Assert.Equal([LedgerEvent.TransferCommittedType, LedgerEvent.PendingVoidedType], stream.Select(e => e.Type));
    }
}
