using System.Collections.Concurrent;
using DataMarket.Ledger.Projections;

namespace DataMarket.Ledger.Events.MartenStore;

/// <summary>
/// Accounts and seller statement rows as this process last read or wrote them, with their revisions, so a
/// group commit's first attempt needs no read round trip. Only ever a guess: a row another process (or a
/// rebuild) moved has a newer revision, the save's revision check refuses the write, the unit forgets the
/// rows and the group is decided again from a plain read. A refusal decided on cached rows is always
/// decided again from a plain read too (<see cref="Storage.LedgerRows.Optimistic"/>).
/// </summary>
/// <param name="maxRows">Past this many rows the cache starts over (a bound on memory; rows are read again as needed).</param>
internal sealed class LedgerRowCache(int maxRows = 200_000)
{
    private readonly ConcurrentDictionary<string, (AccountRow Row, long Revision)> _accounts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (StatementKey Key, StatementTotals Totals, long Revision)> _statements = new(StringComparer.Ordinal);

    /// <summary>
    /// About how many rows both dictionaries hold, kept beside them: <see cref="ConcurrentDictionary{TKey,TValue}.Count"/>
    /// takes every one of a dictionary's locks, and asked twice per row written it was a sixth of a settlement run's
    /// worker CPU. Races may leave it a row or two off, which only moves the moment the cache starts over.
    /// </summary>
    private int _rows;

    public bool TryGetAccount(string id, out AccountRow row, out long revision)
    {
        if (_accounts.TryGetValue(id, out var cached))
        {
            // A copy: the fold changes the rows it is given.
            (row, revision) = (cached.Row.Clone(), cached.Revision);
            return true;
        }

        (row, revision) = (null!, 0);
        return false;
    }

    public bool TryGetStatement(string id, out StatementKey key, out StatementTotals totals, out long revision)
    {
        var found = _statements.TryGetValue(id, out var cached);
        (key, totals, revision) = cached;
        return found;
    }

    public void PutAccount(AccountRow row, long revision)
    {
        Bound();
        Put(_accounts, row.Id, (row.Clone(), revision));
    }

    public void PutStatement(string id, StatementKey key, StatementTotals totals, long revision)
    {
        Bound();
        Put(_statements, id, (key, totals, revision));
    }

    /// <summary>Drops rows whose stored state is unknown (a failed or uncertain save, a stale read).</summary>
    public void Forget(IEnumerable<string> ids)
    {
        foreach (var id in ids)
        {
            Remove(_accounts, id);
            Remove(_statements, id);
        }
    }

    private void Put<T>(ConcurrentDictionary<string, T> rows, string id, T row)
    {
        if (rows.TryAdd(id, row))
        {
            Interlocked.Increment(ref _rows);
        }
        else
        {
            rows[id] = row;
        }
    }

    private void Remove<T>(ConcurrentDictionary<string, T> rows, string id)
    {
        if (rows.TryRemove(id, out _))
        {
            Interlocked.Decrement(ref _rows);
        }
    }

    private void Bound()
    {
        if (Volatile.Read(ref _rows) >= maxRows)
        {
            _accounts.Clear();
            _statements.Clear();
            Volatile.Write(ref _rows, 0);
        }
    }
}
