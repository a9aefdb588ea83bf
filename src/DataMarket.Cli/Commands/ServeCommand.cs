using System.CommandLine;
using DataMarket.Cli.Demo;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DataMarket.Cli.Commands;

/// <summary><c>datamarket serve</c>: the catalog API and the valuation worker in one process on embedded defaults.</summary>
public static class ServeCommand
{
    public static Command Build()
    {
        var dataDir = new Option<DirectoryInfo>("--data-dir") { Description = "Folder for the SQLite database and the blob store.", DefaultValueFactory = _ => new DirectoryInfo("datamarket-data") };
        var urls = new Option<string>("--urls") { Description = "Addresses to listen on.", DefaultValueFactory = _ => "http://127.0.0.1:5080" };
        var command = new Command("serve", "Run the market's HTTP API and valuation worker in one process (in-memory bus, SQLite).") { dataDir, urls };
        command.SetAction(async (parse, cancellationToken) =>
        {
            await using var app = BuildApp(parse.GetValue(dataDir)!.FullName, parse.GetValue(urls)!);
            await app.RunAsync(cancellationToken);
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>The embedded market as a web application; <paramref name="settings"/> override configuration (tests use it).</summary>
    public static WebApplication BuildApp(string dataDirectory, string urls, IDictionary<string, string?>? settings = null)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls(urls);
        EmbeddedMarket.Configure(builder.Configuration, builder.Services, dataDirectory, settings);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);
        var app = builder.Build();
        app.UseProblemResponses();
        app.MapDefaultEndpoints();
        app.MapCatalogApi();
        return app;
    }
}
