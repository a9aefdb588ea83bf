using DataMarket.Ledger.Events.MartenStore;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Projections;

namespace DataMarket.Ledger.Tests.Ledger;

/// <summary>
/// The row cache starts over once it holds its bound of rows, and counts rows, not writes: a row written again
/// takes no more room, and a row forgotten frees its room. The count is kept beside the dictionaries, so it must
/// stay right under writers on several threads.
/// </summary>
public sealed class row_cache_bound
{
    private static AccountRow Account(string id) => new() { Id = id, Kind = AccountKind.SellerPayable, Owner = id, Currency = "USD", Flags = AccountFlags.None };

    private static bool Holds(LedgerRowCache cache, string id) => cache.TryGetAccount(id, out _, out _);

    [Fact]
    public void rows_written_again_take_no_more_room_and_forgotten_rows_free_theirs()
    {
        var cache = new LedgerRowCache(maxRows: 3);
        cache.PutAccount(Account("a"), 1);
        cache.PutStatement("s", new StatementKey("a", "USD", "2026-11"), StatementTotals.Zero, 1);
        for (var revision = 2; revision < 10; revision++)
        {
            cache.PutAccount(Account("a"), revision);
        }

        Assert.True(cache.TryGetAccount("a", out _, out var latest));
        Assert.Equal(9, latest);
        cache.Forget(["s"]);
        cache.PutAccount(Account("b"), 1);
        Assert.True(Holds(cache, "a") && Holds(cache, "b"));

        // Three rows held: the next new one starts the cache over.
        cache.PutAccount(Account("c"), 1);
        cache.PutAccount(Account("d"), 1);
        Assert.False(Holds(cache, "a") || Holds(cache, "b") || Holds(cache, "c"));
        Assert.True(Holds(cache, "d"));
    }

    [Fact]
    public async Task the_count_stays_right_under_writers_on_several_threads()
    {
        const int bound = 10_000;
        var cache = new LedgerRowCache(maxRows: bound);
        var ids = Enumerable.Range(0, bound - 1).Select(i => $"acct-{i}").ToArray();
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 8 }, (id, _) =>
        {
            cache.PutAccount(Account(id), 1);
            cache.PutAccount(Account(id), 2);
            cache.Forget([id]);
            cache.PutAccount(Account(id), 3);
            return ValueTask.CompletedTask;
        });

        // bound - 1 rows: one more new row fits, and every row is still there.
        cache.PutAccount(Account("last"), 1);
        Assert.All(ids.Append("last"), id => Assert.True(Holds(cache, id), id));
        cache.PutAccount(Account("over"), 1);
        Assert.False(Holds(cache, ids[0]));
    }
}
