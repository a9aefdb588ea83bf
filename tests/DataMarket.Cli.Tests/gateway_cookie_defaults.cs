using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace DataMarket.Cli.Tests;

/// <summary>
/// The gateway's cookies are Secure (HTTPS only) unless the configuration turns that off, as only the plain-HTTP
/// loopback scripts (<c>serve</c> on http, <c>deploy/local/start-services.sh</c>) do: a deployment that says nothing is secure.
/// </summary>
public sealed class gateway_cookie_defaults
{
    [Theory]
    [InlineData(null, CookieSecurePolicy.Always)]
    [InlineData("true", CookieSecurePolicy.Always)]
    [InlineData("false", CookieSecurePolicy.SameAsRequest)]
    public void session_second_factor_and_antiforgery_cookies_are_secure_unless_turned_off(string? setting, CookieSecurePolicy expected)
    {
        var settings = new Dictionary<string, string?> { ["Gateway:Database"] = "Sqlite" };
        if (setting is not null)
        {
            settings["Gateway:SecureCookies"] = setting;
        }

        var services = new ServiceCollection();
        services.AddLogging();
        services.AddGateway(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        using var provider = services.BuildServiceProvider();

        var cookies = provider.GetRequiredService<IOptionsMonitor<CookieAuthenticationOptions>>();
        Assert.Equal(expected, cookies.Get(GatewayExtensions.WebScheme).Cookie.SecurePolicy);
        Assert.Equal(expected, cookies.Get(GatewayExtensions.SecondFactorScheme).Cookie.SecurePolicy);
        Assert.Equal(expected, provider.GetRequiredService<IOptions<AntiforgeryOptions>>().Value.Cookie.SecurePolicy);
        Assert.True(cookies.Get(GatewayExtensions.WebScheme).Cookie.HttpOnly);
        Assert.Equal(SameSiteMode.Strict, cookies.Get(GatewayExtensions.WebScheme).Cookie.SameSite);
    }
}
