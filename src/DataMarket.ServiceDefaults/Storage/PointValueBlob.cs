using System.Buffers.Binary;

namespace DataMarket.ServiceDefaults.Storage;

/// <summary>One listing's point values, in its file's row order; a null standard error is stored as NaN.</summary>
public sealed record PointValueSegment(Guid ListingId, double[] Values, double[] StandardErrors);

/// <summary>One point value read back from a blob; <see cref="Ordinal"/> is its position over all listings.</summary>
public readonly record struct StoredPointValue(int Ordinal, Guid ListingId, int Row, double Value, double? StandardError);

/// <summary>
/// The file a valuation's point values live in, so they travel by reference instead of inside a bus message and
/// never go row by row through the catalog's database. Layout (little-endian): the magic <c>DMPV0001</c>, the
/// listing count, then per listing its id (16 bytes) and row count, then 16 bytes per point (value, standard error)
/// in ordinal order. Fixed-size records let a page be read with one seek, whatever the page's offset.
/// </summary>
public static class PointValueBlob
{
    private const int RecordBytes = 16;
    private static readonly byte[] s_magic = "DMPV0001"u8.ToArray();

    public static void Write(Stream output, IReadOnlyList<PointValueSegment> segments)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(segments);
        var header = new byte[s_magic.Length + 4 + (segments.Count * 20)];
        s_magic.CopyTo(header, 0);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(s_magic.Length), segments.Count);
        var at = s_magic.Length + 4;
        foreach (var segment in segments)
        {
            if (segment.Values.Length != segment.StandardErrors.Length)
            {
                throw new ArgumentException($"listing {segment.ListingId}: {segment.Values.Length} values but {segment.StandardErrors.Length} standard errors");
            }

            segment.ListingId.TryWriteBytes(header.AsSpan(at, 16));
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(at + 16), segment.Values.Length);
            at += 20;
        }

        output.Write(header);
        var buffer = new byte[RecordBytes * 4096];
        foreach (var segment in segments)
        {
            for (var start = 0; start < segment.Values.Length; start += 4096)
            {
                var count = Math.Min(4096, segment.Values.Length - start);
                for (var i = 0; i < count; i++)
                {
                    BinaryPrimitives.WriteDoubleLittleEndian(buffer.AsSpan(i * RecordBytes), segment.Values[start + i]);
                    BinaryPrimitives.WriteDoubleLittleEndian(buffer.AsSpan((i * RecordBytes) + 8), segment.StandardErrors[start + i]);
                }

                output.Write(buffer, 0, count * RecordBytes);
            }
        }
    }

    /// <summary>Writes the values into the blob store and returns the blob's id and the number of points.</summary>
    public static async Task<(string BlobId, int Count)> StoreAsync(
        ContentAddressedBlobStore blobs, IReadOnlyList<PointValueSegment> segments, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blobs);
        var file = Path.Combine(blobs.Root, "scratch", $"{Guid.NewGuid():N}.points");
        try
        {
            await using (var output = new FileStream(file, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                Write(output, segments);
            }

            await using var input = File.OpenRead(file);
            using var staged = await blobs.StageAsync(input, cancellationToken: cancellationToken);
            return (staged.Commit(), segments.Sum(s => s.Values.Length));
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>Reads points <paramref name="offset"/> .. offset + limit - 1 (fewer at the end) and the total count.</summary>
    public static (int Total, IReadOnlyList<StoredPointValue> Items) ReadPage(Stream input, int offset, int limit)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        var fixedHeader = new byte[s_magic.Length + 4];
        input.ReadExactly(fixedHeader);
        if (!fixedHeader.AsSpan(0, s_magic.Length).SequenceEqual(s_magic))
        {
            throw new InvalidDataException("not a point-value blob (bad magic)");
        }

        var listingCount = BinaryPrimitives.ReadInt32LittleEndian(fixedHeader.AsSpan(s_magic.Length));
        var listings = new byte[listingCount * 20];
        input.ReadExactly(listings);
        var ids = new Guid[listingCount];
        var firstOrdinal = new int[listingCount + 1];
        for (var l = 0; l < listingCount; l++)
        {
            ids[l] = new Guid(listings.AsSpan(l * 20, 16));
            firstOrdinal[l + 1] = firstOrdinal[l] + BinaryPrimitives.ReadInt32LittleEndian(listings.AsSpan((l * 20) + 16));
        }

        var total = firstOrdinal[listingCount];
        var count = Math.Max(0, Math.Min(limit, total - offset));
        var items = new List<StoredPointValue>(count);
        if (count == 0)
        {
            return (total, items);
        }

        input.Seek((long)offset * RecordBytes, SeekOrigin.Current);
        var records = new byte[count * RecordBytes];
        input.ReadExactly(records);
        var listing = 0;
        for (var i = 0; i < count; i++)
        {
            var ordinal = offset + i;
            while (ordinal >= firstOrdinal[listing + 1])
            {
                listing++;
            }

            var value = BinaryPrimitives.ReadDoubleLittleEndian(records.AsSpan(i * RecordBytes));
            var error = BinaryPrimitives.ReadDoubleLittleEndian(records.AsSpan((i * RecordBytes) + 8));
            items.Add(new StoredPointValue(ordinal, ids[listing], ordinal - firstOrdinal[listing], value, double.IsFinite(error) ? error : null));
        }

        return (total, items);
    }

    /// <summary>
    /// The <paramref name="count"/> points with the lowest values (non-finite values skipped), lowest first, ties by
    /// ordinal so the answer never depends on read order. One pass over the blob, a page at a time (each page opens it
    /// afresh through <paramref name="open"/>), keeping only <paramref name="count"/> points in memory.
    /// </summary>
    public static IReadOnlyList<StoredPointValue> Lowest(Func<Stream> open, int count, int pageSize = 4096)
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pageSize);
        // A max-heap by (value, ordinal): its top is the worst point kept, the one a lower point replaces.
        var kept = new PriorityQueue<StoredPointValue, (double Value, int Ordinal)>(Comparer<(double Value, int Ordinal)>.Create((a, b) =>
            a.Value != b.Value ? b.Value.CompareTo(a.Value) : b.Ordinal.CompareTo(a.Ordinal)));
        var total = 1;
        for (var offset = 0; offset < total; offset += pageSize)
        {
            using var stream = open();
            var (all, items) = ReadPage(stream, offset, pageSize);
            total = all;
            foreach (var point in items)
            {
                if (!double.IsFinite(point.Value))
                {
                    continue;
                }

                if (kept.Count < count)
                {
                    kept.Enqueue(point, (point.Value, point.Ordinal));
                }
                else if (kept.TryPeek(out var worst, out _) && (point.Value < worst.Value || (point.Value == worst.Value && point.Ordinal < worst.Ordinal)))
                {
                    kept.EnqueueDequeue(point, (point.Value, point.Ordinal));
                }
            }
        }

        return kept.UnorderedItems.Select(e => e.Element).OrderBy(p => p.Value).ThenBy(p => p.Ordinal).ToList();
    }
}
