using System.Net.Http.Headers;
using DataMarket.Cli.Demo;
using DataMarket.Gateway.Application;
using DataMarket.ServiceDefaults.Security;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Cli.Tests;

/// <summary>
/// <c>datamarket serve</c> as it runs for a user: the gateway on a free loopback port in front of the services (SQLite,
/// in-memory bus), with a data folder of its own, a small upload limit so the size checks are cheap, and a low
/// valuation-request limit so the rate limiter can be seen.
/// </summary>
public sealed class EmbeddedServer : IAsyncLifetime
{
    public const long UploadLimit = 64 * 1024;
    public const int ValuationRequestsPerMinute = 10;

    private readonly TempFolder _folder = new();
    private EmbeddedSite _site = null!;

    public string BlobRoot => Path.Combine(_folder.Path, "blobs");

    public Uri Address => _site.Address;

    public Uri ServicesAddress => _site.ServicesAddress;

    public async Task InitializeAsync()
    {
        var limit = UploadLimit.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _site = await EmbeddedSite.StartAsync(_folder.Path, "http://127.0.0.1:0", new Dictionary<string, string?>
        {
            ["Catalog:MaxUploadBytes"] = limit,
            ["Gateway:MaxUploadBytes"] = limit,
            ["Gateway:ValuationRequestsPerMinute"] = ValuationRequestsPerMinute.ToString(System.Globalization.CultureInfo.InvariantCulture),
            // The tests' callback receivers listen on plain http on loopback.
            ["Catalog:Callbacks:AllowHttp"] = "true",
            ["Catalog:Callbacks:AllowPrivateAddresses"] = "true",
        });
    }

    /// <summary>A client signed in with a new account's API key; the role is the name's first word (seller-..., buyer-...).</summary>
    public async Task<Account> SignUpAsync(string name)
    {
        var role = name.Split('-')[0];
        Assert.Contains(role, Roles.All);
        await using var scope = _site.Gateway.Services.CreateAsyncScope();
        var accounts = scope.ServiceProvider.GetRequiredService<AccountService>();
        // Account names are unique; a theory's cases each get their own account.
        var account = await accounts.CreateAccountAsync("test", role, $"{name}-{Guid.NewGuid():N}"[..Math.Min(100, name.Length + 33)], CancellationToken.None);
        var key = await accounts.CreateApiKeyAsync(account.Id, "test key", CancellationToken.None);
        return new Account(account.Id, key.Info.Id, key.Key, WithKey(key.Key));
    }

    /// <summary>A new account that signs in to the web UI with a password (and holds an API key for setting up data).</summary>
    public async Task<WebLogin> WebLoginAsync(string role)
    {
        await using var scope = _site.Gateway.Services.CreateAsyncScope();
        var accounts = scope.ServiceProvider.GetRequiredService<AccountService>();
        var name = $"{role}-{Guid.NewGuid():N}"[..(role.Length + 13)];
        var password = $"pw-{Guid.NewGuid():N}";
        var account = await accounts.CreateAccountAsync("test", role, name, CancellationToken.None);
        await accounts.SetPasswordAsync("test", account.Id, password, CancellationToken.None);
        var key = await accounts.CreateApiKeyAsync(account.Id, "test key", CancellationToken.None);
        return new WebLogin(name, password, new Account(account.Id, key.Info.Id, key.Key, WithKey(key.Key)));
    }

    /// <summary>The id of the account with this name (one made through the sign-up page).</summary>
    public async Task<string> AccountIdAsync(string name)
    {
        await using var scope = _site.Gateway.Services.CreateAsyncScope();
        var account = await scope.ServiceProvider.GetRequiredService<AccountService>().FindByNameAsync(name, CancellationToken.None);
        return account?.Id ?? throw new InvalidOperationException($"no account named {name}");
    }

    /// <summary>How many test tasks, valuations and listings (by status) the catalog holds for an account.</summary>
    public async Task<(int Tasks, int Valuations, IReadOnlyList<string> Listings)> CatalogHoldingsAsync(string accountId)
    {
        await using var scope = _site.Services.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DataMarket.Catalog.Model.CatalogDbContext>();
        return (
            await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(db.TestTasks, t => t.BuyerId == accountId),
            await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(db.Valuations, v => v.BuyerId == accountId),
            (await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.ToListAsync(db.Listings.Where(l => l.SellerId == accountId)))
                .Select(l => $"{l.Status} {l.Name}").Order(StringComparer.Ordinal).ToList());
    }

    /// <summary>The gateway's audit log, newest first.</summary>
    public async Task<IReadOnlyList<DataMarket.Gateway.Model.AuditEntry>> ReadAuditAsync()
    {
        await using var scope = _site.Gateway.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AccountService>().ReadAuditAsync(1000, CancellationToken.None);
    }

    public async Task<HttpClient> Client(string name) => (await SignUpAsync(name)).Http;

    public HttpClient Anonymous() => new() { BaseAddress = Address };

    public HttpClient WithKey(string key)
    {
        var client = Anonymous();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    public string[] BlobFiles() =>
        Directory.Exists(BlobRoot) ? Directory.GetFiles(BlobRoot, "*", SearchOption.AllDirectories).Order().ToArray() : [];

    public async Task DisposeAsync()
    {
        await _site.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _folder.Dispose();
    }

    public sealed record Account(string Id, string KeyId, string Key, HttpClient Http);

    public sealed record WebLogin(string Name, string Password, Account Account);

    public static StringContent Text(string csv) => new(csv, System.Text.Encoding.UTF8, "text/csv");

    public static async Task<Guid> CreateListingAsync(HttpClient client, string name)
    {
        var response = await System.Net.Http.Json.HttpClientJsonExtensions.PostAsJsonAsync(client, "/api/listings", new { name, description = "test" });
        Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
        return (await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync<System.Text.Json.JsonElement>(response.Content)).GetProperty("id").GetGuid();
    }
}
