using System.Text.Json;
using DataMarket.Cli.Commands;

namespace DataMarket.Cli.Tests;

public sealed class runtime_settings
{
    [Fact]
    public void the_cli_collects_garbage_as_the_services_do_with_server_gc()
    {
        // serve, demo and the benches host the services in the CLI's process; the services' own hosts (Sdk.Web) run
        // server GC, and a settlement run measured slower under the workstation GC.
        var cli = typeof(CliApplication).Assembly.Location;
        var config = Path.ChangeExtension(cli, ".runtimeconfig.json");
        using var document = JsonDocument.Parse(File.ReadAllText(config));

        var properties = document.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");

        Assert.True(properties.TryGetProperty("System.GC.Server", out var server), $"{config} does not set System.GC.Server");
        Assert.True(server.GetBoolean(), $"{config} sets System.GC.Server to false");
    }
}
