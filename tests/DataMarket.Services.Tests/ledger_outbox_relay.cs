using DataMarket.Contracts;
using DataMarket.Ledger.Model;
using DataMarket.ServiceDefaults.Ledger;
using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Services.Tests;

public sealed class ledger_outbox_relay : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("datamarket-ledger-relay-").FullName;
    private ServiceProvider _provider = null!;
    private ITestHarness _harness = null!;

    public async Task InitializeAsync()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Ledger:Store"] = "Sqlite",
            ["ConnectionStrings:Ledger"] = $"Data Source={Path.Combine(_folder, "ledger.db")};Pooling=false",
        }).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddLedger(configuration);
        services.AddMassTransitTestHarness();
        _provider = services.BuildServiceProvider(validateScopes: true);
        _harness = _provider.GetRequiredService<ITestHarness>();
        // The relay publishes from a background pass, not from a consumer, so the harness sees no traffic until the
        // first commit and relay pass are done; its default 1.2 s of quiet (permanent once reached) is too short for a
        // cold start on a busy machine. The check that nothing else was published waits out the quiet: keep it short.
        _harness.TestInactivityTimeout = TimeSpan.FromSeconds(10);
        await _harness.Start();
    }

    public async Task DisposeAsync()
    {
        await _harness.Stop();
        await _provider.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task Should_publish_events_committed_with_a_transfer_using_the_outbox_row_id()
    {
        var database = await _provider.GetRequiredService<LedgerHost>().Database;
        var settled = new PurchaseSettled
        {
            PurchaseId = Guid.NewGuid(),
            BuyerId = "buyer-1",
            SellerId = "seller-1",
            SellerAmount = 900,
            FeeAmount = 100,
            Currency = "EUR",
            SettledAt = DateTimeOffset.UtcNow,
        };
        var charge = new TransferRequest { Id = Guid.NewGuid(), Debit = AccountRef.PaymentClearing("EUR"), Credit = AccountRef.Buyer("buyer-1", "EUR"), Amount = 1_000, Code = TransferCode.Charge };

        var result = await database.Ledger.CommitAsync([charge], new LedgerCommandOptions { Publish = [settled] });

        Assert.Equal(LedgerStatus.Committed, result.Status);
        Assert.True(await _harness.Published.Any<PurchaseSettled>(m => m.Context.Message.PurchaseId == settled.PurchaseId));
        var published = _harness.Published.Select<PurchaseSettled>().Single();
        Assert.Equal(settled, published.Context.Message);
        Assert.NotNull(published.Context.MessageId);
    }
}
