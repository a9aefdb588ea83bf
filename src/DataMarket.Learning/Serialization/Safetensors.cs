using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace DataMarket.Learning.Serialization;

/// <summary>A safetensors file that cannot be read: truncated, malformed header, or inconsistent entries.</summary>
public sealed class SafetensorsFormatException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>One tensor: dtype code ("F32", "F64", ...), shape, and raw little-endian bytes.</summary>
public sealed record SafetensorsTensor(string DType, int[] Shape, byte[] Data)
{
    public long ElementCount => Shape.Aggregate(1L, (count, size) => count * size);
}

/// <summary>
/// Reader and writer for the safetensors format: an 8-byte little-endian header length N, N bytes of
/// UTF-8 JSON mapping names to {dtype, shape, data_offsets} (plus optional "__metadata__"), then the
/// raw data, with offsets relative to the end of the header.
/// </summary>
public static class Safetensors
{
    private const long MaxHeaderBytes = 100_000_000; // the reference implementation's limit

    private static readonly Dictionary<string, int> s_itemSize = new()
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1,
        ["U64"] = 8, ["U32"] = 4, ["U16"] = 2, ["U8"] = 1, ["BOOL"] = 1,
    };

    public static int ItemSize(string dtype) =>
        s_itemSize.TryGetValue(dtype, out int size) ? size : throw new SafetensorsFormatException($"Unknown dtype '{dtype}'.");

    public static void Write(Stream stream, IEnumerable<KeyValuePair<string, SafetensorsTensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var entries = tensors.ToList();
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata)
                {
                    json.WriteString(key, value);
                }
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, tensor) in entries)
            {
                if (tensor.Data.Length != tensor.ElementCount * ItemSize(tensor.DType))
                {
                    throw new ArgumentException($"Tensor '{name}' has {tensor.Data.Length} bytes; shape [{string.Join(", ", tensor.Shape)}] of {tensor.DType} needs {tensor.ElementCount * ItemSize(tensor.DType)}.");
                }
                json.WriteStartObject(name);
                json.WriteString("dtype", tensor.DType);
                json.WriteStartArray("shape");
                foreach (int size in tensor.Shape)
                {
                    json.WriteNumberValue(size);
                }
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + tensor.Data.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += tensor.Data.Length;
            }
            json.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 so that the data section is aligned.
        while (buffer.Length % 8 != 0)
        {
            buffer.WriteByte((byte)' ');
        }
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)buffer.Length);
        stream.Write(length);
        buffer.Position = 0;
        buffer.CopyTo(stream);
        foreach (var (_, tensor) in entries)
        {
            stream.Write(tensor.Data);
        }
    }

    public static (IReadOnlyDictionary<string, SafetensorsTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(Stream stream)
    {
        Span<byte> lengthBytes = stackalloc byte[8];
        if (stream.ReadAtLeast(lengthBytes, 8, throwOnEndOfStream: false) < 8)
        {
            throw new SafetensorsFormatException("File is truncated: shorter than the 8-byte header length.");
        }
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > MaxHeaderBytes)
        {
            throw new SafetensorsFormatException($"Header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit; this is not a safetensors file or it is corrupt.");
        }
        var header = new byte[headerLength];
        if (stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length)
        {
            throw new SafetensorsFormatException($"File is truncated: the header claims {headerLength} bytes but the file ends before that.");
        }
        var rest = new MemoryStream();
        stream.CopyTo(rest);
        var data = rest.ToArray();

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header);
        }
        catch (JsonException exception)
        {
            throw new SafetensorsFormatException($"Header is not valid JSON: {exception.Message}", exception);
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new SafetensorsFormatException("Header must be a JSON object.");
            }
            var tensors = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var ranges = new List<(long Begin, long End, string Name)>();
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                    {
                        throw new SafetensorsFormatException("\"__metadata__\" must be an object of strings.");
                    }
                    foreach (var item in property.Value.EnumerateObject())
                    {
                        metadata[item.Name] = item.Value.ValueKind == JsonValueKind.String ? item.Value.GetString()!
                            : throw new SafetensorsFormatException($"Metadata value '{item.Name}' is not a string.");
                    }
                    continue;
                }
                var (dtype, shape, begin, end) = ParseEntry(property);
                long expected = shape.Aggregate(1L, (count, size) => count * size) * ItemSize(dtype);
                if (end - begin != expected)
                {
                    throw new SafetensorsFormatException($"Tensor '{property.Name}': data_offsets span {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtype} needs {expected}.");
                }
                if (end > data.Length)
                {
                    throw new SafetensorsFormatException($"File is truncated: tensor '{property.Name}' ends at byte {end} of a {data.Length}-byte data section.");
                }
                ranges.Add((begin, end, property.Name));
                tensors[property.Name] = new SafetensorsTensor(dtype, shape, data.AsSpan((int)begin, (int)(end - begin)).ToArray());
            }
            ranges.Sort();
            long covered = 0;
            foreach (var (begin, end, name) in ranges)
            {
                if (begin != covered)
                {
                    throw new SafetensorsFormatException($"Tensor '{name}' starts at byte {begin}; data must be contiguous and non-overlapping (expected {covered}).");
                }
                covered = end;
            }
            if (covered != data.Length)
            {
                throw new SafetensorsFormatException($"Data section has {data.Length} bytes but the tensors cover {covered}.");
            }
            return (tensors, metadata);
        }
    }

    private static (string DType, int[] Shape, long Begin, long End) ParseEntry(JsonProperty property)
    {
        try
        {
            var value = property.Value;
            string dtype = value.GetProperty("dtype").GetString() ?? throw new SafetensorsFormatException($"Tensor '{property.Name}' has no dtype.");
            ItemSize(dtype);
            var shape = value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            if (shape.Any(size => size < 0))
            {
                throw new SafetensorsFormatException($"Tensor '{property.Name}' has a negative dimension.");
            }
            var offsets = value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0])
            {
                throw new SafetensorsFormatException($"Tensor '{property.Name}' has invalid data_offsets [{string.Join(", ", offsets)}].");
            }
            return (dtype, shape, offsets[0], offsets[1]);
        }
        catch (Exception exception) when (exception is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new SafetensorsFormatException($"Tensor '{property.Name}' has a malformed header entry: {exception.Message}", exception);
        }
    }
}
