using DataMarket.Ledger.Model;
using DataMarket.ServiceDefaults.Ledger;
using DataMarket.Settlement.Postings;
using DataMarket.Settlement.Split;
using DataMarket.SettlementService.Application;
using DataMarket.SettlementService.Infrastructure;
using DataMarket.SettlementService.Jobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Quartz;

namespace DataMarket.Settlement.Tests;

/// <summary>
/// Two settlement nodes on one PostgreSQL database, with Quartz's clustered job store: both are told to run the same
/// period, and each also runs it directly at the same time. Every seller is paid exactly once, in the ledger and at
/// the provider (the sandbox, or the fake Stripe both nodes call), the reconciliation is clean and the ledger verifies.
/// </summary>
public sealed class two_scheduler_nodes_on_postgres : IAsyncLifetime
{
    /// <summary>DATAMARKET_TEST_POSTGRES, else the local default; every PostgreSQL test of this project uses it.</summary>
    internal static readonly string ConnectionString =
        Environment.GetEnvironmentVariable("DATAMARKET_TEST_POSTGRES") is { Length: > 0 } value
            ? value
            : "Host=127.0.0.1;Port=5432;Username=datamarket;Password=datamarket;Database=datamarket";

    private const string Period = "2026-10";
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..12];
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"datamarket-settlement-nodes-{Guid.NewGuid():N}");
    private IHost? _first;
    private IHost? _second;
    private FakeStripe? _stripe;

    private string LedgerSchema => $"ledger_h12_{_suffix}";

    private string SettlementSchema => $"settlement_h12_{_suffix}";

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var node in new[] { _second, _first }.OfType<IHost>())
        {
            await node.StopAsync();
            node.Dispose();
        }

        if (_stripe is not null)
        {
            await _stripe.DisposeAsync();
        }

        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {LedgerSchema} CASCADE; DROP SCHEMA IF EXISTS {SettlementSchema} CASCADE", connection);
        await drop.ExecuteNonQueryAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Theory]
    [InlineData("Sandbox")]
    [InlineData("Stripe")]
    public async Task both_nodes_fire_the_same_period_and_every_seller_is_paid_once(string rails)
    {
        var settings = new Dictionary<string, string?>();
        if (rails == "Stripe")
        {
            // The sale below goes straight to the ledger, so the platform's Stripe balance is funded by hand.
            _stripe = await FakeStripe.StartAsync();
            _stripe.PlatformBalance = 30_000;
            settings = new Dictionary<string, string?>(_stripe.Settings());
        }

        // One after the other: the first provisions Quartz's tables, the second finds them.
        _first = await StartNodeAsync(settings);
        _second = await StartNodeAsync(settings);
        string[] sellers = ["seller-a", "seller-b", "seller-c"];
        var ledger = (await _first.Services.GetRequiredService<LedgerHost>().Database).Ledger;
        var split = RevenueSplit.Allocate(30_000, new FeePolicy(0.1m, 50), [new ValuedSeller("seller-a", 0.5), new ValuedSeller("seller-b", 0.3), new ValuedSeller("seller-c", 0.2)]);
        var purchase = Guid.NewGuid();
        var lines = PurchasePostings.Sale(purchase, "buyer-1", "USD", split).Concat(PurchasePostings.Release(purchase, "USD", split)).Select(LedgerAccess.ToRequest).ToList();
        Assert.True((await ledger.CommitAsync(lines)).Succeeded);
        await using (var scope = _first.Services.CreateAsyncScope())
        {
            foreach (var seller in sellers)
            {
                await scope.ServiceProvider.GetRequiredService<MarketService>().RegisterDestinationAsync(seller, CancellationToken.None);
            }
        }

        await _first.Services.GetRequiredService<SettlementScheduler>().TriggerAsync(Period, CancellationToken.None);
        await _second.Services.GetRequiredService<SettlementScheduler>().TriggerAsync(Period, CancellationToken.None);
        var direct = await Task.WhenAll(
            Task.Run(() => _first.Services.GetRequiredService<SettlementRunner>().RunAsync(Period, "first", CancellationToken.None)),
            Task.Run(() => _second.Services.GetRequiredService<SettlementRunner>().RunAsync(Period, "second", CancellationToken.None)));
        await WaitForScheduledRunsAsync(2);

        var run = (await _second.Services.GetRequiredService<SettlementRunner>().GetAsync(Period, CancellationToken.None))!;
        Assert.Equal("completed", run.Status);
        Assert.All(direct, d => Assert.Equal("completed", d.Status));
        Assert.True(run.Reconciliation!.Clean, string.Join("; ", run.Reconciliation.Mismatches));
        Assert.Equal(sellers, run.Payouts.Select(p => p.SellerId));
        Assert.All(run.Payouts, p => Assert.Equal("paid", p.Status));

        var transfers = await _first.Services.GetRequiredService<IPaymentRails>().ListTransfersAsync(Period, CancellationToken.None);
        Assert.Equal(sellers.Length, transfers.Count);
        if (_stripe is not null)
        {
            Assert.Equal(sellers.Length, _stripe.TransfersIn(Period).Count);
            Assert.Equal(split.Shares.Sum(s => s.Amount), _stripe.AccountBalances.Values.Sum());
        }

        foreach (var payout in run.Payouts)
        {
            var share = split.Shares.Single(s => s.SellerId == payout.SellerId).Amount;
            Assert.Equal(share, Assert.Single(transfers, t => t.IdempotencyKey == payout.IdempotencyKey).Amount);
            var recorded = await ledger.GetTransferAsync(payout.LedgerTransferId);
            Assert.Equal(TransferState.PendingPosted, recorded!.State);
            Assert.Equal(share, recorded.Amount);
        }

        var balances = await ledger.GetBalancesAsync();
        Assert.All(balances.Where(b => b.Kind == AccountKind.SellerPayable), b => Assert.Equal(0, b.PostedBalance));
        Assert.Equal(0, balances.Single(b => b.Kind == AccountKind.PayoutsInTransit).PostedBalance);
        Assert.True((await (await _first.Services.GetRequiredService<LedgerHost>().Database).VerifyAsync()).Passed);
    }

    /// <summary>Both on-demand triggers fired somewhere in the cluster (on either node) and their runs returned.</summary>
    private async Task WaitForScheduledRunsAsync(int expected)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (true)
        {
            var executed = 0;
            foreach (var node in new[] { _first!, _second! })
            {
                var scheduler = await node.Services.GetRequiredService<ISchedulerFactory>().GetScheduler();
                executed += (int)(await scheduler.GetMetadata()).JobsExecuted;
            }

            if (executed >= expected)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"only {executed} of {expected} scheduled settlement runs executed within two minutes");
            await Task.Delay(100);
        }
    }

    private async Task<IHost> StartNodeAsync(IDictionary<string, string?> settings)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Bus:Transport"] = "InMemory",
            ["Catalog:Database"] = "Sqlite",
            ["ConnectionStrings:Catalog"] = $"Data Source={Path.Combine(_directory, "catalog.db")}",
            ["Storage:BlobRoot"] = Path.Combine(_directory, "blobs"),
            ["Ledger:Store"] = "Postgres",
            ["ConnectionStrings:Ledger"] = ConnectionString,
            ["Ledger:Schema"] = LedgerSchema,
            ["Settlement:Store"] = "Postgres",
            ["ConnectionStrings:Settlement"] = ConnectionString,
            ["Settlement:Schema"] = SettlementSchema,
            ["Settlement:ScheduleEnabled"] = "false",
            ["Settlement:Scheduler:PostgresConnectionString"] = ConnectionString,
            ["Settlement:Scheduler:InstanceName"] = $"settlement-test-{_suffix}",
            ["Logging:LogLevel:Default"] = "Warning",
        });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddDataMarketDefaults(builder.Configuration);
        builder.Services.AddSettlement(builder.Configuration);
        builder.Services.AddDataMarketBus(builder.Configuration);
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }
}
