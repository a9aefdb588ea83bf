using DataMarket.Cli.Commands;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Cli.Tests;

/// <summary>
/// <c>datamarket serve</c> as it runs for a user (Kestrel on a free loopback port, SQLite, in-memory bus), with a
/// data folder of its own and a small upload limit so the size checks can be tried cheaply.
/// </summary>
public sealed class EmbeddedServer : IAsyncLifetime
{
    public const long UploadLimit = 64 * 1024;

    private readonly TempFolder _folder = new();
    private WebApplication _app = null!;

    public string DataDirectory => _folder.Path;

    public string BlobRoot => Path.Combine(_folder.Path, "blobs");

    public Uri Address { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _app = ServeCommand.BuildApp(_folder.Path, "http://127.0.0.1:0", new Dictionary<string, string?>
        {
            ["Catalog:MaxUploadBytes"] = UploadLimit.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        await _app.StartAsync();
        var addresses = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!;
        Address = new Uri(addresses.Addresses.First());
    }

    public HttpClient Client(string? actor = null)
    {
        var client = new HttpClient { BaseAddress = Address };
        if (actor is not null)
        {
            client.DefaultRequestHeaders.Add("X-Actor-Id", actor);
        }

        return client;
    }

    public string[] BlobFiles() =>
        Directory.Exists(BlobRoot) ? Directory.GetFiles(BlobRoot, "*", SearchOption.AllDirectories).Order().ToArray() : [];

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _folder.Dispose();
    }
}
