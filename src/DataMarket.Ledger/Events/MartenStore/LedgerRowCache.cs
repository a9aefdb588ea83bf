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
internal sealed class LedgerRowCache
{
    /// <summary>Past this many rows the cache starts over (a bound on memory; rows are read again as needed).</summary>
    private const int MaxRows = 200_000;

    private readonly ConcurrentDictionary<string, (AccountRow Row, long Revision)> _accounts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (StatementKey Key, StatementTotals Totals, long Revision)> _statements = new(StringComparer.Ordinal);

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
        _accounts[row.Id] = (row.Clone(), revision);
    }

    public void PutStatement(string id, StatementKey key, StatementTotals totals, long revision)
    {
        Bound();
        _statements[id] = (key, totals, revision);
    }

    /// <summary>Drops rows whose stored state is unknown (a failed or uncertain save, a stale read).</summary>
    public void Forget(IEnumerable<string> ids)
    {
        foreach (var id in ids)
        {
            _accounts.TryRemove(id, out _);
            _statements.TryRemove(id, out _);
        }
    }

    private void Bound()
    {
        if (_accounts.Count + _statements.Count >= MaxRows)
        {
            _accounts.Clear();
            _statements.Clear();
        }
    }
}
