using System.Collections.Concurrent;
using DataMarket.Contracts;
using DataMarket.ServiceDefaults.Ledger;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Integration.Tests;

/// <summary>
/// The ledger worker from its own Program, on the real broker and a real PostgreSQL ledger: a command
/// delivered twice moves money once, and the answer comes back through the ledger's outbox.
/// </summary>
[Collection(MarketCollection.Name)]
public sealed class ledger_over_rabbitmq(MarketFixture market) : IAsyncLifetime
{
    private readonly ConcurrentQueue<TransfersCommitted> _committed = new();
    private readonly ConcurrentQueue<TransfersRejected> _rejected = new();
    private IBusControl _client = null!;

    public async Task InitializeAsync()
    {
        // A separate client process would look like this: its own bus, its own temporary answer queue.
        _client = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(new Uri(MarketFixture.RabbitMqUri));
            cfg.ReceiveEndpoint($"{market.EndpointPrefix}-ledger-answers", endpoint =>
            {
                endpoint.AutoDelete = true;
                endpoint.Durable = false;
                endpoint.Handler<TransfersCommitted>(context =>
                {
                    _committed.Enqueue(context.Message);
                    return Task.CompletedTask;
                });
                endpoint.Handler<TransfersRejected>(context =>
                {
                    _rejected.Enqueue(context.Message);
                    return Task.CompletedTask;
                });
            });
        });
        await _client.StartAsync();
    }

    public async Task DisposeAsync() => await _client.StopAsync();

    private static TransferLine Line(string debit, string credit, long amount, string code) => new()
    {
        TransferId = Guid.NewGuid(),
        DebitAccount = debit,
        CreditAccount = credit,
        Amount = amount,
        Code = code,
    };

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task the_ledger_worker_reports_ready_once_its_ledger_is_open()
    {
        var response = await market.Ledger.CreateClient().GetAsync("/health");

        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Healthy", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task a_purchase_sent_twice_with_one_message_id_moves_money_once()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var (buyer, seller) = ($"buyer:it-{run}:USD", $"seller_held:it-{run}:USD");
        var purchase = new CommitTransfers
        {
            CommandId = Guid.NewGuid(),
            Actor = "integration-test",
            Transfers =
            [
                Line("payment_clearing:platform:USD", buyer, 10_000, "charge"),
                Line(buyer, seller, 8_500, "allocation"),
                Line(buyer, "platform_fees:platform:USD", 1_500, "platform_fee"),
            ],
        };
        var messageId = NewId.NextGuid();

        await _client.Publish(purchase, context => context.MessageId = messageId);
        await _client.Publish(purchase, context => context.MessageId = messageId);
        var overdraft = new CommitTransfers { CommandId = Guid.NewGuid(), Transfers = [Line(buyer, seller, 1, "allocation")] };
        await _client.Publish(overdraft);

        await WaitUntilAsync(() => _committed.Any(c => c.CommandId == purchase.CommandId), "the purchase's answer");
        await WaitUntilAsync(() => _rejected.Any(r => r.CommandId == overdraft.CommandId), "the overdraft's rejection");
        await Task.Delay(500); // room for a second answer to arrive, if the duplicate had been applied

        Assert.Single(_committed, c => c.CommandId == purchase.CommandId);
        Assert.Equal("exceeds_balance", Assert.Single(_rejected, r => r.CommandId == overdraft.CommandId).Reason);
        var database = await market.Ledger.Services.GetRequiredService<LedgerHost>().Database;
        Assert.Equal("postgresql", database.Provider);
        var balances = (await database.Ledger.GetBalancesAsync()).Where(b => b.Owner == $"it-{run}").ToDictionary(b => b.AccountId, b => b.PostedBalance);
        Assert.Equal(0, balances[buyer]);
        Assert.Equal(8_500, balances[seller]);
        var report = await database.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
    }
}
