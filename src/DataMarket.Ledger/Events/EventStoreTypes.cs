namespace DataMarket.Ledger.Events;

/// <summary>What the caller believes about a stream's version when appending.</summary>
public readonly record struct ExpectedVersion
{
    private const long AnyValue = -2;
    private const long NoStreamValue = -1;

    private ExpectedVersion(long value) => Value = value;

    /// <summary>-2 for <see cref="Any"/>, -1 for <see cref="NoStream"/>, otherwise the exact version.</summary>
    public long Value { get; }

    /// <summary>Append whatever the stream's version is (creating the stream if needed).</summary>
    public static ExpectedVersion Any => new(AnyValue);

    /// <summary>The stream must not exist yet.</summary>
    public static ExpectedVersion NoStream => new(NoStreamValue);

    /// <summary>The stream must be at exactly this version (0 means "exists with no events or does not exist").</summary>
    public static ExpectedVersion Exactly(long version)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        return new(version);
    }

    public bool IsAny => Value == AnyValue;
    public bool IsNoStream => Value == NoStreamValue;

    /// <summary>Whether a stream currently at <paramref name="currentVersion"/> (null: absent) satisfies this expectation.</summary>
    public bool IsSatisfiedBy(long? currentVersion) => Value switch
    {
        AnyValue => true,
        NoStreamValue => currentVersion is null,
        _ => (currentVersion ?? 0) == Value,
    };

    public override string ToString() => Value switch
    {
        AnyValue => "any",
        NoStreamValue => "no stream",
        _ => Value.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>Who did it, why, and when. Timestamps are stored to the microsecond (PostgreSQL's precision).</summary>
public sealed record EventMetadata
{
    public string? CorrelationId { get; init; }
    public string? CausationId { get; init; }
    public string? Actor { get; init; }
    public required DateTimeOffset Timestamp { get; init; }

    internal EventMetadata Normalized() => this with { Timestamp = Time.ToMicroseconds(Timestamp) };
}

/// <summary>An event to append: its type name and JSON payload.</summary>
public sealed record NewEvent(Guid EventId, string Type, string Data, EventMetadata Metadata);

/// <summary>One stream's part of <see cref="IEventStore.AppendManyAsync"/>.</summary>
public sealed record StreamAppendRequest(string StreamId, string StreamType, ExpectedVersion Expected, IReadOnlyList<NewEvent> Events);

/// <summary>An event as stored: global sequence, stream version, type, JSON payload, metadata.</summary>
public sealed record RecordedEvent(
    long Sequence,
    Guid EventId,
    string StreamId,
    long Version,
    string Type,
    string Data,
    EventMetadata Metadata);

/// <summary>The outcome of an append: the stream's new version and the global sequence numbers taken.</summary>
public sealed record AppendResult(long StreamVersion, long FirstSequence, long LastSequence);

public sealed record StreamInfo(string Id, string Type, long Version);

internal static class Time
{
    public static DateTimeOffset ToMicroseconds(DateTimeOffset value)
    {
        var utc = value.ToUniversalTime();
        return new DateTimeOffset(utc.Ticks - (utc.Ticks % 10), TimeSpan.Zero);
    }

    public static long ToUnixMicroseconds(DateTimeOffset value) =>
        (value.ToUniversalTime().Ticks - DateTimeOffset.UnixEpoch.Ticks) / 10;

    public static DateTimeOffset FromUnixMicroseconds(long micros) =>
        new(DateTimeOffset.UnixEpoch.Ticks + micros * 10, TimeSpan.Zero);
}
