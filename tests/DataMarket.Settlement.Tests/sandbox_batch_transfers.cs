using DataMarket.Ledger.Events;
using DataMarket.SettlementService.Infrastructure;
using Npgsql;

namespace DataMarket.Settlement.Tests;

/// <summary>
/// The sandbox's batch of transfers (one transaction for a settlement batch) keeps a single transfer's idempotency:
/// a reused key with the same parameters answers the first transfer, with other parameters it is refused, and two
/// batches sharing keys at once create one transfer per key. On SQLite (embedded) and on PostgreSQL (Marten).
/// </summary>
public sealed class sandbox_batch_transfers : IAsyncLifetime
{
    private const string Period = "2026-11";
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..12];
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"datamarket-sandbox-batch-{Guid.NewGuid():N}");

    private string Schema => $"settlement_h12b_{_suffix}";

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await using var connection = new NpgsqlConnection(two_scheduler_nodes_on_postgres.ConnectionString);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {Schema} CASCADE", connection);
        await drop.ExecuteNonQueryAsync();
        Directory.Delete(_directory, recursive: true);
    }

    public static TheoryData<string> Stores => ["sqlite", "postgres"];

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task a_batch_answers_reused_keys_as_single_transfers_do(string kind)
    {
        await using var store = Open(kind);
        var rails = new SandboxRails(store, Options(kind));
        var first = await rails.TransferAsync(Key("a"), "acct_a", 100, "USD", Period, CancellationToken.None);

        // "a" again with its parameters, "b" again with another amount, "c" new: the batch cannot be recorded whole.
        var earlierB = await rails.TransferAsync(Key("b"), "acct_b", 200, "USD", Period, CancellationToken.None);
        var answers = await rails.TransferManyAsync([Transfer("a", 100), Transfer("b", 201), Transfer("c", 300)], 2, CancellationToken.None);

        Assert.Equal(RailsOutcome.Succeeded, answers[0].Outcome);
        Assert.Equal(first.ProviderId, answers[0].ProviderId);
        Assert.Equal(RailsOutcome.Declined, answers[1].Outcome);
        Assert.Contains("other parameters", answers[1].Reason, StringComparison.Ordinal);
        Assert.Equal(RailsOutcome.Succeeded, answers[2].Outcome);

        // A batch of only new keys is recorded; sending it again answers the same transfers and records nothing more.
        var fresh = await rails.TransferManyAsync([Transfer("d", 400), Transfer("e", 500)], 2, CancellationToken.None);
        var again = await rails.TransferManyAsync([Transfer("d", 400), Transfer("e", 500)], 2, CancellationToken.None);
        Assert.All(fresh, r => Assert.Equal(RailsOutcome.Succeeded, r.Outcome));
        Assert.Equal(fresh.Select(r => r.ProviderId), again.Select(r => r.ProviderId));

        var held = await rails.ListTransfersAsync(Period, CancellationToken.None);
        Assert.Equal(["a", "b", "c", "d", "e"], held.Select(t => t.IdempotencyKey[(Key("").Length)..]).Order(StringComparer.Ordinal));
        Assert.Equal(200, held.Single(t => t.IdempotencyKey == Key("b")).Amount);
        Assert.Equal(earlierB.ProviderId, held.Single(t => t.IdempotencyKey == Key("b")).ProviderId);
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task batches_sharing_keys_at_once_create_one_transfer_per_key(string kind)
    {
        await using var store = Open(kind);
        var rails = new SandboxRails(store, Options(kind));
        var keys = Enumerable.Range(0, 40).Select(i => $"k{i:D2}").ToArray();

        // Four batches over overlapping halves of the keys, in different orders, all at once.
        var batches = new[] { keys[..30], keys[10..], keys[..30].Reverse().ToArray(), keys.Reverse().ToArray() }
            .Select(batch => batch.Select(k => Transfer(k, 1_000 + int.Parse(k[1..], System.Globalization.CultureInfo.InvariantCulture))).ToList())
            .ToList();
        var answers = await Task.WhenAll(batches.Select(batch => Task.Run(() => rails.TransferManyAsync(batch, 4, CancellationToken.None))));

        var providerIds = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var b = 0; b < batches.Count; b++)
        {
            for (var i = 0; i < batches[b].Count; i++)
            {
                Assert.Equal(RailsOutcome.Succeeded, answers[b][i].Outcome);
                // Every batch that carried a key got the one transfer that key has.
                Assert.Equal(providerIds.TryAdd(batches[b][i].IdempotencyKey, answers[b][i].ProviderId!) ? answers[b][i].ProviderId : providerIds[batches[b][i].IdempotencyKey], answers[b][i].ProviderId);
            }
        }

        var held = await rails.ListTransfersAsync(Period, CancellationToken.None);
        Assert.Equal(keys.Select(Key), held.Select(t => t.IdempotencyKey).Order(StringComparer.Ordinal));
        Assert.All(held, t => Assert.Equal(providerIds[t.IdempotencyKey], t.ProviderId));
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task a_multi_stream_append_writes_all_of_its_streams_or_none(string kind)
    {
        await using var store = Open(kind);
        var events = await store.EventsAsync(CancellationToken.None);
        static StreamAppendRequest New(string id) => new(id, "test", ExpectedVersion.NoStream,
            [new NewEvent(Guid.NewGuid(), "Test", "{}", new EventMetadata { Timestamp = DateTimeOffset.UtcNow })]);

        await events.AppendManyAsync([New("s-1"), New("s-2")]);
        Assert.Equal(1, (await events.GetStreamAsync("s-1"))!.Version);
        Assert.Equal(1, (await events.GetStreamAsync("s-2"))!.Version);

        // s-2 exists: the whole append fails and s-3 is not created.
        await Assert.ThrowsAsync<EventStreamConcurrencyException>(() => events.AppendManyAsync([New("s-3"), New("s-2")]));
        Assert.Null(await events.GetStreamAsync("s-3"));
        Assert.Single(await events.ReadStreamAsync("s-2"));
    }

    private static string Key(string seller) => $"payout:{Period}:{seller}";

    private static RailsTransfer Transfer(string seller, long amount) => new(Key(seller), $"acct_{seller}", amount, "USD", Period);

    private SettlementOptions Options(string kind) => kind == "sqlite"
        ? new SettlementOptions { Store = SettlementStoreKind.Sqlite, ConnectionString = $"Data Source={Path.Combine(_directory, "settlement.db")}", Rails = RailsKind.Sandbox }
        : new SettlementOptions { Store = SettlementStoreKind.Postgres, ConnectionString = two_scheduler_nodes_on_postgres.ConnectionString, Schema = Schema, Rails = RailsKind.Sandbox };

    private SettlementStore Open(string kind) => new(Options(kind));
}
