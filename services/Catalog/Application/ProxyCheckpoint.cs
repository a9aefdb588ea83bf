using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace DataMarket.Catalog.Application;

/// <summary>What an uploaded proxy-model checkpoint holds: a tabular MLP of these widths.</summary>
public sealed record ProxyCheckpointSummary(int InputWidth, IReadOnlyList<int> HiddenWidths, int OutputWidth, int Tensors, long Parameters, string DType);

/// <summary>
/// Checks a buyer's checkpoint before the catalog accepts it, without loading it into a tensor library: a safetensors
/// file (8-byte little-endian header length, a JSON header, the data) whose tensors are exactly those of the tabular
/// MLP proxy (<c>layers.0.weight</c>, <c>layers.0.bias</c>, <c>layers.2.weight</c>, ... : PyTorch's <c>nn.Sequential</c>
/// of Linear and ReLU under <c>layers</c>), each of a float type, with a consistent shape chain and data inside the file.
/// Only safetensors comes in through the API: a pickled PyTorch file can run code when it is read.
/// </summary>
public static partial class ProxyCheckpoint
{
    /// <summary>A header larger than this is refused before it is read (real MLP headers are a few hundred bytes).</summary>
    public const int MaxHeaderBytes = 1 << 20;

    private static readonly Dictionary<string, int> s_floatSizes = new(StringComparer.Ordinal) { ["F16"] = 2, ["BF16"] = 2, ["F32"] = 4, ["F64"] = 8 };

    /// <summary>Reads the header of <paramref name="file"/> (named <paramref name="fileName"/> in errors) and checks it.</summary>
    public static ProxyCheckpointSummary Inspect(Stream file, string fileName)
    {
        var length = file.Length;
        Span<byte> prefix = stackalloc byte[8];
        if (length < 8 || file.ReadAtLeast(prefix, 8, throwOnEndOfStream: false) < 8)
        {
            throw Refuse(fileName, "is not a safetensors file: it is shorter than the 8-byte header length");
        }

        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength == 0 || headerLength > MaxHeaderBytes || headerLength > (ulong)(length - 8))
        {
            throw Refuse(fileName, $"is not a safetensors file: its header length {headerLength.ToString(CultureInfo.InvariantCulture)} is outside 1..{Math.Min(MaxHeaderBytes, length - 8)}");
        }

        var header = new byte[headerLength];
        file.ReadExactly(header);
        var dataLength = length - 8 - (long)headerLength;
        Dictionary<string, JsonElement> entries;
        try
        {
            entries = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(header)
                ?? throw Refuse(fileName, "has an empty safetensors header");
        }
        catch (JsonException exception)
        {
            throw Refuse(fileName, $"has a safetensors header that is not a JSON object ({exception.Message})");
        }

        var layers = new SortedDictionary<int, (long[]? Weight, long[]? Bias)>();
        string? dtype = null;
        long parameters = 0;
        foreach (var (name, entry) in entries.Where(e => e.Key != "__metadata__").OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            var match = MlpTensor().Match(name);
            if (!match.Success)
            {
                throw Refuse(fileName, $"tensor '{Excerpt(name)}' is not part of a tabular MLP (expected layers.N.weight and layers.N.bias)");
            }

            var (shape, type) = ReadTensor(entry, name, dataLength, fileName);
            if (dtype is not null && dtype != type)
            {
                throw Refuse(fileName, $"tensor '{name}' is {type} but earlier tensors are {dtype}; one float type throughout");
            }

            dtype = type;
            parameters += shape.Aggregate(1L, (a, b) => checked(a * b));
            var index = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            var layer = layers.GetValueOrDefault(index);
            layers[index] = match.Groups[2].Value == "weight" ? layer with { Weight = shape } : layer with { Bias = shape };
        }

        if (layers.Count == 0)
        {
            throw Refuse(fileName, "holds no tensors (expected layers.0.weight, layers.0.bias, ...)");
        }

        // nn.Sequential numbers Linear and ReLU alike, so Linear layers sit at 0, 2, 4, ...
        var widths = new List<int>();
        var position = 0;
        foreach (var (index, (weight, bias)) in layers)
        {
            if (index != 2 * position)
            {
                throw Refuse(fileName, $"tensor 'layers.{index}.weight' is out of place: the MLP's Linear layers are layers.0, layers.2, layers.4, ... and layers.{2 * position} is missing");
            }

            if (weight is null || weight.Length != 2)
            {
                throw Refuse(fileName, weight is null ? $"tensor 'layers.{index}.weight' is missing" : $"tensor 'layers.{index}.weight' has {weight.Length} dimensions, expected 2 ([out, in])");
            }

            if (bias is null || bias.Length != 1 || bias[0] != weight[0])
            {
                throw Refuse(fileName, bias is null ? $"tensor 'layers.{index}.bias' is missing" : $"tensor 'layers.{index}.bias' has shape [{string.Join(", ", bias)}], expected [{weight[0]}]");
            }

            if (weight[0] < 1 || weight[1] < 1 || weight[0] > int.MaxValue || weight[1] > int.MaxValue)
            {
                throw Refuse(fileName, $"tensor 'layers.{index}.weight' has shape [{weight[0]}, {weight[1]}]; both sizes must be at least 1");
            }

            if (widths.Count > 0 && weight[1] != widths[^1])
            {
                throw Refuse(fileName, $"tensor 'layers.{index}.weight' takes {weight[1]} inputs but the layer before gives {widths[^1]}");
            }

            if (widths.Count == 0)
            {
                widths.Add((int)weight[1]);
            }

            widths.Add((int)weight[0]);
            position++;
        }

        return new ProxyCheckpointSummary(widths[0], widths.Skip(1).SkipLast(1).ToArray(), widths[^1], layers.Count * 2, parameters, dtype!);
    }

    private static (long[] Shape, string DType) ReadTensor(JsonElement entry, string name, long dataLength, string fileName)
    {
        if (entry.ValueKind != JsonValueKind.Object
            || !entry.TryGetProperty("dtype", out var dtype) || dtype.ValueKind != JsonValueKind.String
            || !entry.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array
            || !entry.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
        {
            throw Refuse(fileName, $"tensor '{name}' lacks dtype, shape or data_offsets in the header");
        }

        var type = dtype.GetString()!;
        if (!s_floatSizes.TryGetValue(type, out var size))
        {
            throw Refuse(fileName, $"tensor '{name}' is {Excerpt(type)}; weights must be F16, BF16, F32 or F64");
        }

        var shape = new long[shapeElement.GetArrayLength()];
        var i = 0;
        foreach (var dimension in shapeElement.EnumerateArray())
        {
            if (!dimension.TryGetInt64(out shape[i]) || shape[i] < 0 || shape[i] > int.MaxValue)
            {
                throw Refuse(fileName, $"tensor '{name}' has a shape that is not a list of sizes");
            }

            i++;
        }

        if (!offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end) || begin < 0 || end < begin || end > dataLength)
        {
            throw Refuse(fileName, $"tensor '{name}' has data_offsets outside the file's {dataLength} bytes of data");
        }

        var expected = shape.Aggregate((long)size, (a, b) => a > long.MaxValue / Math.Max(b, 1) ? long.MaxValue : a * b);
        if (end - begin != expected)
        {
            throw Refuse(fileName, $"tensor '{name}' holds {end - begin} bytes but its shape [{string.Join(", ", shape)}] of {type} needs {expected}");
        }

        return (shape, type);
    }

    private static string Excerpt(string text) => text.Length <= 60 ? text : text[..60] + "...";

    private static CatalogException Refuse(string fileName, string problem) =>
        new(CatalogErrorKind.Invalid, "the checkpoint cannot be used", new Dictionary<string, string[]> { ["checkpoint"] = [$"{fileName}: {problem}"] });

    [GeneratedRegex(@"^layers\.(\d{1,4})\.(weight|bias)$")]
    private static partial Regex MlpTensor();
}
