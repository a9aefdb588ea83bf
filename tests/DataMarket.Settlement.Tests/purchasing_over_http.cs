using System.Net;
using System.Text.Json;
using DataMarket.ServiceDefaults.Security;

namespace DataMarket.Settlement.Tests;

/// <summary>
/// The settlement API's refusals: each bad request gets a problem naming the field and moves nothing in the ledger,
/// and the good path (terms, quote, purchase, download, refund) moves exactly what the quote says.
/// </summary>
public sealed class purchasing_over_http : IAsyncLifetime
{
    private const string SellerA = "seller-a";
    private const string SellerB = "seller-b";
    private const string Buyer = "buyer-1";
    private const string OtherBuyer = "buyer-2";
    private const string CsvA = "x,label\n1,0\n2,1\n3,1\n";

    private SettlementSite _site = null!;
    private Guid _listingA;
    private Guid _listingB;

    public async Task InitializeAsync()
    {
        _site = await SettlementSite.StartAsync();
        _listingA = await _site.AddListingAsync(SellerA, CsvA);
        _listingB = await _site.AddListingAsync(SellerB, "x,label\n4,0\n5,0\n");
    }

    public async Task DisposeAsync() => await _site.DisposeAsync();

    [Fact]
    public async Task bad_terms_are_refused_naming_the_field()
    {
        await AssertProblemAsync(await PutTermsAsync(SellerA, _listingA, "{\"reserve\":-5}"), HttpStatusCode.BadRequest, "Reserve");
        await AssertProblemAsync(await PutTermsAsync(SellerA, _listingA, "{\"reserve\":1000000000000000}"), HttpStatusCode.BadRequest, "Reserve");
        await AssertProblemAsync(await PutTermsAsync(SellerA, _listingA, "{\"reserve\":900,\"listPrice\":500}"), HttpStatusCode.BadRequest, "ListPrice");
        await AssertProblemAsync(await PutTermsAsync(SellerA, Guid.NewGuid(), "{\"reserve\":100}"), HttpStatusCode.NotFound, "listingId");
        // Another seller's listing reads as unknown.
        await AssertProblemAsync(await PutTermsAsync(SellerB, _listingA, "{\"reserve\":100}"), HttpStatusCode.NotFound, "listingId");
        Assert.Equal(HttpStatusCode.NotFound, (await _site.SendAsync(HttpMethod.Get, $"/api/terms/{_listingA}", SellerA, Roles.Seller)).StatusCode);
    }

    [Fact]
    public async Task bad_quotes_are_refused_and_a_quote_is_its_buyers_alone()
    {
        await PublishTermsAsync();
        var valuation = await _site.AddValuationAsync(Buyer, [_listingA, _listingB], [(SellerA, 0.3), (SellerB, 0.1)]);
        await AssertProblemAsync(await PostQuoteAsync(Buyer, $"{{\"valuationId\":\"{Guid.NewGuid()}\"}}"), HttpStatusCode.NotFound, "valuationId");
        await AssertProblemAsync(await PostQuoteAsync(OtherBuyer, $"{{\"valuationId\":\"{valuation}\"}}"), HttpStatusCode.NotFound, "valuationId");
        await AssertProblemAsync(await PostQuoteAsync(Buyer, $"{{\"valuationId\":\"{valuation}\",\"theta\":-1}}"), HttpStatusCode.BadRequest, "Theta");
        await AssertProblemAsync(await PostQuoteAsync(Buyer, $"{{\"valuationId\":\"{valuation}\",\"theta\":1e20}}"), HttpStatusCode.BadRequest, "Theta");
        var plain = await _site.AddValuationAsync(Buyer, [_listingA], [(SellerA, 0.3)], DataMarket.Valuation.ValuationMethods.KnnShapley);
        await AssertProblemAsync(await PostQuoteAsync(Buyer, $"{{\"valuationId\":\"{plain}\"}}"), HttpStatusCode.BadRequest, "valuationId");

        var quote = await QuoteAsync(valuation, theta: 10_000m);
        // theta x gain = 10,000 x 0.4 = 4,000 cents, inside [reserves 300, list prices 10,000].
        Assert.Equal(4_000, quote.GetProperty("price").GetInt64());
        Assert.Equal(4_000, quote.GetProperty("fee").GetInt64() + quote.GetProperty("shares").EnumerateArray().Sum(s => s.GetProperty("amount").GetInt64()));
        var id = quote.GetProperty("id").GetGuid();
        Assert.Equal(HttpStatusCode.OK, (await _site.SendAsync(HttpMethod.Get, $"/api/quotes/{id}", Buyer, Roles.Buyer)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _site.SendAsync(HttpMethod.Get, $"/api/quotes/{id}", OtherBuyer, Roles.Buyer)).StatusCode);
        Assert.Empty(await _site.BalancesAsync());
    }

    [Fact]
    public async Task an_unpriced_listing_in_the_bundle_is_named()
    {
        var valuation = await _site.AddValuationAsync(Buyer, [_listingA], [(SellerA, 0.3)]);
        await AssertProblemAsync(await PostQuoteAsync(Buyer, $"{{\"valuationId\":\"{valuation}\"}}"), HttpStatusCode.Conflict, $"listings[{_listingA}]");
    }

    [Fact]
    public async Task someone_elses_or_an_expired_quote_buys_nothing()
    {
        await PublishTermsAsync();
        var quoteId = (await QuoteAsync(await _site.AddValuationAsync(Buyer, [_listingA, _listingB], [(SellerA, 0.3), (SellerB, 0.1)]), 10_000m)).GetProperty("id").GetGuid();

        await AssertProblemAsync(await PurchaseAsync(OtherBuyer, quoteId, "k-1"), HttpStatusCode.NotFound, "quoteId");
        await AssertProblemAsync(await PurchaseAsync(Buyer, Guid.NewGuid(), "k-2"), HttpStatusCode.NotFound, "quoteId");
        _site.Clock.Advance(_site.Options.QuoteLifetime + TimeSpan.FromSeconds(1));
        await AssertProblemAsync(await PurchaseAsync(Buyer, quoteId, "k-3"), HttpStatusCode.Gone, "quoteId");
        Assert.Empty(await _site.BalancesAsync());
    }

    [Fact]
    public async Task a_replayed_purchase_gets_the_same_answer_and_a_changed_body_is_409()
    {
        await PublishTermsAsync();
        var valuation = await _site.AddValuationAsync(Buyer, [_listingA, _listingB], [(SellerA, 0.3), (SellerB, 0.1)]);
        var first = (await QuoteAsync(valuation, 10_000m)).GetProperty("id").GetGuid();
        var second = (await QuoteAsync(valuation, 10_000m)).GetProperty("id").GetGuid();

        var bought = await PurchaseAsync(Buyer, first, "key-1");
        Assert.Equal(HttpStatusCode.Created, bought.StatusCode);
        var body = await bought.Content.ReadAsStringAsync();
        var balances = await _site.BalancesAsync();

        var replay = await PurchaseAsync(Buyer, first, "key-1");
        Assert.Equal(HttpStatusCode.Created, replay.StatusCode);
        Assert.Equal(body, await replay.Content.ReadAsStringAsync());
        await AssertProblemAsync(await PurchaseAsync(Buyer, second, "key-1"), HttpStatusCode.Conflict, "Idempotency-Key");
        Assert.Equal(balances, await _site.BalancesAsync());
        // The buyer paid 4,000 cents once: the charge entered clearing once.
        Assert.Equal(-4_000, balances.Single(b => b.AccountId == "payment_clearing:platform:USD").PostedBalance);

        // The same key from another buyer is that buyer's own key (and their quote is not this one).
        await AssertProblemAsync(await PurchaseAsync(OtherBuyer, first, "key-1"), HttpStatusCode.NotFound, "quoteId");
        Assert.True(await _site.LedgerVerifiesAsync());
    }

    [Fact]
    public async Task only_the_buyer_downloads_and_a_refund_inside_the_window_restores_every_balance()
    {
        await PublishTermsAsync();
        var quoteId = (await QuoteAsync(await _site.AddValuationAsync(Buyer, [_listingA], [(SellerA, 0.3)]), 10_000m)).GetProperty("id").GetGuid();
        var purchase = JsonDocument.Parse(await (await PurchaseAsync(Buyer, quoteId, "dl")).Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetGuid();

        var download = await _site.SendAsync(HttpMethod.Get, $"/api/purchases/{purchase}/download", Buyer, Roles.Buyer);
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Equal(CsvA, await download.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NotFound, (await _site.SendAsync(HttpMethod.Get, $"/api/purchases/{purchase}/download", OtherBuyer, Roles.Buyer)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _site.SendAsync(HttpMethod.Get, $"/api/purchases/{purchase}/download", SellerA, Roles.Seller)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _site.SendAsync(HttpMethod.Get, $"/api/purchases/{purchase}", OtherBuyer, Roles.Buyer)).StatusCode);

        var refund = await _site.SendAsync(HttpMethod.Post, $"/api/purchases/{purchase}/refund", Buyer, Roles.Buyer);
        Assert.Equal(HttpStatusCode.OK, refund.StatusCode);
        Assert.Equal("refunded", JsonDocument.Parse(await refund.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetString());
        Assert.All(await _site.BalancesAsync(), b => Assert.Equal(0, b.PostedBalance));
        Assert.Equal(HttpStatusCode.NotFound, (await _site.SendAsync(HttpMethod.Get, $"/api/purchases/{purchase}/download", Buyer, Roles.Buyer)).StatusCode);
        Assert.True(await _site.LedgerVerifiesAsync());
    }

    [Fact]
    public async Task a_refund_after_the_window_is_refused_and_moves_nothing()
    {
        await PublishTermsAsync();
        var quoteId = (await QuoteAsync(await _site.AddValuationAsync(Buyer, [_listingA], [(SellerA, 0.3)]), 10_000m)).GetProperty("id").GetGuid();
        var purchase = JsonDocument.Parse(await (await PurchaseAsync(Buyer, quoteId, "late")).Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetGuid();
        var balances = await _site.BalancesAsync();

        _site.Clock.Advance(_site.Options.RefundWindow);
        await AssertProblemAsync(await _site.SendAsync(HttpMethod.Post, $"/api/purchases/{purchase}/refund", Buyer, Roles.Buyer), HttpStatusCode.Conflict, "id");
        await AssertProblemAsync(await _site.SendAsync(HttpMethod.Post, $"/api/purchases/{purchase}/refund", OtherBuyer, Roles.Buyer), HttpStatusCode.NotFound, "id");
        Assert.Equal(balances, await _site.BalancesAsync());
    }

    private Task PublishTermsAsync() => Task.WhenAll(
        Ok(PutTermsAsync(SellerA, _listingA, "{\"reserve\":200,\"listPrice\":6000,\"licence\":\"research\"}")),
        Ok(PutTermsAsync(SellerB, _listingB, "{\"reserve\":100,\"listPrice\":4000}")));

    private static async Task Ok(Task<HttpResponseMessage> response)
    {
        var answer = await response;
        Assert.True(answer.IsSuccessStatusCode, await answer.Content.ReadAsStringAsync());
    }

    private Task<HttpResponseMessage> PutTermsAsync(string seller, Guid listing, string json) =>
        _site.SendAsync(HttpMethod.Put, $"/api/terms/{listing}", seller, Roles.Seller, json);

    private Task<HttpResponseMessage> PostQuoteAsync(string buyer, string json) => _site.SendAsync(HttpMethod.Post, "/api/quotes", buyer, Roles.Buyer, json);

    private async Task<JsonElement> QuoteAsync(Guid valuation, decimal theta)
    {
        var response = await PostQuoteAsync(Buyer, $"{{\"valuationId\":\"{valuation}\",\"theta\":{theta}}}");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, text);
        return JsonDocument.Parse(text).RootElement;
    }

    private Task<HttpResponseMessage> PurchaseAsync(string buyer, Guid quote, string key) =>
        _site.SendAsync(HttpMethod.Post, "/api/purchases", buyer, Roles.Buyer, $"{{\"quoteId\":\"{quote}\"}}", key);

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string field)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(text).RootElement;
        var named = problem.TryGetProperty("field", out var f) && f.GetString() == field
            || problem.TryGetProperty("errors", out var errors) && errors.TryGetProperty(field, out _);
        Assert.True(named, $"the problem does not name '{field}': {text}");
    }
}
