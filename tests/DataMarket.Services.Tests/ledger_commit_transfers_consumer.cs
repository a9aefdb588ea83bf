using DataMarket.Contracts;
using DataMarket.Ledger.Model;
using DataMarket.LedgerWorker.Consumers;
using DataMarket.ServiceDefaults.Ledger;
using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Services.Tests;

/// <summary>The ledger worker's consumer on MassTransit's test harness, over a real SQLite ledger.</summary>
public sealed class ledger_commit_transfers_consumer : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("datamarket-ledger-consumer-").FullName;
    private ServiceProvider _provider = null!;
    private ITestHarness _harness = null!;
    private readonly DeliveryCounter _deliveries = new();

    public async Task InitializeAsync()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Ledger:Store"] = "Sqlite",
            ["ConnectionStrings:Ledger"] = $"Data Source={Path.Combine(_folder, "ledger.db")};Pooling=false",
        }).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddLedgerWorker(configuration);
        services.AddMassTransitTestHarness(bus => bus.AddLedgerConsumers());
        _provider = services.BuildServiceProvider(validateScopes: true);
        _harness = _provider.GetRequiredService<ITestHarness>();
        // Published.Any waits for a message or for this long without bus activity; the default 1.2 s was shorter than a
        // consumer's start on a loaded 2-core machine, which read as "nothing published".
        _harness.TestInactivityTimeout = TimeSpan.FromSeconds(10);
        await _harness.Start();
        _harness.Bus.ConnectConsumeObserver(_deliveries);
    }

    public async Task DisposeAsync()
    {
        await _harness.Stop();
        await _provider.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    private static TransferLine Line(string debit, string credit, long amount, string code) => new()
    {
        TransferId = Guid.NewGuid(),
        DebitAccount = debit,
        CreditAccount = credit,
        Amount = amount,
        Code = code,
    };

    private static CommitTransfers Command(params TransferLine[] lines) => new() { CommandId = Guid.NewGuid(), Transfers = lines, Actor = "settlement" };

    private async Task<long> PostedBalanceAsync(string accountId)
    {
        var database = await _provider.GetRequiredService<LedgerHost>().Database;
        return (await database.Ledger.GetBalancesAsync(accountId)).SingleOrDefault()?.PostedBalance ?? 0;
    }

    /// <summary>Sends and waits until this delivery has been consumed (deliveries of one message id are counted).</summary>
    private async Task SendAsync(CommitTransfers command, Guid messageId)
    {
        var before = Deliveries(messageId);
        await _harness.Bus.Publish(command, context => context.MessageId = messageId);
        await WaitUntilAsync(() => Deliveries(messageId) > before, $"delivery {before + 1} of message {messageId}");
    }

    private int Deliveries(Guid messageId) => _deliveries.Count(messageId);

    /// <summary>Counts every finished consume, redeliveries of one message id included (the harness lists a message id once).</summary>
    private sealed class DeliveryCounter : IConsumeObserver
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<Guid, int> _counts = new();

        public int Count(Guid messageId) => _counts.GetValueOrDefault(messageId);

        public Task PreConsume<T>(ConsumeContext<T> context) where T : class => Task.CompletedTask;

        public Task PostConsume<T>(ConsumeContext<T> context) where T : class
        {
            if (context.Message is CommitTransfers && context.MessageId is { } id)
            {
                _counts.AddOrUpdate(id, 1, (_, n) => n + 1);
            }

            return Task.CompletedTask;
        }

        public Task ConsumeFault<T>(ConsumeContext<T> context, Exception exception) where T : class => Task.CompletedTask;
    }

    /// <summary>Answers of committed commands come from the outbox relay, a background loop: wait for them.</summary>
    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(20);
        }
    }

    private int Answers<T>(Guid commandId, Func<T, Guid> id)
        where T : class =>
        _harness.Published.Select<T>().Count(m => id(m.Context.Message) == commandId);

    [Fact]
    public async Task a_command_delivered_twice_moves_money_once_and_is_answered_once()
    {
        var command = Command(
            Line("payment_clearing:platform:USD", "buyer:ann:USD", 1_000, "charge"),
            Line("buyer:ann:USD", "seller_held:sam:USD", 850, "allocation"),
            Line("buyer:ann:USD", "platform_fees:platform:USD", 150, "platform_fee"));
        var messageId = NewId.NextGuid();

        await SendAsync(command, messageId);
        await SendAsync(command, messageId);
        await WaitUntilAsync(() => Answers<TransfersCommitted>(command.CommandId, m => m.CommandId) > 0, "the committed answer");
        await Task.Delay(300); // room for a second answer to show up, if there were one

        Assert.Equal(0, await PostedBalanceAsync("buyer:ann:USD"));
        Assert.Equal(850, await PostedBalanceAsync("seller_held:sam:USD"));
        Assert.Equal(150, await PostedBalanceAsync("platform_fees:platform:USD"));
        var answer = Assert.Single(_harness.Published.Select<TransfersCommitted>(), m => m.Context.Message.CommandId == command.CommandId);
        Assert.False(answer.Context.Message.AlreadyCommitted);
        Assert.Equal(command.Transfers.Select(t => t.TransferId), answer.Context.Message.TransferIds);
        Assert.False(_harness.Published.Select<TransfersRejected>().Any());
    }

    [Fact]
    public async Task the_same_transfers_under_a_new_message_are_answered_as_already_committed()
    {
        var command = Command(Line("payment_clearing:platform:EUR", "buyer:bea:EUR", 400, "charge"));

        await SendAsync(command, NewId.NextGuid());
        await SendAsync(command, NewId.NextGuid());
        await WaitUntilAsync(() => Answers<TransfersCommitted>(command.CommandId, m => m.CommandId) == 2, "both answers");

        Assert.Equal(400, await PostedBalanceAsync("buyer:bea:EUR"));
        var answers = _harness.Published.Select<TransfersCommitted>().Where(m => m.Context.Message.CommandId == command.CommandId).Select(m => m.Context.Message.AlreadyCommitted).ToList();
        Assert.Equal([false, true], answers.Order());
    }

    [Fact]
    public async Task a_rejected_command_stays_rejected_when_redelivered_after_the_buyer_is_funded()
    {
        var purchase = Command(Line("buyer:cal:USD", "seller_held:sam:USD", 500, "allocation"));
        var messageId = NewId.NextGuid();

        await SendAsync(purchase, messageId);
        await SendAsync(Command(Line("payment_clearing:platform:USD", "buyer:cal:USD", 2_000, "charge")), NewId.NextGuid());
        await SendAsync(purchase, messageId);
        await WaitUntilAsync(() => Answers<TransfersRejected>(purchase.CommandId, m => m.CommandId) == 2, "both rejections");

        Assert.Equal(2_000, await PostedBalanceAsync("buyer:cal:USD"));
        var rejections = _harness.Published.Select<TransfersRejected>().Where(m => m.Context.Message.CommandId == purchase.CommandId).ToList();
        Assert.Equal(2, rejections.Count);
        Assert.All(rejections, r => Assert.Equal("exceeds_balance", r.Context.Message.Reason));
        Assert.DoesNotContain(_harness.Published.Select<TransfersCommitted>(), m => m.Context.Message.CommandId == purchase.CommandId);
    }

    [Fact]
    public async Task a_malformed_command_is_rejected_naming_the_line_and_field_and_writes_nothing()
    {
        var command = Command(
            Line("payment_clearing:platform:USD", "buyer:dan:USD", 100, "charge"),
            Line("buyer-dan-USD", "seller_held:sam:USD", -5, "gift"));

        await SendAsync(command, NewId.NextGuid());
        await WaitUntilAsync(() => Answers<TransfersRejected>(command.CommandId, m => m.CommandId) == 1, "the rejection");

        var rejected = Assert.Single(_harness.Published.Select<TransfersRejected>(), m => m.Context.Message.CommandId == command.CommandId).Context.Message;
        Assert.Equal("invalid_command", rejected.Reason);
        Assert.Contains("Transfers[1].DebitAccount: 'buyer-dan-USD' is not an account id", rejected.Detail, StringComparison.Ordinal);
        Assert.Contains("Transfers[1].Amount", rejected.Detail, StringComparison.Ordinal);
        Assert.Contains("Transfers[1].Code: unknown code 'gift'", rejected.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("Transfers[0]", rejected.Detail, StringComparison.Ordinal);
        Assert.Equal(0, await PostedBalanceAsync("buyer:dan:USD"));
    }

    [Fact]
    public async Task an_already_committed_answer_is_given_again_when_its_message_is_redelivered()
    {
        var command = Command(Line("payment_clearing:platform:EUR", "buyer:eve:EUR", 250, "charge"));
        var resent = NewId.NextGuid();

        await SendAsync(command, NewId.NextGuid());
        await SendAsync(command, resent);
        await SendAsync(command, resent);
        await WaitUntilAsync(() => Answers<TransfersCommitted>(command.CommandId, m => m.CommandId) == 3, "three answers");

        var answers = _harness.Published.Select<TransfersCommitted>().Where(m => m.Context.Message.CommandId == command.CommandId).Select(m => m.Context.Message).ToList();
        Assert.Equal(2, answers.Count(a => a.AlreadyCommitted));
        // The repeated answers carry the original commit time, not the time of asking.
        var database = await _provider.GetRequiredService<LedgerHost>().Database;
        var recorded = (await database.Ledger.GetTransferAsync(command.Transfers[0].TransferId))!.CreatedAt;
        Assert.All(answers.Where(a => a.AlreadyCommitted), a => Assert.Equal(recorded, a.CommittedAt));
        Assert.Equal(250, await PostedBalanceAsync("buyer:eve:EUR"));
    }

    public static TheoryData<string, CommitTransfers> Malformed => new()
    {
        { "Transfers: name at least one transfer", new CommitTransfers { CommandId = Guid.NewGuid(), Transfers = null! } },
        { "Transfers[0]: a transfer line is missing", new CommitTransfers { CommandId = Guid.NewGuid(), Transfers = [null!] } },
        { "Transfers[0].DebitAccount: 'payment_clearing:mallory:USD' is not an account id", Command(Line("payment_clearing:mallory:USD", "buyer:fay:USD", 1, "charge")) },
        { "Transfers[0].CreditAccount: 'buyer: :EURO' is not an account id", Command(Line("payment_clearing:platform:EUR", "buyer: :EURO", 1, "charge")) },
        { "Transfers[0].CreditAccount: 'buyer:platform:USD' is not an account id", Command(Line("payment_clearing:platform:USD", "buyer:platform:USD", 1, "charge")) },
        { "Transfers[0].CreditAccount: 'buyer:gus:XYZ' is not an account id: Currency 'XYZ' is not a supported ISO 4217 code", Command(Line("payment_clearing:platform:USD", "buyer:gus:XYZ", 1, "charge")) },
        { "Transfers[0].CreditAccount: 'buyer:g\nus:USD' is not an account id: An owner id may not contain control characters", Command(Line("payment_clearing:platform:USD", "buyer:g\nus:USD", 1, "charge")) },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public async Task a_malformed_command_is_answered_with_a_rejection_not_a_fault(string expected, CommitTransfers command)
    {
        await _harness.Bus.Publish(command);
        await WaitUntilAsync(() => Answers<TransfersRejected>(command.CommandId, m => m.CommandId) == 1, "the rejection");

        var rejected = Assert.Single(_harness.Published.Select<TransfersRejected>(), m => m.Context.Message.CommandId == command.CommandId).Context.Message;
        Assert.Equal("invalid_command", rejected.Reason);
        Assert.Contains(expected, rejected.Detail, StringComparison.Ordinal);
        Assert.False(_harness.Published.Select<Fault<CommitTransfers>>().Any());
    }

    [Fact]
    public void lower_case_currencies_are_accepted_and_kept_upper_case_by_the_ledger()
    {
        var result = new CommitTransfersValidator().Validate(Command(Line("payment_clearing:platform:usd", "buyer:gil:usd", 1, "charge")));

        Assert.True(result.IsValid, string.Join("; ", result.Errors));
        Assert.Equal("buyer:gil:USD", AccountRef.Parse("buyer:gil:usd").Id);
    }

    [Fact]
    public void wire_names_of_codes_and_rejections_are_snake_case()
    {
        Assert.Equal(TransferCode.PlatformFee, CommitTransfersValidator.Codes["platform_fee"]);
        Assert.Equal(TransferCode.PayoutSettlement, CommitTransfersValidator.Codes["payout_settlement"]);
        Assert.Equal("id_reused_with_different_content", CommitTransfersConsumer.ReasonName(LedgerRejection.IdReusedWithDifferentContent));
    }
}
