using System.IO.MemoryMappedFiles;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace DataMarket.Valuation.LoGra;

/// <summary>One watched layer's block in a store row.</summary>
public sealed record StoreLayer(string Name, int InputWidth, int OutputWidth, int InputRank, int OutputRank, int BlockSize);

/// <summary>
/// header.json of a gradient store. The store is complete when this file exists: writers put it in place last,
/// so a crashed writer leaves no store behind that a reader would accept.
/// </summary>
public sealed record GradientStoreHeader
{
    public const string CurrentFormat = "datamarket-logra-store/1";

    public string Format { get; init; } = CurrentFormat;

    [JsonPropertyName("dtype")]
    public GradientDType DType { get; init; }

    public long Count { get; init; }

    public int Dimension { get; init; }

    public IReadOnlyList<StoreLayer> Layers { get; init; } = [];

    public ProjectionInit Init { get; init; }

    public ulong Seed { get; init; }

    public string ModelFingerprint { get; init; } = "";

    public string GradientsFile { get; init; } = GradientStore.GradientsFileName;

    public string IdsFile { get; init; } = GradientStore.IdsFileName;

    public string ProjectionFile { get; init; } = GradientStore.ProjectionFileName;

    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    public static int ElementSize(GradientDType dtype) => dtype switch
    {
        GradientDType.Float16 => 2,
        GradientDType.Float32 => 4,
        GradientDType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };
}

/// <summary>
/// A directory holding N projected gradients: gradients.bin (N x D values, row-major, little-endian), ids.txt
/// (one example id per line), projection.safetensors (P_in and P_out per layer) and header.json. Rows are read
/// by memory mapping, one chunk at a time, so memory stays bounded whatever N is.
/// </summary>
public sealed class GradientStore : IDisposable
{
    public const string HeaderFileName = "header.json";
    public const string GradientsFileName = "gradients.bin";
    public const string IdsFileName = "ids.txt";
    public const string ProjectionFileName = "projection.safetensors";

    private readonly MemoryMappedFile? _map;

    private GradientStore(string directory, GradientStoreHeader header, IReadOnlyList<string> ids)
    {
        Directory = directory;
        Header = header;
        Ids = ids;
        var path = Path.Combine(directory, header.GradientsFile);
        long expected = header.Count * header.Dimension * GradientStoreHeader.ElementSize(header.DType);
        long actual = new FileInfo(path).Length;
        if (actual != expected)
        {
            throw new LograException($"{path}: holds {actual} bytes; the header's {header.Count} x {header.Dimension} {header.DType} rows need {expected}.");
        }

        if (expected > 0)
        {
            _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        }
    }

    public string Directory { get; }

    public GradientStoreHeader Header { get; }

    public IReadOnlyList<string> Ids { get; }

    public int Count => checked((int)Header.Count);

    public int Dimension => Header.Dimension;

    public static bool Exists(string directory) => File.Exists(Path.Combine(directory, HeaderFileName));

    /// <summary>Opens a complete store; with <paramref name="expectedModelFingerprint"/>, a store of another model is an error.</summary>
    public static GradientStore Open(string directory, string? expectedModelFingerprint = null)
    {
        var headerPath = Path.Combine(directory, HeaderFileName);
        if (!File.Exists(headerPath))
        {
            throw new LograException($"{directory}: not a gradient store (no {HeaderFileName}; an interrupted write leaves none).");
        }

        GradientStoreHeader header;
        try
        {
            header = JsonSerializer.Deserialize<GradientStoreHeader>(File.ReadAllText(headerPath), GradientStoreHeader.Json)
                ?? throw new LograException($"{headerPath}: empty header.");
        }
        catch (JsonException exception)
        {
            throw new LograException($"{headerPath}: unreadable header ({exception.Message})", exception);
        }

        if (header.Format != GradientStoreHeader.CurrentFormat)
        {
            throw new LograException($"{headerPath}: format '{header.Format}' is not {GradientStoreHeader.CurrentFormat}.");
        }

        if (expectedModelFingerprint is not null && header.ModelFingerprint != expectedModelFingerprint)
        {
            throw new LograException($"{directory}: the store was logged from model {Short(header.ModelFingerprint)}, but this valuation uses model {Short(expectedModelFingerprint)}; " +
                "gradients of another model cannot be scored against it (use a new --store folder or the same model).");
        }

        var ids = File.ReadAllLines(Path.Combine(directory, header.IdsFile), Encoding.UTF8);
        if (ids.Length != header.Count)
        {
            throw new LograException($"{directory}: {ids.Length} ids for {header.Count} rows.");
        }

        return new GradientStore(directory, header, ids);
    }

    public ProjectionSet LoadProjections()
    {
        var projections = ProjectionSet.Load(Path.Combine(Directory, Header.ProjectionFile));
        if (projections.ModelFingerprint != Header.ModelFingerprint || projections.Dimension != Dimension)
        {
            throw new LograException($"{Directory}: the projection file does not belong to this store.");
        }

        return projections;
    }

    /// <summary>Copies rows [start, start + count) into <paramref name="destination"/> (count x D), converting to float64.</summary>
    public unsafe void ReadRows(long start, int count, Span<double> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (start + count > Header.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"Rows {start}..{start + count} are past the store's {Header.Count}.");
        }

        long values = (long)count * Dimension;
        if (destination.Length < values)
        {
            throw new ArgumentException("The destination is too small.", nameof(destination));
        }

        if (values == 0)
        {
            return;
        }

        int size = GradientStoreHeader.ElementSize(Header.DType);
        using var view = _map!.CreateViewAccessor(start * Dimension * size, values * size, MemoryMappedFileAccess.Read);
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        try
        {
            var bytes = new ReadOnlySpan<byte>(pointer + view.PointerOffset, checked((int)(values * size)));
            var target = destination[..(int)values];
            switch (Header.DType)
            {
                case GradientDType.Float64:
                    MemoryMarshal.Cast<byte, double>(bytes).CopyTo(target);
                    break;
                case GradientDType.Float32:
                    System.Numerics.Tensors.TensorPrimitives.ConvertChecked<float, double>(MemoryMarshal.Cast<byte, float>(bytes), target);
                    break;
                default:
                    var halves = MemoryMarshal.Cast<byte, Half>(bytes);
                    for (int i = 0; i < halves.Length; i++)
                    {
                        target[i] = (double)halves[i];
                    }

                    break;
            }
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    /// <summary>
    /// Concatenates stores written by separate shards (same model, projection and dtype) into a new store at
    /// <paramref name="destination"/>, rows in shard order.
    /// </summary>
    public static GradientStore Concatenate(string destination, IReadOnlyList<string> shards)
    {
        if (shards.Count == 0)
        {
            throw new LograException("Concatenating needs at least one shard.");
        }

        var opened = shards.Select(s => Open(s)).ToList();
        try
        {
            var first = opened[0].Header;
            foreach (var shard in opened.Skip(1))
            {
                var header = shard.Header;
                if (header.ModelFingerprint != first.ModelFingerprint || header.DType != first.DType || !header.Layers.SequenceEqual(first.Layers)
                    || header.Seed != first.Seed || header.Init != first.Init
                    || !File.ReadAllBytes(Path.Combine(shard.Directory, header.ProjectionFile)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(opened[0].Directory, first.ProjectionFile))))
                {
                    throw new LograException($"{shard.Directory}: this shard was logged with another model, projection or dtype than {opened[0].Directory}.");
                }
            }

            using var staging = new StagedDirectory(destination);
            using (var output = File.Create(staging.PathOf(GradientsFileName)))
            {
                foreach (var shard in opened)
                {
                    using var input = File.OpenRead(Path.Combine(shard.Directory, shard.Header.GradientsFile));
                    input.CopyTo(output);
                }
            }

            File.WriteAllLines(staging.PathOf(IdsFileName), opened.SelectMany(s => s.Ids), new UTF8Encoding(false));
            File.Copy(Path.Combine(opened[0].Directory, first.ProjectionFile), staging.PathOf(ProjectionFileName));
            staging.Commit(first with
            {
                Count = opened.Sum(s => s.Header.Count),
                GradientsFile = GradientsFileName,
                IdsFile = IdsFileName,
                ProjectionFile = ProjectionFileName,
            });
        }
        finally
        {
            foreach (var shard in opened)
            {
                shard.Dispose();
            }
        }

        return Open(destination);
    }

    public void Dispose() => _map?.Dispose();

    private static string Short(string fingerprint) => fingerprint.Length > 12 ? fingerprint[..12] : fingerprint;
}

/// <summary>
/// Writes files under temporary names in the store directory; <see cref="Commit"/> renames them and puts the
/// header in place last. Disposing without a commit removes everything written.
/// </summary>
internal sealed class StagedDirectory : IDisposable
{
    private readonly string _directory;
    private readonly string _stamp = Guid.NewGuid().ToString("N");
    private readonly List<string> _files = [];
    private readonly bool _created;
    private bool _committed;

    public StagedDirectory(string directory)
    {
        _directory = Path.GetFullPath(directory);
        if (GradientStore.Exists(_directory))
        {
            throw new LograException($"{_directory}: a gradient store is already there; choose an empty folder.");
        }

        _created = !System.IO.Directory.Exists(_directory);
        System.IO.Directory.CreateDirectory(_directory);
    }

    public string PathOf(string name)
    {
        _files.Add(name);
        return Path.Combine(_directory, $".{name}.{_stamp}.partial");
    }

    public void Commit(GradientStoreHeader header)
    {
        foreach (var name in _files)
        {
            File.Move(Path.Combine(_directory, $".{name}.{_stamp}.partial"), Path.Combine(_directory, name), overwrite: true);
        }

        var headerTemporary = Path.Combine(_directory, $".{GradientStore.HeaderFileName}.{_stamp}.partial");
        File.WriteAllText(headerTemporary, JsonSerializer.Serialize(header, GradientStoreHeader.Json));
        File.Move(headerTemporary, Path.Combine(_directory, GradientStore.HeaderFileName));
        _committed = true;
    }

    public void Dispose()
    {
        if (_committed)
        {
            return;
        }

        foreach (var name in _files)
        {
            File.Delete(Path.Combine(_directory, $".{name}.{_stamp}.partial"));
        }

        if (_created && !System.IO.Directory.EnumerateFileSystemEntries(_directory).Any())
        {
            System.IO.Directory.Delete(_directory);
        }
    }
}

/// <summary>
/// Appends projected gradients to a new store through a bounded buffer. <see cref="Complete"/> makes the store
/// visible; disposing an incomplete writer leaves nothing behind.
/// </summary>
public sealed class GradientStoreWriter : IDisposable
{
    public const int DefaultBufferBytes = 16 << 20;

    private readonly StagedDirectory _staging;
    private readonly FileStream _gradients;
    private readonly StreamWriter _ids;
    private readonly byte[] _buffer;
    private readonly GradientStoreHeader _header;
    private int _buffered;
    private long _count;
    private bool _completed;

    public GradientStoreWriter(string directory, ProjectionSet projections, GradientDType dtype = GradientDType.Float32, int bufferBytes = DefaultBufferBytes)
    {
        ArgumentNullException.ThrowIfNull(projections);
        Projections = projections;
        DType = dtype;
        int rowBytes = projections.Dimension * GradientStoreHeader.ElementSize(dtype);
        _buffer = new byte[Math.Max(rowBytes, bufferBytes - bufferBytes % rowBytes)];
        _staging = new StagedDirectory(directory);
        try
        {
            projections.Save(_staging.PathOf(GradientStore.ProjectionFileName));
            _gradients = new FileStream(_staging.PathOf(GradientStore.GradientsFileName), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            _ids = new StreamWriter(_staging.PathOf(GradientStore.IdsFileName), false, new UTF8Encoding(false));
        }
        catch
        {
            _gradients?.Dispose();
            _staging.Dispose();
            throw;
        }

        _header = new GradientStoreHeader
        {
            DType = dtype,
            Dimension = projections.Dimension,
            Layers = projections.Layers.Select(l => new StoreLayer(l.Name, l.InputWidth, l.OutputWidth, l.InputRank, l.OutputRank, l.BlockSize)).ToList(),
            Init = projections.Init,
            Seed = projections.Seed,
            ModelFingerprint = projections.ModelFingerprint,
        };
        Directory = Path.GetFullPath(directory);
    }

    public string Directory { get; }

    public ProjectionSet Projections { get; }

    public GradientDType DType { get; }

    public long Count => _count;

    /// <summary>Appends rows (rows x D, row-major) with one id each; ids must not contain line breaks.</summary>
    public void Append<T>(ReadOnlySpan<T> rows, IReadOnlyList<string> ids) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        int dimension = Projections.Dimension;
        if (rows.Length != ids.Count * dimension)
        {
            throw new ArgumentException($"{rows.Length} values are not {ids.Count} rows of {dimension}.");
        }

        int size = GradientStoreHeader.ElementSize(DType);
        for (int r = 0; r < ids.Count; r++)
        {
            if (ids[r].AsSpan().IndexOfAny('\n', '\r') >= 0)
            {
                throw new ArgumentException($"Example id '{ids[r]}' contains a line break.");
            }

            if (_buffered + dimension * size > _buffer.Length)
            {
                Flush();
            }

            var row = rows.Slice(r * dimension, dimension);
            var target = _buffer.AsSpan(_buffered, dimension * size);
            switch (DType)
            {
                case GradientDType.Float64:
                    var doubles = MemoryMarshal.Cast<byte, double>(target);
                    for (int i = 0; i < dimension; i++)
                    {
                        doubles[i] = double.CreateTruncating(row[i]);
                    }

                    break;
                case GradientDType.Float32:
                    var floats = MemoryMarshal.Cast<byte, float>(target);
                    for (int i = 0; i < dimension; i++)
                    {
                        floats[i] = float.CreateTruncating(row[i]);
                    }

                    break;
                default:
                    var halves = MemoryMarshal.Cast<byte, Half>(target);
                    for (int i = 0; i < dimension; i++)
                    {
                        halves[i] = Half.CreateTruncating(row[i]);
                        if (Half.IsInfinity(halves[i]) && T.IsFinite(row[i]))
                        {
                            throw new LograException($"Example '{ids[r]}': a projected gradient value of {row[i]} overflows float16; use a float32 store.");
                        }
                    }

                    break;
            }

            _buffered += dimension * size;
            _ids.WriteLine(ids[r]);
            _count++;
        }
    }

    /// <summary>Flushes, writes the header and returns the opened store.</summary>
    public GradientStore Complete()
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        Flush();
        _gradients.Dispose();
        _ids.Dispose();
        _staging.Commit(_header with { Count = _count });
        _completed = true;
        _staging.Dispose();
        return GradientStore.Open(Directory);
    }

    public void Dispose()
    {
        if (_completed)
        {
            return;
        }

        _completed = true;
        _gradients.Dispose();
        _ids.Dispose();
        _staging.Dispose();
    }

    private void Flush()
    {
        _gradients.Write(_buffer, 0, _buffered);
        _buffered = 0;
    }
}
