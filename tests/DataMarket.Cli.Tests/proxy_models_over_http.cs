using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace DataMarket.Cli.Tests;

/// <summary>
/// A buyer's proxy-model checkpoint through the gateway: checked before it is stored (safetensors only, the tensors of a
/// tabular MLP with a consistent shape chain), private to its buyer, and refused for a valuation it does not fit.
/// </summary>
public sealed class proxy_models_over_http(EmbeddedServer server) : IClassFixture<EmbeddedServer>
{
    private const string Csv = "x0,x1,label\n1,2,0\n3,4,1\n5,6,0\n";

    [Fact]
    public async Task a_buyer_uploads_a_checkpoint_that_is_checked_kept_private_and_matched_to_the_task()
    {
        var buyer = await server.SignUpAsync("buyer-models");
        var created = await buyer.Http.PostAsync("/api/models?name=my-mlp&fileName=mlp.safetensors", Bytes(Safetensors(Mlp(2, 8, 3))));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var model = await created.Content.ReadFromJsonAsync<JsonElement>();
        var modelId = model.GetProperty("id").GetGuid();
        Assert.Equal(2, model.GetProperty("inputWidth").GetInt32());
        Assert.Equal([8], model.GetProperty("hiddenWidths").EnumerateArray().Select(w => w.GetInt32()));
        Assert.Equal(3, model.GetProperty("outputWidth").GetInt32());
        Assert.False(model.TryGetProperty("blobId", out _), "storage addresses are internal");
        var mine = await buyer.Http.GetFromJsonAsync<JsonElement>("/api/models");
        Assert.Equal([modelId], mine.EnumerateArray().Select(m => m.GetProperty("id").GetGuid()));

        var stranger = await server.SignUpAsync("buyer-stranger");
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.Http.GetAsync($"/api/models/{modelId}")).StatusCode);
        Assert.Empty(await stranger.Http.GetFromJsonAsync<JsonElement[]>("/api/models") ?? []);
        var seller = await server.SignUpAsync("seller-models");
        Assert.Equal(HttpStatusCode.Forbidden, (await seller.Http.PostAsync("/api/models?fileName=m.safetensors", Bytes(Safetensors(Mlp(2, 8, 3))))).StatusCode);
        using var anonymous = server.Anonymous();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync($"/api/models/{modelId}")).StatusCode);

        // The model goes with method logra only, must be the buyer's own, and must take the task's features.
        var listing = await EmbeddedServer.CreateListingAsync(seller.Http, "for models");
        Assert.Equal(HttpStatusCode.OK, (await seller.Http.PutAsync($"/api/listings/{listing}/data?format=csv&fileName=a.csv", EmbeddedServer.Text(Csv))).StatusCode);
        var posted = await buyer.Http.PostAsync("/api/tasks?name=t&format=csv&fileName=t.csv", EmbeddedServer.Text(Csv));
        var task = (await posted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        await AssertProblemAsync(
            await buyer.Http.PostAsJsonAsync("/api/valuations", new { taskId = task, listingIds = new[] { listing }, method = "knn-shapley", k = 1, modelId }),
            HttpStatusCode.BadRequest, "method 'logra' only");
        var narrow = await (await buyer.Http.PostAsync("/api/models?fileName=narrow.safetensors", Bytes(Safetensors(Mlp(5, 4, 2))))).Content.ReadFromJsonAsync<JsonElement>();
        await AssertProblemAsync(
            await buyer.Http.PostAsJsonAsync("/api/valuations", new { taskId = task, listingIds = new[] { listing }, method = "logra", k = 1, modelId = narrow.GetProperty("id").GetGuid() }),
            HttpStatusCode.BadRequest, "the model takes 5 features but the test task has 2");
        // The worker values with the buyer's model as it is: labels must be its class indices.
        var valued = await buyer.Http.PostAsJsonAsync("/api/valuations", new { taskId = task, listingIds = new[] { listing }, method = "logra", k = 1, modelId });
        Assert.Equal(HttpStatusCode.Accepted, valued.StatusCode);
        var done = await WaitAsync(buyer.Http, (await valued.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid());
        Assert.True(done.GetProperty("status").GetString() == "Completed", done.ToString());
        var points = await buyer.Http.GetFromJsonAsync<JsonElement>($"/api/valuations/{done.GetProperty("id").GetGuid()}/points");
        var values = points.GetProperty("items").EnumerateArray().Select(p => p.GetProperty("value").GetProperty("value").GetDouble()).ToList();
        Assert.Equal(3, values.Count);
        Assert.All(values, v => Assert.True(double.IsFinite(v)));
        Assert.Equal(values.Sum(), done.GetProperty("sellers")[0].GetProperty("value").GetProperty("value").GetDouble(), 9);

        var named = await (await buyer.Http.PostAsync("/api/tasks?name=named&format=csv&fileName=n.csv", EmbeddedServer.Text("x0,x1,label\n1,2,cat\n3,4,dog\n"))).Content.ReadFromJsonAsync<JsonElement>();
        var refused = await buyer.Http.PostAsJsonAsync("/api/valuations", new { taskId = named.GetProperty("id").GetGuid(), listingIds = new[] { listing }, method = "logra", k = 1, modelId });
        var failed = await WaitAsync(buyer.Http, (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid());
        Assert.Equal("Failed", failed.GetProperty("status").GetString());
        Assert.Contains("the test task, row 1: a model given as a checkpoint needs class indices 0, 1, ... as labels, got 'cat'", failed.GetProperty("error").GetString());

        var strangersModel = await (await stranger.Http.PostAsync("/api/models?fileName=s.safetensors", Bytes(Safetensors(Mlp(2, 4, 2))))).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(
            HttpStatusCode.NotFound,
            (await buyer.Http.PostAsJsonAsync("/api/valuations", new { taskId = task, listingIds = new[] { listing }, method = "logra", k = 1, modelId = strangersModel.GetProperty("id").GetGuid() })).StatusCode);
    }

    [Fact]
    public async Task a_buyer_asks_for_self_influence_and_gets_each_rows_self_influence_summed_per_seller()
    {
        var buyer = await server.SignUpAsync("buyer-self");
        var seller = await server.SignUpAsync("seller-self");
        var listing = await EmbeddedServer.CreateListingAsync(seller.Http, "for self-influence");
        Assert.Equal(HttpStatusCode.OK, (await seller.Http.PutAsync($"/api/listings/{listing}/data?format=csv&fileName=a.csv", EmbeddedServer.Text(Csv))).StatusCode);
        var posted = await buyer.Http.PostAsync("/api/tasks?name=t&format=csv&fileName=t.csv", EmbeddedServer.Text(Csv));
        var task = (await posted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();

        await AssertProblemAsync(
            await buyer.Http.PostAsJsonAsync("/api/valuations", new { taskId = task, listingIds = new[] { listing }, method = "logra", k = 1, lograMode = "manhattan" }),
            HttpStatusCode.BadRequest, "unknown LoGra mode 'manhattan' (supported: dot, cosine, self)");
        await AssertProblemAsync(
            await buyer.Http.PostAsJsonAsync("/api/valuations", new { taskId = task, listingIds = new[] { listing }, method = "knn-shapley", k = 1, lograMode = "self" }),
            HttpStatusCode.BadRequest, "lograMode is used by method 'logra' only");

        var valued = await buyer.Http.PostAsJsonAsync("/api/valuations", new { taskId = task, listingIds = new[] { listing }, method = "logra", k = 1, lograMode = "self" });
        Assert.Equal(HttpStatusCode.Accepted, valued.StatusCode);
        var done = await WaitAsync(buyer.Http, (await valued.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid());
        Assert.True(done.GetProperty("status").GetString() == "Completed", done.ToString());
        var points = await buyer.Http.GetFromJsonAsync<JsonElement>($"/api/valuations/{done.GetProperty("id").GetGuid()}/points");
        var items = points.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(3, items.Count);
        // A self-influence is a positive quadratic form, one per row, with no spread over test points to report.
        Assert.All(items, p => Assert.True(p.GetProperty("value").GetProperty("value").GetDouble() > 0));
        Assert.All(items, p => Assert.Equal(JsonValueKind.Null, p.GetProperty("value").GetProperty("standardError").ValueKind));
        Assert.Equal(items.Sum(p => p.GetProperty("value").GetProperty("value").GetDouble()), done.GetProperty("sellers")[0].GetProperty("value").GetProperty("value").GetDouble(), 9);
    }

    [Theory]
    [InlineData("pickle", "only .safetensors checkpoints are accepted")]
    [InlineData("stranger-tensor", "tensor 'encoder.weight' is not part of a tabular MLP")]
    [InlineData("broken-chain", "tensor 'layers.2.weight' takes 7 inputs but the layer before gives 8")]
    [InlineData("short-data", "tensor 'layers.2.bias' has data_offsets outside the file")]
    [InlineData("missing-bias", "tensor 'layers.0.bias' is missing")]
    [InlineData("integer-weights", "weights must be F16, BF16, F32 or F64")]
    [InlineData("not-safetensors", "is not a safetensors file")]
    public async Task a_checkpoint_that_cannot_be_used_is_refused_naming_the_tensor_and_nothing_is_stored(string defect, string message)
    {
        var buyer = await server.SignUpAsync($"buyer-{defect}");
        var tensors = Mlp(2, 8, 3);
        var fileName = "m.safetensors";
        byte[] file;
        switch (defect)
        {
            case "pickle":
                fileName = "m.pt";
                file = Safetensors(tensors);
                break;
            case "stranger-tensor":
                tensors.Add(("encoder.weight", "F32", [2, 2]));
                file = Safetensors(tensors);
                break;
            case "broken-chain":
                tensors[2] = ("layers.2.weight", "F32", [3, 7]);
                file = Safetensors(tensors);
                break;
            case "short-data":
                file = Safetensors(tensors)[..^8];
                break;
            case "missing-bias":
                tensors.RemoveAt(1);
                file = Safetensors(tensors);
                break;
            case "integer-weights":
                tensors[0] = ("layers.0.weight", "I64", [8, 2]);
                file = Safetensors(tensors);
                break;
            default:
                file = Encoding.UTF8.GetBytes("x0,x1,label\n1,2,0\n");
                break;
        }

        var blobsBefore = server.BlobFiles().Length;
        await AssertProblemAsync(await buyer.Http.PostAsync($"/api/models?fileName={fileName}", Bytes(file)), HttpStatusCode.BadRequest, message);
        Assert.Empty(await buyer.Http.GetFromJsonAsync<JsonElement[]>("/api/models") ?? []);
        Assert.Equal(blobsBefore, server.BlobFiles().Length);
    }

    private static async Task<JsonElement> WaitAsync(HttpClient http, Guid valuationId)
    {
        // Generous: the first LoGra job of the process loads libtorch, and CI machines are busy at times.
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (true)
        {
            var valuation = await http.GetFromJsonAsync<JsonElement>($"/api/valuations/{valuationId}");
            if (valuation.GetProperty("status").GetString() is "Completed" or "Failed" || DateTime.UtcNow > deadline)
            {
                return valuation;
            }

            await Task.Delay(200);
        }
    }

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string message)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        // Read as JSON: the body escapes quotes for safe embedding, so the text is in its decoded strings.
        Assert.Contains(Strings(JsonDocument.Parse(body).RootElement), text => text.Contains(message, StringComparison.Ordinal));
    }

    private static IEnumerable<string> Strings(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => [element.GetString()!],
        JsonValueKind.Object => element.EnumerateObject().SelectMany(p => Strings(p.Value)),
        JsonValueKind.Array => element.EnumerateArray().SelectMany(Strings),
        _ => [],
    };

    private static ByteArrayContent Bytes(byte[] file) => new(file) { Headers = { ContentType = new("application/octet-stream") } };

    /// <summary>The tensors of nn.Sequential(Linear(input, hidden), ReLU(), Linear(hidden, output)) under "layers".</summary>
    private static List<(string Name, string DType, long[] Shape)> Mlp(int input, int hidden, int output) =>
    [
        ("layers.0.weight", "F32", [hidden, input]),
        ("layers.0.bias", "F32", [hidden]),
        ("layers.2.weight", "F32", [output, hidden]),
        ("layers.2.bias", "F32", [output]),
    ];

    /// <summary>A safetensors file as the format defines it: u64 header length, JSON header, then the tensors' bytes.</summary>
    private static byte[] Safetensors(IReadOnlyList<(string Name, string DType, long[] Shape)> tensors)
    {
        var header = new Dictionary<string, object> { ["__metadata__"] = new Dictionary<string, string> { ["format"] = "pt" } };
        long offset = 0;
        foreach (var (name, dtype, shape) in tensors)
        {
            var bytes = shape.Aggregate(dtype is "F64" or "I64" ? 8L : 4L, (a, b) => a * b);
            header[name] = new { dtype, shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }

        var json = JsonSerializer.SerializeToUtf8Bytes(header);
        var file = new byte[8 + json.Length + offset];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)json.Length);
        json.CopyTo(file, 8);
        // Small finite weights (float32 throughout here; other dtypes only ever reach the refusal tests).
        var random = new Random(3);
        for (var at = 8 + json.Length; at + 4 <= file.Length; at += 4)
        {
            BinaryPrimitives.WriteSingleLittleEndian(file.AsSpan(at), (float)(random.NextDouble() - 0.5));
        }

        return file;
    }
}
