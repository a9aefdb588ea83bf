using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using DataMarket.Ledger.Events;
using DataMarket.Ledger.Tests.Harness;

namespace DataMarket.Ledger.Tests.EventStore;

/// <summary>The contract every event store implementation must pass, run against PostgreSQL and SQLite.</summary>
public abstract class event_store_contract<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : LedgerDatabaseFixture
{
    private IEventStore Store => fixture.Database.Events;

    private static string NewStreamId() => "test-" + Guid.NewGuid().ToString("N");

    private static NewEvent Event(string type, int value, string? actor = "tester") => new(
        Guid.NewGuid(),
        type,
        $$"""{"value":{{value}},"note":"x"}""",
        new EventMetadata
        {
            Actor = actor,
            CorrelationId = "corr-" + value,
            CausationId = "cause-" + value,
            Timestamp = new DateTimeOffset(2026, 11, 3, 10, 0, 0, TimeSpan.Zero).AddTicks(value * 12_345L),
        });

    [Fact]
    public async Task appending_to_a_new_stream_round_trips_events_and_metadata()
    {
        var streamId = NewStreamId();
        var events = new[] { Event("Opened", 1), Event("Changed", 2), Event("Changed", 3) };

        var result = await Store.AppendAsync(streamId, "thing", ExpectedVersion.NoStream, events);

        Assert.Equal(3, result.StreamVersion);
        Assert.Equal(result.FirstSequence + 2, result.LastSequence);
        var stream = await Store.GetStreamAsync(streamId);
        Assert.Equal(new StreamInfo(streamId, "thing", 3), stream);

        var read = await Store.ReadStreamAsync(streamId);
        Assert.Equal([1L, 2L, 3L], read.Select(e => e.Version));
        Assert.Equal([result.FirstSequence, result.FirstSequence + 1, result.LastSequence], read.Select(e => e.Sequence));
        for (var i = 0; i < events.Length; i++)
        {
            Assert.Equal(events[i].EventId, read[i].EventId);
            Assert.Equal(events[i].Type, read[i].Type);
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(events[i].Data), JsonNode.Parse(read[i].Data)));
            Assert.Equal(events[i].Metadata.Normalized(), read[i].Metadata);
        }

        Assert.Equal([3L], (await Store.ReadStreamAsync(streamId, fromVersion: 3)).Select(e => e.Version));
    }

    [Fact]
    public async Task appending_with_a_stale_version_is_rejected_and_takes_no_sequence_number()
    {
        var streamId = NewStreamId();
        await Store.AppendAsync(streamId, "thing", ExpectedVersion.NoStream, [Event("A", 1), Event("B", 2)]);

        var stale = await Assert.ThrowsAsync<EventStreamConcurrencyException>(
            () => Store.AppendAsync(streamId, "thing", ExpectedVersion.Exactly(1), [Event("C", 3)]));
        Assert.Equal(2, stale.ActualVersion);
        Assert.True(stale.IsRetryable);

        var before = await Store.AppendAsync(NewStreamId(), "thing", ExpectedVersion.Any, [Event("D", 4)]);
        await Assert.ThrowsAsync<EventStreamConcurrencyException>(
            () => Store.AppendAsync(streamId, "thing", ExpectedVersion.Exactly(5), [Event("E", 5)]));
        var after = await Store.AppendAsync(NewStreamId(), "thing", ExpectedVersion.Any, [Event("F", 6)]);

        // The rejected append was checked before nextval: no gap in the global sequence.
        Assert.Equal(before.LastSequence + 1, after.FirstSequence);
        Assert.Equal(2, (await Store.ReadStreamAsync(streamId)).Count);
    }

    [Fact]
    public async Task no_stream_and_exact_expectations_are_enforced()
    {
        var streamId = NewStreamId();
        await Assert.ThrowsAsync<EventStreamConcurrencyException>(
            () => Store.AppendAsync(streamId, "thing", ExpectedVersion.Exactly(1), [Event("A", 1)]));
        await Store.AppendAsync(streamId, "thing", ExpectedVersion.NoStream, [Event("A", 1)]);
        await Assert.ThrowsAsync<EventStreamConcurrencyException>(
            () => Store.AppendAsync(streamId, "thing", ExpectedVersion.NoStream, [Event("B", 2)]));
        var appended = await Store.AppendAsync(streamId, "thing", ExpectedVersion.Exactly(1), [Event("B", 2)]);
        Assert.Equal(2, appended.StreamVersion);
        var any = await Store.AppendAsync(streamId, "thing", ExpectedVersion.Any, [Event("C", 3)]);
        Assert.Equal(3, any.StreamVersion);
        Assert.Null(await Store.GetStreamAsync(NewStreamId()));
    }

    [Fact]
    public async Task concurrent_appenders_to_one_stream_never_duplicate_or_lose_versions()
    {
        const int writers = 8;
        const int appendsPerWriter = 10;
        var streamId = NewStreamId();
        var acknowledged = new ConcurrentBag<Guid>();

        var tasks = Enumerable.Range(0, writers).Select(writer => Task.Run(async () =>
        {
            for (var i = 0; i < appendsPerWriter; i++)
            {
                var newEvent = Event("Tick", writer * 100 + i);
                while (true)
                {
                    var version = (await Store.GetStreamAsync(streamId))?.Version;
                    var expected = version is null ? ExpectedVersion.NoStream : ExpectedVersion.Exactly(version.Value);
                    try
                    {
                        await Store.AppendAsync(streamId, "ticker", expected, [newEvent]);
                        acknowledged.Add(newEvent.EventId);
                        break;
                    }
                    catch (EventStreamConcurrencyException exception) when (exception.IsRetryable)
                    {
                    }
                }
            }
        }));
        await Task.WhenAll(tasks);

        var read = await Store.ReadStreamAsync(streamId);
        Assert.Equal(Enumerable.Range(1, writers * appendsPerWriter).Select(v => (long)v), read.Select(e => e.Version));
        Assert.Equal(acknowledged.OrderBy(id => id), read.Select(e => e.EventId).OrderBy(id => id));
        Assert.True(read.Zip(read.Skip(1)).All(pair => pair.First.Sequence < pair.Second.Sequence));
    }

    [Fact]
    public async Task read_all_returns_every_acknowledged_event_in_strictly_increasing_global_order()
    {
        var start = await Store.GetHighWaterMarkAsync();
        var acknowledged = new ConcurrentBag<Guid>();
        var tasks = Enumerable.Range(0, 6).Select(writer => Task.Run(async () =>
        {
            for (var i = 0; i < 10; i++)
            {
                var batch = Enumerable.Range(0, 1 + (i % 3)).Select(k => Event("Bulk", writer * 1000 + i * 10 + k)).ToArray();
                await Store.AppendAsync(NewStreamId(), "bulk", ExpectedVersion.Any, batch);
                foreach (var e in batch)
                {
                    acknowledged.Add(e.EventId);
                }
            }
        }));
        await Task.WhenAll(tasks);

        var seen = new List<RecordedEvent>();
        var position = start;
        while (true)
        {
            var page = await Store.ReadAllAsync(position, 7);
            if (page.Count == 0)
            {
                break;
            }

            seen.AddRange(page);
            position = page[^1].Sequence;
        }

        Assert.True(seen.Zip(seen.Skip(1)).All(pair => pair.First.Sequence < pair.Second.Sequence));
        Assert.Subset(seen.Select(e => e.EventId).ToHashSet(), acknowledged.ToHashSet());
        Assert.Equal(acknowledged.Count, seen.Count(e => e.Type == "Bulk"));
    }

    [Fact]
    public async Task a_reader_tailing_during_concurrent_appends_sees_every_event_once_in_order()
    {
        var position = await Store.GetHighWaterMarkAsync();
        var acknowledged = new ConcurrentBag<Guid>();
        var writers = Enumerable.Range(0, 4).Select(writer => Task.Run(async () =>
        {
            for (var i = 0; i < 25; i++)
            {
                var batch = Enumerable.Range(0, 1 + (i % 2)).Select(k => Event("Tail", writer * 1000 + i * 10 + k)).ToArray();
                await Store.AppendAsync(NewStreamId(), "tail", ExpectedVersion.Any, batch);
                foreach (var e in batch)
                {
                    acknowledged.Add(e.EventId);
                }
            }
        })).ToArray();

        var seen = new List<RecordedEvent>();
        var writing = Task.WhenAll(writers);
        while (true)
        {
            var done = writing.IsCompleted;
            var page = await Store.ReadAllAsync(position, 50);
            seen.AddRange(page);
            if (page.Count > 0)
            {
                position = page[^1].Sequence;
            }
            else if (done)
            {
                break;
            }
        }

        await writing;
        Assert.True(seen.Zip(seen.Skip(1)).All(pair => pair.First.Sequence < pair.Second.Sequence));
        var tails = seen.Where(e => e.Type == "Tail").Select(e => e.EventId).ToList();
        Assert.Equal(tails.Count, tails.Distinct().Count());
        Assert.Equal(acknowledged.OrderBy(id => id), tails.OrderBy(id => id));
    }

    [Fact]
    public async Task opening_the_same_store_concurrently_is_idempotent_and_keeps_data()
    {
        var streamId = NewStreamId();
        await Store.AppendAsync(streamId, "thing", ExpectedVersion.NoStream, [Event("Kept", 1)]);

        var handles = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => fixture.OpenAnotherAsync()));
        try
        {
            foreach (var handle in handles)
            {
                Assert.Equal(["Kept"], (await handle.Events.ReadStreamAsync(streamId)).Select(e => e.Type));
            }
        }
        finally
        {
            foreach (var handle in handles)
            {
                await handle.DisposeAsync();
            }
        }
    }
}

public sealed class event_store_contract_on_postgres(PostgresFixture fixture) : event_store_contract<PostgresFixture>(fixture);

public sealed class event_store_contract_on_sqlite(SqliteFixture fixture) : event_store_contract<SqliteFixture>(fixture);
