using DataMarket.Gateway.Application;
using DataMarket.ServiceDefaults.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace DataMarket.Cli.Demo;

/// <summary>A demo account, and the API key and web password <c>serve</c> issued for it this run.</summary>
public sealed record DemoAccount(string Role, string Name, string Id, string ApiKey, string Password);

/// <summary>
/// The embedded market behind its gateway, in one process: the services (catalog, valuation worker, ledger, settlement) listen on
/// a loopback port of their own and accept only gateway-signed tokens; the gateway is the only public address and
/// checks API keys exactly as in distributed mode. The signing key is made fresh for each run and never leaves memory.
/// </summary>
public sealed class EmbeddedSite : IAsyncDisposable
{
    public static readonly (string Role, string Name)[] DemoAccounts =
        [(Roles.Seller, "demo-seller"), (Roles.Buyer, "demo-buyer"), (Roles.Operator, "demo-operator")];

    private EmbeddedSite(WebApplication services, WebApplication gateway)
    {
        Services = services;
        Gateway = gateway;
    }

    public WebApplication Services { get; }

    public WebApplication Gateway { get; }

    public Uri Address => AddressOf(Gateway);

    /// <summary>The services' own loopback address (not public): health, and <c>/metrics</c> for a Prometheus scrape.</summary>
    public Uri ServicesAddress => AddressOf(Services);

    public static async Task<EmbeddedSite> StartAsync(
        string dataDirectory, string urls, IDictionary<string, string?>? settings = null, CancellationToken cancellationToken = default)
    {
        var shared = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>());
        shared.TryAdd("Auth:SigningKey", ServiceAuthOptions.NewSigningKey());

        var servicesBuilder = WebApplication.CreateBuilder();
        servicesBuilder.WebHost.UseUrls("http://127.0.0.1:0");
        EmbeddedMarket.Configure(servicesBuilder.Configuration, servicesBuilder.Services, dataDirectory, shared);
        servicesBuilder.Services.AddServiceAuthentication(servicesBuilder.Configuration);
        var services = servicesBuilder.Build();
        services.UseProblemResponses();
        services.UseAuthentication();
        services.UseAuthorization();
        services.MapDefaultEndpoints();
        services.MapMetrics();
        services.MapCatalogApi();
        services.MapSettlementApi();
        await services.StartAsync(cancellationToken);

        try
        {
            var gatewayBuilder = WebApplication.CreateBuilder();
            gatewayBuilder.WebHost.UseUrls(urls);
            var defaults = new Dictionary<string, string?>
            {
                ["Gateway:Database"] = "Sqlite",
                ["ConnectionStrings:Gateway"] = $"Data Source={Path.Combine(dataDirectory, "gateway.db")}",
                ["Storage:BlobRoot"] = Path.Combine(dataDirectory, "blobs"),
                ["Logging:LogLevel:Default"] = "Warning",
                // Cookies marked Secure would never come back over plain HTTP; over HTTPS they are Secure all the same.
                ["Gateway:SecureCookies"] = urls.StartsWith("https:", StringComparison.OrdinalIgnoreCase) ? "true" : "false",
            };
            gatewayBuilder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = defaults });
            gatewayBuilder.Configuration.AddInMemoryCollection(shared);
            // The services' address is this process's own loopback port, whatever the environment says.
            gatewayBuilder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Gateway:CatalogAddress"] = AddressOf(services).ToString(),
                ["Gateway:SettlementAddress"] = AddressOf(services).ToString(),
            });
            gatewayBuilder.Services.AddDataMarketDefaults(gatewayBuilder.Configuration);
            gatewayBuilder.Services.AddGateway(gatewayBuilder.Configuration);
            var gateway = gatewayBuilder.Build();
            gateway.UseGateway();
            gateway.MapDefaultEndpoints();
            gateway.MapGateway();
            await gateway.StartAsync(cancellationToken);
            return new EmbeddedSite(services, gateway);
        }
        catch
        {
            await services.StopAsync(CancellationToken.None);
            await services.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Makes the demo seller, buyer and operator when missing and gives each a fresh key named "serve" (older ones are
    /// revoked) and a fresh random web password (the previous run's stops working).
    /// </summary>
    public async Task<IReadOnlyList<DemoAccount>> IssueDemoKeysAsync(CancellationToken cancellationToken)
    {
        var issued = new List<DemoAccount>();
        foreach (var (role, name) in DemoAccounts)
        {
            await using var scope = Gateway.Services.CreateAsyncScope();
            var accounts = scope.ServiceProvider.GetRequiredService<AccountService>();
            var account = await accounts.FindByNameAsync(name, cancellationToken)
                ?? await accounts.CreateAccountAsync("serve", role, name, cancellationToken);
            await accounts.RevokeApiKeysNamedAsync(account.Id, "serve", cancellationToken);
            var key = await accounts.CreateApiKeyAsync(account.Id, "serve", cancellationToken);
            var password = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12)).Replace('+', 'x').Replace('/', 'y');
            await accounts.SetPasswordAsync("serve", account.Id, password, cancellationToken);
            issued.Add(new DemoAccount(account.Role, account.Name, account.Id, key.Key, password));
        }

        return issued;
    }

    public async Task WaitForShutdownAsync(CancellationToken cancellationToken) => await Gateway.WaitForShutdownAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await Gateway.StopAsync(CancellationToken.None);
        await Gateway.DisposeAsync();
        await Services.StopAsync(CancellationToken.None);
        await Services.DisposeAsync();
    }

    private static Uri AddressOf(WebApplication app) =>
        new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
}
