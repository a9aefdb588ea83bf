namespace DataMarket.Ledger.Events;

/// <summary>
/// A stream was not at the version the writer expected, or a concurrent writer won a race for it.
/// Nothing was written; the caller may re-read the stream and retry.
/// </summary>
public sealed class EventStreamConcurrencyException : Exception
{
    public EventStreamConcurrencyException(string streamId, ExpectedVersion expected, long? actualVersion, Exception? inner = null)
        : base($"Stream '{streamId}' expected at version {expected} but was {(actualVersion is null ? "absent" : actualVersion.Value.ToString(System.Globalization.CultureInfo.InvariantCulture))}.", inner)
    {
        StreamId = streamId;
        Expected = expected;
        ActualVersion = actualVersion;
    }

    public string StreamId { get; }
    public ExpectedVersion Expected { get; }

    /// <summary>The version seen, or null when the stream was absent or unknown (lost a creation race).</summary>
    public long? ActualVersion { get; }

    /// <summary>Always true: nothing was written, so retrying after re-reading is safe.</summary>
    public bool IsRetryable => true;
}
