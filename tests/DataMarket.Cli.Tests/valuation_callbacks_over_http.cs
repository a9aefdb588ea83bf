using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DataMarket.Catalog.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Cli.Tests;

/// <summary>A buyer's callback URL gets one signed notice when the valuation ends, retried until it is taken.</summary>
public sealed class valuation_callbacks_over_http(EmbeddedServer server) : IClassFixture<EmbeddedServer>
{
    private const string Csv = "x0,x1,label\n1,2,0\n3,4,1\n5,6,0\n2,2,1\n";

    private sealed record Received(string Body, string? Signature, string? Delivery, int AnsweredWith);

    [Fact]
    public async Task the_notice_is_signed_with_the_secret_given_once_and_retried_after_an_error_until_delivered()
    {
        var received = new ConcurrentQueue<Received>();
        await using var receiver = await StartReceiverAsync(request =>
        {
            // The receiver is down for the first attempt.
            var answer = received.IsEmpty ? 500 : 200;
            received.Enqueue(request with { AnsweredWith = answer });
            return answer;
        });
        var seller = await server.SignUpAsync("seller-callback");
        var buyer = await server.SignUpAsync("buyer-callback");
        var listing = await EmbeddedServer.CreateListingAsync(seller.Http, "callback");
        Assert.Equal(HttpStatusCode.OK, (await seller.Http.PutAsync($"/api/listings/{listing}/data?format=csv&fileName=a.csv", EmbeddedServer.Text(Csv))).StatusCode);
        var task = await PostTaskAsync(buyer.Http);

        var callbackUrl = new Uri(Address(receiver), "/hooks/valuations").ToString();
        var requested = await buyer.Http.PostAsJsonAsync("/api/valuations", new { taskId = task, listingIds = new[] { listing }, k = 1, callbackUrl });
        Assert.Equal(HttpStatusCode.Accepted, requested.StatusCode);
        var created = await requested.Content.ReadFromJsonAsync<JsonElement>();
        var valuation = created.GetProperty("id").GetGuid();
        var secret = created.GetProperty("callbackSecret").GetString()!;
        Assert.StartsWith("dmcb_", secret);
        Assert.Equal(callbackUrl, created.GetProperty("callbackUrl").GetString());

        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!received.Any(r => r.AnsweredWith == 200) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        var notices = received.ToArray();
        Assert.Equal([500, 200], notices.Select(n => n.AnsweredWith));
        foreach (var notice in notices)
        {
            Assert.Equal(valuation.ToString(), notice.Delivery);
            var body = JsonDocument.Parse(notice.Body).RootElement;
            Assert.Equal(valuation, body.GetProperty("valuationId").GetGuid());
            Assert.Equal("Completed", body.GetProperty("status").GetString());
            // Checked here independently of the product's code: HMAC-SHA256 of "t.body" under the secret.
            var parts = notice.Signature!.Split(',').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
            var expected = Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{parts["t"]}.{notice.Body}")));
            Assert.Equal(expected, parts["v1"]);
            Assert.InRange(long.Parse(parts["t"], System.Globalization.CultureInfo.InvariantCulture), DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        }

        // The receiver has answered, but the service records the delivery only once that answer reaches it: on a busy
        // machine that can come after the receiver's side is seen here, so read until it is no longer pending.
        var view = await buyer.Http.GetFromJsonAsync<JsonElement>($"/api/valuations/{valuation}");
        while (view.GetProperty("callback").GetProperty("delivery").GetString() == "pending" && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
            view = await buyer.Http.GetFromJsonAsync<JsonElement>($"/api/valuations/{valuation}");
        }

        var callback = view.GetProperty("callback");
        Assert.Equal("delivered", callback.GetProperty("delivery").GetString());
        Assert.Equal(2, callback.GetProperty("attempts").GetInt32());
        // The secret is given once, in the answer to the request; reading the valuation never shows it.
        Assert.Equal(JsonValueKind.Null, view.GetProperty("callbackSecret").ValueKind);
        Assert.DoesNotContain(secret, await buyer.Http.GetStringAsync($"/api/valuations/{valuation}"));

        // Nothing more arrives: one delivery taken means no further attempt.
        await Task.Delay(2500);
        Assert.Equal(2, received.Count);
    }

    [Theory]
    [InlineData("ftp://example.com/hook")]
    [InlineData("/relative/hook")]
    [InlineData("https://user:password@example.com/hook")]
    [InlineData("https://example.com/hook#fragment")]
    public async Task a_callback_url_that_is_not_a_plain_absolute_web_address_is_refused_and_nothing_is_created(string callbackUrl)
    {
        var seller = await server.SignUpAsync("seller-bad-callback");
        var buyer = await server.SignUpAsync("buyer-bad-callback");
        var listing = await EmbeddedServer.CreateListingAsync(seller.Http, "bad callback");
        Assert.Equal(HttpStatusCode.OK, (await seller.Http.PutAsync($"/api/listings/{listing}/data?format=csv&fileName=a.csv", EmbeddedServer.Text(Csv))).StatusCode);
        var task = await PostTaskAsync(buyer.Http);

        var response = await buyer.Http.PostAsJsonAsync("/api/valuations", new { taskId = task, listingIds = new[] { listing }, callbackUrl });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(problem.GetProperty("errors").TryGetProperty("CallbackUrl", out _) || problem.GetProperty("errors").TryGetProperty("callbackUrl", out _), problem.ToString());
        Assert.Equal(0, (await buyer.Http.GetFromJsonAsync<JsonElement>("/api/valuations")).GetArrayLength());
    }

    [Theory]
    [InlineData("127.0.0.1", false)]
    [InlineData("10.1.2.3", false)]
    [InlineData("172.20.0.1", false)]
    [InlineData("192.168.1.1", false)]
    [InlineData("169.254.169.254", false)] // a cloud's metadata service
    [InlineData("100.64.0.1", false)]
    [InlineData("0.0.0.0", false)]
    [InlineData("::1", false)]
    [InlineData("fe80::1", false)]
    [InlineData("fd00::1", false)]
    [InlineData("::ffff:127.0.0.1", false)]
    [InlineData("8.8.8.8", true)]
    [InlineData("2001:4860:4860::8888", true)]
    public void only_public_addresses_may_be_called_by_default(string address, bool callable) =>
        Assert.Equal(callable, ValuationCallbacks.IsPublic(IPAddress.Parse(address)));

    [Fact]
    public async Task by_default_the_callback_client_refuses_to_connect_to_a_loopback_receiver()
    {
        await using var receiver = await StartReceiverAsync(_ => 200);
        using var client = new HttpClient(ValuationCallbacks.Handler(new CallbackOptions()));

        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => client.PostAsync(new Uri(Address(receiver), "/hook"), new StringContent("{}")));

        Assert.Contains("no public address", refused.Message + refused.InnerException?.Message);
    }

    private static async Task<Guid> PostTaskAsync(HttpClient buyer)
    {
        var posted = await buyer.PostAsync("/api/tasks?name=callback&format=csv&fileName=t.csv", EmbeddedServer.Text(Csv));
        Assert.Equal(HttpStatusCode.Created, posted.StatusCode);
        return (await posted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private static async Task<WebApplication> StartReceiverAsync(Func<Received, int> answer)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.MapPost("/{**path}", async (HttpRequest request) =>
        {
            using var reader = new StreamReader(request.Body);
            var body = await reader.ReadToEndAsync();
            return Results.StatusCode(answer(new Received(body, request.Headers["DataMarket-Signature"], request.Headers["DataMarket-Delivery"], 0)));
        });
        await app.StartAsync();
        return app;
    }

    private static Uri Address(WebApplication app) =>
        new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
}
