using System.Collections.Concurrent;
using System.Text.Json;
using DataMarket.Contracts;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Outbox;
using DataMarket.Ledger.Tests.Harness;

namespace DataMarket.Ledger.Tests.Outbox;

/// <summary>
/// Exactly-once effects from at-least-once delivery: the outbox is written with the ledger events, the
/// relay survives crashes, and the consumer's inbox absorbs every redelivery.
/// </summary>
public abstract class outbox_and_inbox_faults<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : LedgerDatabaseFixture
{
    private const string Usd = "USD";

    /// <summary>Stands in for the process dying: nothing after it in the relay runs, its transaction never commits.</summary>
    private sealed class SimulatedCrash : OperationCanceledException;

    private sealed class RecordingPublisher(Func<OutboxMessage, Task>? deliver = null, bool crashAfterPublish = false) : IOutboxPublisher
    {
        public ConcurrentQueue<OutboxMessage> Published { get; } = new();

        public async Task PublishAsync(OutboxMessage message, CancellationToken cancellationToken)
        {
            Published.Enqueue(message);
            if (deliver is not null)
            {
                await deliver(message);
            }

            if (crashAfterPublish)
            {
                throw new SimulatedCrash();
            }
        }
    }

    private static PurchaseSettled Settled(string buyer, long fee) => new()
    {
        PurchaseId = Guid.NewGuid(),
        BuyerId = buyer,
        SellerId = "seller-x",
        SellerAmount = 100,
        FeeAmount = fee,
        Currency = Usd,
        SettledAt = DateTimeOffset.UtcNow,
    };

    private static TransferRequest Charge(string buyer, long amount) => new()
    {
        Id = Guid.NewGuid(),
        Debit = AccountRef.PaymentClearing(Usd),
        Credit = AccountRef.Buyer(buyer, Usd),
        Amount = amount,
        Code = TransferCode.Charge,
    };

    /// <summary>
    /// A consumer whose effect is not idempotent by itself (a fresh transfer id each time): a loyalty
    /// rebate to the buyer. Only the inbox stops a redelivery from paying twice.
    /// </summary>
    private Func<OutboxMessage, Task> RebateConsumer(LedgerDatabase database) => async message =>
    {
        var settled = JsonSerializer.Deserialize<PurchaseSettled>(message.Payload, new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
        var result = await database.Ledger.CommitAsync(
            new TransferRequest
            {
                Id = Guid.NewGuid(),
                Debit = AccountRef.PlatformFees(Usd),
                Credit = AccountRef.Buyer(settled.BuyerId, Usd),
                Amount = 1,
                Code = TransferCode.Correction,
            },
            new LedgerCommandOptions { Inbox = new InboxReceipt("rebates", message.MessageId), CausationId = message.MessageId.ToString() });
        Assert.True(result.Succeeded, result.Detail);
    };

    private async Task DrainAsync(OutboxRelay relay)
    {
        while (await relay.DispatchPendingAsync() > 0)
        {
        }
    }

    [Fact]
    public async Task integration_events_commit_with_the_ledger_and_not_without_it()
    {
        var relay = new OutboxRelay(fixture.Database, new RecordingPublisher());
        await DrainAsync(relay);
        var buyer = "buyer-" + Guid.NewGuid().ToString("N")[..8];

        await fixture.Database.Ledger.CommitAsync(Charge(buyer, 500), new LedgerCommandOptions { Publish = [Settled(buyer, 5)] });
        var rejected = await fixture.Database.Ledger.CommitAsync(
            new TransferRequest { Id = Guid.NewGuid(), Debit = AccountRef.Buyer(buyer, Usd), Credit = AccountRef.Refunds(Usd), Amount = 9_999, Code = TransferCode.Refund },
            new LedgerCommandOptions { Publish = [Settled(buyer, 6)] });

        Assert.Equal(LedgerStatus.Rejected, rejected.Status);
        var waiting = await relay.GetUndispatchedAsync();
        var message = Assert.Single(waiting);
        Assert.Equal(typeof(PurchaseSettled).FullName, message.Type);
        Assert.Equal(5, JsonSerializer.Deserialize<PurchaseSettled>(message.Payload, new JsonSerializerOptions(JsonSerializerDefaults.Web))!.FeeAmount);
    }

    [Fact]
    public async Task a_crash_between_commit_and_publish_is_delivered_once_after_restart()
    {
        await DrainAsync(new OutboxRelay(fixture.Database, new RecordingPublisher()));
        var buyer = "buyer-" + Guid.NewGuid().ToString("N")[..8];

        // The command commits; the process dies before its relay publishes anything.
        await using (var beforeCrash = await fixture.OpenAnotherAsync())
        {
            await beforeCrash.Ledger.CommitAsync(Charge(buyer, 500), new LedgerCommandOptions { Publish = [Settled(buyer, 5)] });
        }

        await using var restarted = await fixture.OpenAnotherAsync();
        var publisher = new RecordingPublisher();
        var relay = new OutboxRelay(restarted, publisher);
        await DrainAsync(relay);
        await DrainAsync(relay);

        var delivered = Assert.Single(publisher.Published);
        Assert.Contains(buyer, delivered.Payload, StringComparison.Ordinal);
        Assert.Empty(await relay.GetUndispatchedAsync());
    }

    [Fact]
    public async Task a_crash_between_publish_and_mark_redelivers_and_the_inbox_absorbs_it()
    {
        await DrainAsync(new OutboxRelay(fixture.Database, new RecordingPublisher()));
        var buyer = "buyer-" + Guid.NewGuid().ToString("N")[..8];
        await fixture.Database.Ledger.CommitAsync(Charge(buyer, 500), new LedgerCommandOptions { Publish = [Settled(buyer, 5)] });
        await fixture.Database.Ledger.CommitAsync(
            new TransferRequest { Id = Guid.NewGuid(), Debit = AccountRef.PaymentClearing(Usd), Credit = AccountRef.PlatformFees(Usd), Amount = 100, Code = TransferCode.Correction });

        var crashing = new RecordingPublisher(RebateConsumer(fixture.Database), crashAfterPublish: true);
        await Assert.ThrowsAsync<SimulatedCrash>(() => new OutboxRelay(fixture.Database, crashing).DispatchPendingAsync());

        await using var restarted = await fixture.OpenAnotherAsync();
        var publisher = new RecordingPublisher(RebateConsumer(restarted));
        await DrainAsync(new OutboxRelay(restarted, publisher));

        // Published twice with the same message id, paid once.
        Assert.Equal(crashing.Published.Single().MessageId, publisher.Published.Single().MessageId);
        Assert.Equal(501, Assert.Single(await restarted.Ledger.GetBalancesAsync(AccountRef.Buyer(buyer, Usd).Id)).PostedBalance);
        var report = await restarted.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
    }

    [Fact]
    public async Task every_message_delivered_twice_changes_nothing_the_second_time()
    {
        await DrainAsync(new OutboxRelay(fixture.Database, new RecordingPublisher()));
        var buyers = Enumerable.Range(0, 5).Select(i => $"buyer-{i}-" + Guid.NewGuid().ToString("N")[..8]).ToArray();
        await fixture.Database.Ledger.CommitAsync(
            new TransferRequest { Id = Guid.NewGuid(), Debit = AccountRef.PaymentClearing(Usd), Credit = AccountRef.PlatformFees(Usd), Amount = 100, Code = TransferCode.Correction });
        foreach (var buyer in buyers)
        {
            await fixture.Database.Ledger.CommitAsync(Charge(buyer, 50), new LedgerCommandOptions { Publish = [Settled(buyer, 1)] });
        }

        var consume = RebateConsumer(fixture.Database);
        var twice = new RecordingPublisher(async message =>
        {
            await Task.WhenAll(consume(message), consume(message));
            await consume(message);
        });
        await DrainAsync(new OutboxRelay(fixture.Database, twice));

        Assert.Equal(buyers.Length, twice.Published.Count);
        foreach (var buyer in buyers)
        {
            Assert.Equal(51, Assert.Single(await fixture.Database.Ledger.GetBalancesAsync(AccountRef.Buyer(buyer, Usd).Id)).PostedBalance);
        }
    }

    [Fact]
    public async Task the_background_relay_delivers_in_order_and_stops_cleanly()
    {
        await DrainAsync(new OutboxRelay(fixture.Database, new RecordingPublisher()));
        var buyer = "buyer-" + Guid.NewGuid().ToString("N")[..8];
        for (var i = 1; i <= 5; i++)
        {
            await fixture.Database.Ledger.CommitAsync(Charge(buyer, i), new LedgerCommandOptions { Publish = [Settled(buyer, i)] });
        }

        var publisher = new RecordingPublisher();
        using var stop = new CancellationTokenSource();
        var relay = new OutboxRelay(fixture.Database, publisher, new OutboxRelayOptions { IdleDelay = TimeSpan.FromMilliseconds(10) });
        var running = relay.RunAsync(stop.Token);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (publisher.Published.Count < 5 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        await stop.CancelAsync();
        await running;
        Assert.Equal([1L, 2L, 3L, 4L, 5L], publisher.Published.Select(m => JsonSerializer.Deserialize<PurchaseSettled>(m.Payload, new JsonSerializerOptions(JsonSerializerDefaults.Web))!.FeeAmount));
        Assert.True(publisher.Published.Zip(publisher.Published.Skip(1)).All(p => p.First.Sequence < p.Second.Sequence));
    }
}

public sealed class outbox_and_inbox_faults_on_postgres(PostgresFixture fixture) : outbox_and_inbox_faults<PostgresFixture>(fixture);

public sealed class outbox_and_inbox_faults_on_sqlite(SqliteFixture fixture) : outbox_and_inbox_faults<SqliteFixture>(fixture);
