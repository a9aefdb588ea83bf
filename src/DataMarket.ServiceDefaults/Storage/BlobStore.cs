using System.Security.Cryptography;

namespace DataMarket.ServiceDefaults.Storage;

/// <summary>Bound from the <c>Storage</c> configuration section.</summary>
public sealed class StorageOptions
{
    public const string SectionName = "Storage";

    /// <summary>Root folder of the blob store; every service of one market must point at the same folder.</summary>
    public string BlobRoot { get; set; } = Path.Combine(
        Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create),
        "datamarket",
        "blobs");
}

/// <summary>A file staged in the blob store's scratch folder, hashed while it was written, not yet committed.</summary>
public sealed class StagedBlob : IDisposable
{
    private readonly string _root;

    internal StagedBlob(string root, string path, string blobId, long length)
    {
        _root = root;
        Path = path;
        BlobId = blobId;
        Length = length;
    }

    public string Path { get; }

    /// <summary>Lower-case hex SHA-256 of the content.</summary>
    public string BlobId { get; }

    public long Length { get; }

    public bool Committed { get; private set; }

    /// <summary>Moves the staged file to its content address. Content that is already stored is kept as it is.</summary>
    public string Commit()
    {
        var target = ContentAddressedBlobStore.PathFor(_root, BlobId);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target)!);
        if (File.Exists(target))
        {
            File.Delete(Path);
        }
        else
        {
            // A move within one file system is atomic, so a reader never sees half a blob.
            try
            {
                File.Move(Path, target);
            }
            catch (IOException) when (File.Exists(target))
            {
                File.Delete(Path);
            }
        }

        Committed = true;
        return BlobId;
    }

    public void Dispose()
    {
        if (!Committed && File.Exists(Path))
        {
            File.Delete(Path);
        }
    }
}

/// <summary>
/// Immutable files on disk named by the SHA-256 of their bytes (<c>ab/cd/abcd...</c>). Uploads are written to
/// a scratch folder first and only committed once validated, so a rejected upload leaves nothing behind.
/// </summary>
public sealed class ContentAddressedBlobStore
{
    private readonly string _root;

    public ContentAddressedBlobStore(StorageOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _root = System.IO.Path.GetFullPath(options.BlobRoot);
        Directory.CreateDirectory(_root);
        Directory.CreateDirectory(ScratchFolder);
    }

    public string Root => _root;

    private string ScratchFolder => System.IO.Path.Combine(_root, "scratch");

    public async Task<StagedBlob> StageAsync(Stream content, long? maxBytes = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        var path = System.IO.Path.Combine(ScratchFolder, $"{Guid.NewGuid():N}.part");
        long length = 0;
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                var buffer = new byte[1 << 16];
                int read;
                while ((read = await content.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    length += read;
                    if (maxBytes is { } max && length > max)
                    {
                        throw new BlobTooLargeException(max);
                    }

                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                }
            }

            return new StagedBlob(_root, path, Convert.ToHexStringLower(hash.GetHashAndReset()), length);
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    public bool Exists(string blobId) => IsValidId(blobId) && File.Exists(PathFor(_root, blobId));

    public Stream OpenRead(string blobId)
    {
        if (!IsValidId(blobId))
        {
            throw new ArgumentException($"'{blobId}' is not a SHA-256 blob id", nameof(blobId));
        }

        var path = PathFor(_root, blobId);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"blob {blobId} is not in the store at {_root}", path);
        }

        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
    }

    /// <summary>Removes a blob (an erased account's upload that nothing else refers to); a missing blob is already gone.</summary>
    public void Delete(string blobId)
    {
        if (!IsValidId(blobId))
        {
            throw new ArgumentException($"'{blobId}' is not a SHA-256 blob id", nameof(blobId));
        }

        File.Delete(PathFor(_root, blobId));
    }

    internal static string PathFor(string root, string blobId) =>
        System.IO.Path.Combine(root, blobId[..2], blobId[2..4], blobId);

    private static bool IsValidId(string blobId) =>
        blobId.Length == 64 && blobId.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'));
}

public sealed class BlobTooLargeException(long maxBytes) : Exception($"the upload is larger than the limit of {maxBytes} bytes")
{
    public long MaxBytes { get; } = maxBytes;
}
