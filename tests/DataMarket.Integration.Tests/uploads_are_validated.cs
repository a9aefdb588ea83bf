using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using DataMarket.ServiceDefaults.Security;

namespace DataMarket.Integration.Tests;

[Collection(MarketCollection.Name)]
public sealed class uploads_are_validated(MarketFixture market)
{
    public static TheoryData<string, string, int?, string?, string> BadFiles() => new()
    {
        { "x0,x1,label\n1,2,0\n3,abc,1\n", "bad-number.csv", 2, "x1", "'abc' is not a number" },
        { "x0,x1,label\n1,2,0\n3,4,1\n5,NaN,0\n", "nan.csv", 3, "x1", "not a finite number" },
        { "x0,x1,label\n1,2,0\n3,4\n", "ragged.csv", 2, null, "has 2 fields but the header has 3" },
        { "x0,x1,target\n1,2,0\n", "no-label.csv", null, "label", "no label column 'label'" },
        { "", "empty.csv", null, null, "empty" },
        { "x0,x1,label\n1,Infinity,0\n", "infinite.csv", 1, "x1", "not a finite number" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public async Task a_bad_upload_is_rejected_naming_row_and_column_and_leaves_no_trace(
        string csv, string fileName, int? row, string? column, string problemText)
    {
        var seller = new MarketClient(market.Catalog.CreateClient(), $"seller-bad-{fileName}");
        var listing = (await seller.CreateListingAsync("bad data")).GetProperty("id").GetGuid();
        var blobsBefore = BlobFiles();

        var response = await seller.UploadAsync(listing, csv, fileName);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        var detail = problem.GetProperty("detail").GetString()!;
        Assert.Contains(fileName, detail);
        Assert.Contains(problemText, detail);
        Assert.Equal(fileName, problem.GetProperty("file").GetString());
        if (row is null)
        {
            Assert.Equal(JsonValueKind.Null, problem.GetProperty("row").ValueKind);
        }
        else
        {
            Assert.Equal(row, problem.GetProperty("row").GetInt32());
            Assert.Contains($"row {row}", detail);
        }

        if (column is not null)
        {
            Assert.Equal(column, problem.GetProperty("column").GetString());
        }

        // Nothing was stored: the listing is still an empty draft and no blob (or scratch file) appeared.
        var after = await seller.Http.GetFromJsonAsync<JsonElement>($"/api/listings/{listing}");
        Assert.Equal("Draft", after.GetProperty("status").GetString());
        Assert.False(after.TryGetProperty("blobId", out _), "content hashes are internal");
        Assert.Equal(blobsBefore, BlobFiles());

        // And the seller can still upload good data to the same listing.
        var good = await seller.UploadAsync(listing, "x0,x1,label\n1,2,0\n3,4,1\n", "good.csv");
        Assert.Equal(HttpStatusCode.OK, good.StatusCode);
    }

    [Fact]
    public async Task only_the_seller_can_upload_to_a_listing_and_listed_data_is_immutable()
    {
        var owner = new MarketClient(market.Catalog.CreateClient(), "seller-owner");
        var listing = (await owner.CreateListingAsync("mine")).GetProperty("id").GetGuid();
        var intruder = new MarketClient(market.Catalog.CreateClient(), "seller-intruder");

        Assert.Equal(HttpStatusCode.NotFound, (await intruder.UploadAsync(listing, "x0,label\n1,0\n", "x.csv")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await intruder.Http.GetAsync($"/api/listings/{listing}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await owner.UploadAsync(listing, "x0,label\n1,0\n", "x.csv")).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await owner.UploadAsync(listing, "x0,label\n2,1\n", "y.csv")).StatusCode);
    }

    [Fact]
    public async Task the_catalog_refuses_calls_without_a_gateway_token_whatever_headers_they_carry()
    {
        using var headerOnly = market.Catalog.CreateClient();
        headerOnly.DefaultRequestHeaders.Add("X-Actor-Id", "seller-owner");
        Assert.Equal(HttpStatusCode.Unauthorized, (await headerOnly.GetAsync("/api/listings")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await headerOnly.PostAsJsonAsync("/api/listings", new { name = "n" })).StatusCode);

        // A token signed with another key (not the gateway's) is refused just the same.
        var otherKey = new ServiceAuthOptions { SigningKey = ServiceAuthOptions.NewSigningKey() };
        using var forged = market.Catalog.CreateClient();
        forged.DefaultRequestHeaders.Authorization = new("Bearer", new ServiceTokenIssuer(otherKey, TimeProvider.System).Issue("seller-owner", Roles.Seller, "x"));
        Assert.Equal(HttpStatusCode.Unauthorized, (await forged.GetAsync("/api/listings")).StatusCode);
    }

    [Fact]
    public async Task an_invalid_listing_request_is_rejected_by_the_validator()
    {
        var seller = new MarketClient(market.Catalog.CreateClient(), "seller-validator");
        var response = await seller.Http.PostAsJsonAsync("/api/listings", new { name = "", description = "x" });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(problem.GetProperty("errors").TryGetProperty("Name", out _));
    }

    private string[] BlobFiles() =>
        Directory.Exists(market.BlobRoot)
            ? Directory.GetFiles(market.BlobRoot, "*", SearchOption.AllDirectories).Order().ToArray()
            : [];
}
