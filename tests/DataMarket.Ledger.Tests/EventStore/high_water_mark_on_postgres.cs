using DataMarket.Ledger.Events;
using DataMarket.Ledger.Events.Postgres;
using DataMarket.Ledger.Tests.Harness;

namespace DataMarket.Ledger.Tests.EventStore;

/// <summary>
/// PostgreSQL hands out sequence numbers before commit, so a later sequence can commit first. A reader
/// must not move past the earlier one until it commits or aborts. (SQLite serializes writers, so its
/// sequence commits in order and needs no such test.)
/// </summary>
public sealed class high_water_mark_on_postgres(PostgresFixture fixture) : IClassFixture<PostgresFixture>
{
    /// <summary>An append in a transaction the test commits or rolls back later (a slow writer), with its versions and sequence numbers.</summary>
    private static async Task<AppendResult> AppendInAsync(PostgresBackend backend, System.Data.Common.DbTransaction transaction, string streamId, string streamType, ExpectedVersion expected, IReadOnlyList<NewEvent> events, CancellationToken cancellationToken)
    {
        var npgsql = (Npgsql.NpgsqlTransaction)transaction;
        Guid[] ids;
        await using (var session = backend.Marten.Store.LightweightSession(Marten.Services.SessionOptions.ForTransaction(npgsql)))
        {
            ids = backend.Marten.QueueAppend(session, new Storage.StreamAppend(streamId, streamType, expected, events)).Events.Select(e => e.Id).ToArray();
            await session.SaveChangesAsync(cancellationToken);
        }

        await using var command = new Npgsql.NpgsqlCommand($"SELECT max(version), min(seq_id), max(seq_id) FROM {backend.EventsTable} WHERE id = ANY(@ids)", npgsql.Connection, npgsql);
        command.Parameters.AddWithValue("ids", ids);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return new AppendResult(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
    }

    private static NewEvent Event(string type) => new(Guid.NewGuid(), type, "{}", new EventMetadata { Timestamp = DateTimeOffset.UtcNow });

    [Fact]
    public async Task an_event_committed_late_behind_a_gap_is_never_skipped()
    {
        var backend = (PostgresBackend)fixture.Database.Backend;
        // Long enough for Marten's high-water agent to poll after the slow append commits.
        backend.HighWaterMarkPatience = TimeSpan.FromSeconds(5);
        var store = fixture.Database.Events;
        var start = await store.GetHighWaterMarkAsync();

        await using var slowConnection = await backend.OpenAsync(CancellationToken.None);
        await using var slowTransaction = await backend.BeginAsync(slowConnection, CancellationToken.None);
        var slow = await AppendInAsync(backend, slowTransaction, "slow-" + Guid.NewGuid(), "test", ExpectedVersion.NoStream, [Event("Slow")], CancellationToken.None);
        var fast = await store.AppendAsync("fast-" + Guid.NewGuid(), "test", ExpectedVersion.NoStream, [Event("Fast")]);
        Assert.True(fast.FirstSequence > slow.LastSequence);

        // The fast event is committed, but the slow one below it is still in flight: hold the mark back.
        Assert.True(await store.GetHighWaterMarkAsync() < slow.FirstSequence);
        Assert.Empty(await store.ReadAllAsync(start, 100));

        await slowTransaction.CommitAsync();

        var all = await store.ReadAllAsync(start, 100);
        Assert.Equal(["Slow", "Fast"], all.Select(e => e.Type));
        Assert.Equal(fast.LastSequence, await store.GetHighWaterMarkAsync());
    }

    /// <summary>
    /// The slow writer's transaction id is newer than that of every transaction that has finished, so
    /// PostgreSQL leaves it out of a snapshot's list of running transactions (it lies above the
    /// snapshot's xmax). A mark that waited only for the listed transactions moved past its event.
    /// </summary>
    [Fact]
    public async Task an_event_from_the_newest_transaction_id_is_never_skipped()
    {
        var backend = (PostgresBackend)fixture.Database.Backend;
        // Long enough for Marten's high-water agent to poll after the slow append commits.
        backend.HighWaterMarkPatience = TimeSpan.FromSeconds(5);
        var store = fixture.Database.Events;
        var start = await store.GetHighWaterMarkAsync();

        await using var olderConnection = await backend.OpenAsync(CancellationToken.None);
        await using var olderTransaction = await backend.BeginAsync(olderConnection, CancellationToken.None);
        await using (var takeId = olderConnection.CreateCommand())
        {
            takeId.Transaction = olderTransaction;
            takeId.CommandText = "SELECT pg_current_xact_id()";
            await takeId.ExecuteScalarAsync();
        }

        await using var slowConnection = await backend.OpenAsync(CancellationToken.None);
        await using var slowTransaction = await backend.BeginAsync(slowConnection, CancellationToken.None);
        var slow = await AppendInAsync(backend, slowTransaction, "newest-" + Guid.NewGuid(), "test", ExpectedVersion.NoStream, [Event("Slow")], CancellationToken.None);
        var older = await AppendInAsync(backend, olderTransaction, "older-" + Guid.NewGuid(), "test", ExpectedVersion.NoStream, [Event("Older")], CancellationToken.None);
        await olderTransaction.CommitAsync();
        Assert.True(older.FirstSequence > slow.LastSequence);

        Assert.True(await store.GetHighWaterMarkAsync() < slow.FirstSequence);
        Assert.Empty(await store.ReadAllAsync(start, 100));

        await slowTransaction.CommitAsync();

        Assert.Equal(["Slow", "Older"], (await store.ReadAllAsync(start, 100)).Select(e => e.Type));
    }

    [Fact]
    public async Task a_rolled_back_append_leaves_a_gap_that_readers_pass()
    {
        var store = fixture.Database.Events;
        var backend = (PostgresBackend)fixture.Database.Backend;
        var start = await store.GetHighWaterMarkAsync();
        await using (var connection = await backend.OpenAsync(CancellationToken.None))
        await using (var transaction = await backend.BeginAsync(connection, CancellationToken.None))
        {
            await AppendInAsync(backend, transaction, "doomed-" + Guid.NewGuid(), "test", ExpectedVersion.NoStream, [Event("Doomed")], CancellationToken.None);
            await transaction.RollbackAsync();
        }

        var after = await store.AppendAsync("kept-" + Guid.NewGuid(), "test", ExpectedVersion.NoStream, [Event("Kept")]);

        Assert.Equal(after.LastSequence, await store.GetHighWaterMarkAsync());
        Assert.Equal(["Kept"], (await store.ReadAllAsync(start, 100)).Select(e => e.Type));
    }
}
