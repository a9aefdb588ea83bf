using System.Net.Http.Headers;
using System.Text;
using DataMarket.Catalog.Model;
using DataMarket.Ledger.Model;
using DataMarket.ServiceDefaults.Ledger;
using DataMarket.ServiceDefaults.Security;
using DataMarket.ServiceDefaults.Storage;
using DataMarket.SettlementService.Application;
using DataMarket.SettlementService.Infrastructure;
using DataMarket.Valuation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Settlement.Tests;

/// <summary>
/// Real time plus an offset the test moves forward by hand (quote expiry, refund windows). It keeps running, because
/// Quartz reads the same clock from the container and a stopped clock would never reach a cron trigger's next slot.
/// </summary>
public sealed class ManualClock : TimeProvider
{
    private TimeSpan _offset;

    public void Advance(TimeSpan by) => _offset += by;

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + _offset;
}

/// <summary>
/// The settlement service as it runs inside <c>serve</c>: the catalog's database (SQLite, seeded by the test), the
/// ledger and the settlement store in SQLite under a temporary folder, the sandbox rails, gateway-signed tokens, and
/// a real Kestrel on a loopback port.
/// </summary>
public sealed class SettlementSite : IAsyncDisposable
{
    public static readonly ServiceAuthOptions Auth = new() { SigningKey = ServiceAuthOptions.NewSigningKey(), TokenLifetime = TimeSpan.FromMinutes(30) };
    private static readonly ServiceTokenIssuer Tokens = new(Auth, TimeProvider.System);

    private readonly string _directory;

    private SettlementSite(WebApplication app, string directory, ManualClock clock)
    {
        App = app;
        _directory = directory;
        Clock = clock;
        Http = new HttpClient { BaseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()) };
    }

    public WebApplication App { get; }

    public ManualClock Clock { get; }

    public HttpClient Http { get; }

    public IServiceProvider Services => App.Services;

    /// <summary>Starts a site; given the <paramref name="directory"/> of a stopped one, a restart of that process on its files.</summary>
    public static async Task<SettlementSite> StartAsync(IDictionary<string, string?>? settings = null, string? directory = null)
    {
        directory ??= Path.Combine(Path.GetTempPath(), $"datamarket-settlement-site-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(directory);
        var clock = new ManualClock();
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var configuration = new Dictionary<string, string?>
        {
            ["Bus:Transport"] = "InMemory",
            ["Catalog:Database"] = "Sqlite",
            ["ConnectionStrings:Catalog"] = $"Data Source={Path.Combine(directory, "catalog.db")}",
            ["Storage:BlobRoot"] = Path.Combine(directory, "blobs"),
            ["Ledger:Store"] = "Sqlite",
            ["ConnectionStrings:Ledger"] = $"Data Source={Path.Combine(directory, "ledger.db")}",
            ["Settlement:Store"] = "Sqlite",
            ["ConnectionStrings:Settlement"] = $"Data Source={Path.Combine(directory, "settlement.db")}",
            ["Settlement:ScheduleEnabled"] = "false",
            ["Settlement:Scheduler:InstanceName"] = $"test-{Guid.NewGuid():N}",
            ["Auth:SigningKey"] = Auth.SigningKey,
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            configuration[key] = value;
        }

        builder.Configuration.AddInMemoryCollection(configuration);
        builder.Services.AddSingleton<TimeProvider>(clock);
        builder.Services.AddDataMarketDefaults(builder.Configuration);
        builder.Services.AddCatalog(builder.Configuration);
        builder.Services.AddSettlement(builder.Configuration);
        builder.Services.AddServiceAuthentication(builder.Configuration);
        builder.Services.AddDataMarketBus(builder.Configuration);
        var app = builder.Build();
        app.UseProblemResponses();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapDefaultEndpoints();
        app.MapSettlementApi();
        await app.StartAsync();
        return new SettlementSite(app, directory, clock);
    }

    public HttpRequestMessage Request(HttpMethod method, string path, string actor, string role, string? json = null, string? idempotencyKey = null)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Tokens.Issue(actor, role, actor));
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        return request;
    }

    public Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string actor, string role, string? json = null, string? idempotencyKey = null) =>
        Http.SendAsync(Request(method, path, actor, role, json, idempotencyKey));

    /// <summary>A listed listing of <paramref name="sellerId"/> whose data is <paramref name="csv"/>.</summary>
    public async Task<Guid> AddListingAsync(string sellerId, string csv)
    {
        var blobs = Services.GetRequiredService<ContentAddressedBlobStore>();
        using var staged = await blobs.StageAsync(new MemoryStream(Encoding.UTF8.GetBytes(csv)));
        var blobId = staged.Commit();
        await using var scope = Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CatalogDbContext>();
        var listing = new Listing
        {
            Id = Guid.NewGuid(), SellerId = sellerId, Name = $"{sellerId} data", Status = ListingStatus.Listed, BlobId = blobId, Format = "csv",
            LabelColumn = "label", Rows = csv.Count(c => c == '\n') - 1, Features = 1, CreatedAt = DateTime.UtcNow, ListedAt = DateTime.UtcNow,
        };
        db.Listings.Add(listing);
        await db.SaveChangesAsync();
        return listing.Id;
    }

    /// <summary>A completed valuation of the bundle for the buyer, with the given per-seller values.</summary>
    public async Task<Guid> AddValuationAsync(string buyerId, IReadOnlyList<Guid> listingIds, IReadOnlyList<(string Seller, double Value)> values, string method = ValuationMethods.TieredKnnShapley)
    {
        await using var scope = Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CatalogDbContext>();
        var id = Guid.NewGuid();
        db.Valuations.Add(new ValuationRun
        {
            Id = id, BuyerId = buyerId, TaskId = Guid.NewGuid(), Method = method, K = 5, ListingIds = string.Join(",", listingIds),
            Status = ValuationStatus.Completed, TestPoints = 10, CompletedTestPoints = 10, TotalUtility = values.Sum(v => v.Value),
            RequestedAt = DateTime.UtcNow, FinishedAt = DateTime.UtcNow,
            Sellers = values.Select(v => new ValuationSellerValue { ValuationId = id, SellerId = v.Seller, Points = 5, Value = v.Value, StandardError = 0.01 }).ToList(),
        });
        await db.SaveChangesAsync();
        return id;
    }

    /// <summary>
    /// One purchase through the market service (its charge through the configured rails): a listing per seller with
    /// terms 500..20,000 cents, a tiered valuation with the given values, a quote at theta 10,000, and the purchase.
    /// </summary>
    public async Task<PurchaseView> SellAsync(params (string Seller, double Value)[] values)
    {
        var buyer = $"buyer-{Guid.NewGuid():N}";
        var listings = new List<Guid>();
        await using var scope = Services.CreateAsyncScope();
        var market = scope.ServiceProvider.GetRequiredService<MarketService>();
        foreach (var (seller, _) in values)
        {
            var listing = await AddListingAsync(seller, "x,label\n1,0\n");
            await market.PublishTermsAsync(seller, listing, new PublishTermsRequest(500, 20_000, null), CancellationToken.None);
            listings.Add(listing);
        }

        var valuation = await AddValuationAsync(buyer, listings, values);
        var quote = await market.CreateQuoteAsync(buyer, new CreateQuoteRequest(valuation, 10_000m, null), CancellationToken.None);
        return await market.PurchaseAsync(buyer, new CreatePurchaseRequest(quote.Id), null, CancellationToken.None);
    }

    public async Task<IReadOnlyList<DestinationView>> RegisterDestinationsAsync(params string[] sellers)
    {
        await using var scope = Services.CreateAsyncScope();
        var market = scope.ServiceProvider.GetRequiredService<MarketService>();
        var registered = new List<DestinationView>();
        foreach (var seller in sellers)
        {
            registered.Add(await market.RegisterDestinationAsync(seller, CancellationToken.None));
        }

        return registered;
    }

    public async Task<ILedger> LedgerAsync() => (await Services.GetRequiredService<LedgerHost>().Database).Ledger;

    public async Task<IReadOnlyList<AccountBalance>> BalancesAsync() => await (await LedgerAsync()).GetBalancesAsync();

    public async Task<bool> LedgerVerifiesAsync() => (await (await Services.GetRequiredService<LedgerHost>().Database).VerifyAsync()).Passed;

    public SettlementOptions Options => Services.GetRequiredService<SettlementOptions>();

    public string Directory => _directory;

    /// <summary>Stop without deleting the files, for a restart on them.</summary>
    public bool KeepFiles { get; set; }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (KeepFiles)
        {
            return;
        }

        try
        {
            System.IO.Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A file still held open by a finalizing connection stays in the temporary folder; nothing depends on it.
        }
    }
}
