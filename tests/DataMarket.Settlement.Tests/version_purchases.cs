using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using DataMarket.ServiceDefaults.Security;

namespace DataMarket.Settlement.Tests;

/// <summary>
/// Nested-sample versions through the API: a curve that allows arbitrage is refused naming the fraction, a version
/// is quoted at its curve price and its download holds exactly its sample, and a smaller version's rows lie inside a
/// larger one's.
/// </summary>
public sealed class version_purchases : IAsyncLifetime
{
    private const string Seller = "seller-v";
    private const string Buyer = "buyer-v";
    private static readonly string[] Rows = Enumerable.Range(0, 20).Select(i => $"{i},{i % 2}").ToArray();
    private SettlementSite _site = null!;
    private Guid _listing;

    public async Task InitializeAsync()
    {
        _site = await SettlementSite.StartAsync();
        _listing = await _site.AddListingAsync(Seller, "x,label\n" + string.Join("\n", Rows) + "\n");
    }

    public async Task DisposeAsync() => await _site.DisposeAsync();

    [Fact]
    public async Task a_version_sells_exactly_its_nested_sample_at_its_curve_price()
    {
        // 0.25 + 0.25 covers 0.5 for 600 < 700: two small versions would undercut the larger one.
        var refused = await PutTermsAsync("""{"reserve":100,"versions":[{"fraction":0.25,"price":300},{"fraction":0.5,"price":700}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal("versions[0.5].price", (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, (await PutTermsAsync("""{"reserve":100,"versions":[null]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await PutTermsAsync("""{"reserve":100,"versions":[{"fraction":1,"price":1000000000000000}]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await PutTermsAsync("""{"reserve":100,"versions":[{"fraction":0.25,"price":300},{"fraction":0.5,"price":500},{"fraction":1,"price":900}]}""")).StatusCode);

        var missing = await QuoteAsync(0.3m);
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Equal("fraction", (await missing.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());

        var half = await BuyAsync(0.5m, 500);
        var quarter = await BuyAsync(0.25m, 300);
        Assert.Equal(10, half.Length);
        Assert.Equal(5, quarter.Length);
        Assert.All(half, row => Assert.Contains(row, Rows));
        Assert.Equal(half.Length, half.Distinct().Count());
        Assert.Subset(half.ToHashSet(), quarter.ToHashSet());
        // The same version always holds the same rows.
        Assert.Equal(half, await BuyAsync(0.5m, 500));

        var payable = (await _site.BalancesAsync()).Single(b => b.AccountId == $"seller_held:{Seller}:USD").PostedBalance;
        Assert.Equal((500 - 50) * 2 + (300 - 50), payable);
        Assert.True(await _site.LedgerVerifiesAsync());
    }

    private Task<HttpResponseMessage> PutTermsAsync(string json) => _site.SendAsync(HttpMethod.Put, $"/api/terms/{_listing}", Seller, Roles.Seller, json);

    private Task<HttpResponseMessage> QuoteAsync(decimal fraction) =>
        _site.SendAsync(HttpMethod.Post, "/api/quotes", Buyer, Roles.Buyer, $"{{\"listingId\":\"{_listing}\",\"fraction\":{fraction.ToString(System.Globalization.CultureInfo.InvariantCulture)}}}");

    /// <summary>Quotes, buys and downloads a version; returns its data rows.</summary>
    private async Task<string[]> BuyAsync(decimal fraction, long price)
    {
        var quoted = await QuoteAsync(fraction);
        Assert.Equal(HttpStatusCode.Created, quoted.StatusCode);
        var quote = await quoted.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(price, quote.GetProperty("price").GetInt64());
        Assert.Equal(fraction, quote.GetProperty("fraction").GetDecimal());
        var bought = await _site.SendAsync(HttpMethod.Post, "/api/purchases", Buyer, Roles.Buyer, $"{{\"quoteId\":\"{quote.GetProperty("id").GetGuid()}\"}}");
        Assert.Equal(HttpStatusCode.Created, bought.StatusCode);
        var purchase = await bought.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(fraction, purchase.GetProperty("listings")[0].GetProperty("fraction").GetDecimal());
        var download = await _site.SendAsync(HttpMethod.Get, $"/api/purchases/{purchase.GetProperty("id").GetGuid()}/download", Buyer, Roles.Buyer);
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        var lines = (await download.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("x,label", lines[0]);
        return lines[1..];
    }
}
