using DataMarket.ServiceDefaults.Storage;
using DataMarket.Valuation.Shapley;

namespace DataMarket.ValuationWorker.Infrastructure;

/// <summary>
/// A valuation's working folder in the shared blob store (<c>valuations/{id}/</c>): one moments file per shard, named
/// by its index so a recomputed shard overwrites itself (written aside, then renamed: a reader never sees half a
/// file), and markers for started, cancelled/failed and completed. Every worker of the market sees the same folder.
/// </summary>
public sealed class ShardStore(ContentAddressedBlobStore blobs)
{
    public string Folder(Guid valuationId) => Path.Combine(blobs.Root, "valuations", valuationId.ToString("N"));

    /// <summary>The name of a LoGra valuation's gradient store in its folder: a coordinator that runs again overwrites it.</summary>
    public const string GradientStoreName = "logra-gradients.store";

    public void WriteShard(Guid valuationId, int index, ShardMoments moments) => WriteFile(valuationId, ShardName(index), moments.Write);

    /// <summary>Writes a file of the valuation's folder aside, then renames it over the old one: readers see all of it or none.</summary>
    public void WriteFile(Guid valuationId, string name, Action<Stream> write)
    {
        var folder = Folder(valuationId);
        Directory.CreateDirectory(folder);
        var temporary = Path.Combine(folder, $"{name}.{Guid.NewGuid():N}.part");
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(file);
                file.Flush(flushToDisk: true);
            }

            File.Move(temporary, Path.Combine(folder, name), overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    public Stream OpenFile(Guid valuationId, string name) =>
        new FileStream(Path.Combine(Folder(valuationId), name), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);

    public bool HasShard(Guid valuationId, int index) => File.Exists(ShardPath(valuationId, index));

    public ShardMoments ReadShard(Guid valuationId, int index)
    {
        using var file = new FileStream(ShardPath(valuationId, index), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return ShardMoments.Read(file);
    }

    /// <summary>The test-point range each stored shard covers (from its header only).</summary>
    public TestPointRange? StoredRange(Guid valuationId, int index)
    {
        try
        {
            using var file = new FileStream(ShardPath(valuationId, index), FileMode.Open, FileAccess.Read, FileShare.Read, 64);
            Span<byte> header = stackalloc byte[16];
            file.ReadExactly(header);
            return new TestPointRange(BitConverter.ToInt32(header[8..12]), BitConverter.ToInt32(header[12..16]));
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    public void MarkStarted(Guid valuationId, DateTimeOffset at) => WriteMarker(valuationId, "started", at.ToString("O"), overwrite: false);

    public DateTimeOffset? StartedAt(Guid valuationId) =>
        ReadMarker(valuationId, "started") is { } text ? DateTimeOffset.Parse(text, System.Globalization.CultureInfo.InvariantCulture) : null;

    /// <summary>Stops the valuation's remaining shards (cancelled by the buyer, or failed on bad data).</summary>
    public void MarkStopped(Guid valuationId, string reason) => WriteMarker(valuationId, "stopped", reason, overwrite: false);

    public bool IsStopped(Guid valuationId) => File.Exists(Path.Combine(Folder(valuationId), "stopped"));

    /// <summary>
    /// A token that trips once the valuation is stopped or <paramref name="outer"/> is cancelled. The stop marker may be
    /// written by another worker sharing this store, so it is looked for every <paramref name="period"/>.
    /// </summary>
    public StopWatcher WatchStopped(Guid valuationId, CancellationToken outer, TimeSpan? period = null) =>
        new(() => IsStopped(valuationId), outer, period ?? TimeSpan.FromMilliseconds(500));

    public void MarkCompleted(Guid valuationId) => WriteMarker(valuationId, "completed", DateTimeOffset.UtcNow.ToString("O"), overwrite: true);

    public bool IsCompleted(Guid valuationId) => File.Exists(Path.Combine(Folder(valuationId), "completed"));

    private string ShardPath(Guid valuationId, int index) => Path.Combine(Folder(valuationId), ShardName(index));

    private static string ShardName(int index) => $"shard-{index:D6}.moments";

    private void WriteMarker(Guid valuationId, string name, string content, bool overwrite)
    {
        var folder = Folder(valuationId);
        Directory.CreateDirectory(folder);
        try
        {
            using var file = new FileStream(Path.Combine(folder, name), overwrite ? FileMode.Create : FileMode.CreateNew, FileAccess.Write, FileShare.None);
            using var writer = new StreamWriter(file);
            writer.Write(content);
        }
        catch (IOException) when (!overwrite && File.Exists(Path.Combine(folder, name)))
        {
            // The first writer's content stands (the earliest start, the first reason to stop).
        }
    }

    private string? ReadMarker(Guid valuationId, string name)
    {
        var path = Path.Combine(Folder(valuationId), name);
        return File.Exists(path) ? File.ReadAllText(path) : null;
    }
}

/// <summary>Cancels <see cref="Token"/> when the condition it polls turns true (or the outer token is cancelled).</summary>
public sealed class StopWatcher : IDisposable
{
    private readonly CancellationTokenSource _source;
    private readonly Timer _timer;

    internal StopWatcher(Func<bool> stopped, CancellationToken outer, TimeSpan period)
    {
        _source = CancellationTokenSource.CreateLinkedTokenSource(outer);
        _timer = new Timer(_ =>
        {
            if (stopped() && !_source.IsCancellationRequested)
            {
                // The token's callbacks run on the thread pool, not in this timer callback: one of them may dispose
                // this watcher, and Dispose waits for the callback to end.
                _ = _source.CancelAsync();
            }
        }, null, TimeSpan.Zero, period);
    }

    public CancellationToken Token => _source.Token;

    public void Dispose()
    {
        // Wait for a poll in progress, so it never cancels a disposed source.
        using (var done = new ManualResetEvent(false))
        {
            if (_timer.Dispose(done))
            {
                done.WaitOne();
            }
        }

        _source.Dispose();
    }
}
