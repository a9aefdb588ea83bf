using System.Data.Common;
using DataMarket.Ledger.Events;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Projections;
using DataMarket.Ledger.Storage;

namespace DataMarket.Ledger.Verification;

/// <summary>Replays the log and checks every ledger invariant against the inline projections.</summary>
internal sealed class LedgerVerifier(StorageBackend backend)
{
    public async Task<LedgerVerificationReport> VerifyAsync(CancellationToken cancellationToken)
    {
        await using var connection = await backend.OpenAsync(cancellationToken).ConfigureAwait(false);
        // One snapshot for everything, so a live ledger's in-flight commands cannot make it disagree with itself.
        await using var transaction = await backend.BeginSnapshotAsync(connection, cancellationToken).ConfigureAwait(false);

        var checks = new List<LedgerCheck>();
        var (replayed, replayErrors, events) = await ReplayAsync(backend, transaction, cancellationToken).ConfigureAwait(false);
        var inline = await backend.ReadProjectionsAsync(transaction, cancellationToken).ConfigureAwait(false);

        var currencies = inline.Accounts.Values
            .GroupBy(a => a.Currency, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new CurrencyTotals(g.Key, Sum(g, a => a.DebitsPosted), Sum(g, a => a.CreditsPosted), Sum(g, a => a.DebitsPending), Sum(g, a => a.CreditsPending)))
            .ToList();
        var unbalanced = currencies.Where(c => c.DebitsPosted != c.CreditsPosted || c.DebitsPending != c.CreditsPending).Select(c => c.Currency).ToList();
        checks.Add(new LedgerCheck("debits equal credits per currency", unbalanced.Count == 0, unbalanced.Count == 0 ? $"{currencies.Count} currencies balanced" : "unbalanced: " + string.Join(", ", unbalanced)));

        var negative = inline.Accounts.Values.Where(a => !a.IsWithinLimits()).Select(a => a.Id).ToList();
        checks.Add(new LedgerCheck("no forbidden negative balance", negative.Count == 0, negative.Count == 0 ? $"{inline.Accounts.Count} accounts within limits" : string.Join(", ", negative.Take(10))));

        var badStreams = await ScalarAsync(transaction,
            $"""
            SELECT count(*) FROM {backend.StreamsTable} s
            WHERE (s.version <> (SELECT count(*) FROM {backend.EventsTable} e WHERE e.stream_id = s.id)
               OR s.version <> (SELECT coalesce(max(e.version), 0) FROM {backend.EventsTable} e WHERE e.stream_id = s.id)
               OR 1 > (SELECT coalesce(min(e.version), 1) FROM {backend.EventsTable} e WHERE e.stream_id = s.id))
               AND {backend.LogStream("s.id")}
            """,
            cancellationToken).ConfigureAwait(false);
        checks.Add(new LedgerCheck("stream versions contiguous from 1", badStreams == 0, badStreams == 0 ? "all streams contiguous" : $"{badStreams} streams with gaps or wrong version"));

        var orphans = await ScalarAsync(transaction,
            $"SELECT count(*) FROM {backend.EventsTable} e WHERE NOT EXISTS (SELECT 1 FROM {backend.StreamsTable} s WHERE s.id = e.stream_id) AND {backend.LogStream("e.stream_id")}",
            cancellationToken).ConfigureAwait(false);
        checks.Add(new LedgerCheck("every event belongs to a stream", orphans == 0, orphans == 0 ? "no orphan events" : $"{orphans} events without a stream row"));

        var misordered = await ScalarAsync(transaction,
            $"""
            SELECT count(*) FROM (
                SELECT {backend.SequenceColumn} AS seq, lag({backend.SequenceColumn}) OVER (PARTITION BY stream_id ORDER BY version) AS previous FROM {backend.EventsTable} WHERE {backend.LogStream("stream_id")}) x
            WHERE x.previous IS NOT NULL AND x.previous >= x.seq
            """,
            cancellationToken).ConfigureAwait(false);
        checks.Add(new LedgerCheck("global sequence increases with stream version", misordered == 0, misordered == 0 ? "ordered" : $"{misordered} events out of order"));

        checks.Add(new LedgerCheck("log replays without breaking a rule", replayErrors.Count == 0, replayErrors.Count == 0 ? $"{events} events replayed" : string.Join("; ", replayErrors.Take(5))));

        var differences = Compare(inline, replayed);
        checks.Add(new LedgerCheck("rebuild equals inline projections", differences.Count == 0, differences.Count == 0 ? "accounts, transfers and statements identical" : string.Join("; ", differences.Take(10))));

        var streams = await ScalarAsync(transaction, $"SELECT count(*) FROM {backend.StreamsTable} WHERE {backend.LogStream("id")}", cancellationToken).ConfigureAwait(false);
        var undispatched = await backend.CountUndispatchedAsync(transaction, cancellationToken).ConfigureAwait(false);
        await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);

        return new LedgerVerificationReport(
            checks,
            events,
            streams,
            inline.Accounts.Count,
            inline.Transfers.Count,
            inline.Transfers.Values.LongCount(t => t.State == TransferState.Pending),
            undispatched,
            currencies);
    }

    /// <summary>Folds every ledger event in global order (other event types in the store are ignored).</summary>
    internal static async Task<(LedgerProjection Projection, List<string> Errors, long Events)> ReplayAsync(StorageBackend backend, DbTransaction transaction, CancellationToken cancellationToken) =>
        Replay(await backend.ReadLogAsync(transaction, cancellationToken).ConfigureAwait(false));

    internal static (LedgerProjection Projection, List<string> Errors, long Events) Replay(IReadOnlyList<RecordedEvent> log)
    {
        var projection = new LedgerProjection();
        var errors = new List<string>();
        long count = 0;
        foreach (var recorded in log)
        {
            count++;
            var ledgerEvent = LedgerEvent.FromJson(recorded.Type, recorded.Data);
            if (ledgerEvent is null)
            {
                continue;
            }

            try
            {
                if (projection.Apply(ledgerEvent, recorded.Metadata.Timestamp) is { } rejection)
                {
                    errors.Add($"seq {recorded.Sequence}: {rejection.Detail}");
                }
            }
            catch (KeyNotFoundException)
            {
                errors.Add($"seq {recorded.Sequence}: refers to an unknown account or transfer");
            }
        }

        return (projection, errors, count);
    }

    private static List<string> Compare(LedgerProjection inline, LedgerProjection replayed)
    {
        var differences = new List<string>();
        foreach (var id in inline.Accounts.Keys.Union(replayed.Accounts.Keys))
        {
            var a = inline.Accounts.GetValueOrDefault(id)?.ToBalance();
            var b = replayed.Accounts.GetValueOrDefault(id)?.ToBalance();
            if (a != b)
            {
                differences.Add($"account {id}: inline {a?.ToString() ?? "missing"}, replayed {b?.ToString() ?? "missing"}");
            }
        }

        foreach (var id in inline.Transfers.Keys.Union(replayed.Transfers.Keys))
        {
            var a = inline.Transfers.GetValueOrDefault(id);
            var b = replayed.Transfers.GetValueOrDefault(id);
            if (a != b)
            {
                differences.Add($"transfer {id}: inline {a?.ToString() ?? "missing"}, replayed {b?.ToString() ?? "missing"}");
            }
        }

        foreach (var key in inline.Statements.Keys.Union(replayed.Statements.Keys))
        {
            var a = inline.Statements.GetValueOrDefault(key);
            var b = replayed.Statements.GetValueOrDefault(key);
            if (a != b)
            {
                differences.Add($"statement {key}: inline {a?.ToString() ?? "missing"}, replayed {b?.ToString() ?? "missing"}");
            }
        }

        return differences;
    }

    /// <summary>Adds in 128 bits: a currency's total over many accounts may pass 64 bits, and must still get a verdict.</summary>
    private static Int128 Sum(IEnumerable<AccountRow> accounts, Func<AccountRow, long> figure)
    {
        Int128 total = 0;
        foreach (var account in accounts)
        {
            total += figure(account);
        }

        return total;
    }

    private static async Task<long> ScalarAsync(DbTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = StorageBackend.CreateCommand(transaction, sql);
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }
}
