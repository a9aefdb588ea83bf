using DataMarket.Ledger.Storage;
using DataMarket.Ledger.Verification;

namespace DataMarket.Ledger.Projections;

/// <summary>Throws the projections away and replays the log into them, in one transaction.</summary>
internal sealed class ProjectionRebuilder(StorageBackend backend, LedgerService ledger)
{
    public async Task<long> RebuildAsync(CancellationToken cancellationToken)
    {
        await using var connection = await backend.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await backend.BeginAsync(connection, cancellationToken).ConfigureAwait(false);
        if (backend.ForUpdate.Length > 0)
        {
            // Writers wait for the rebuild; readers keep reading the old state until it commits.
            await using var lockTables = StorageBackend.CreateCommand(
                transaction,
                $"LOCK TABLE {backend.Table("accounts")}, {backend.Table("transfers")}, {backend.Table("seller_statements")} IN EXCLUSIVE MODE");
            await lockTables.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var (projection, errors, events) = await LedgerVerifier.ReplayAsync(backend, transaction, cancellationToken).ConfigureAwait(false);
        if (errors.Count > 0)
        {
            throw new InvalidOperationException("The log does not replay cleanly: " + string.Join("; ", errors.Take(5)));
        }

        var statements = new List<SqlStatement>
        {
            new($"DELETE FROM {backend.Table("accounts")}"),
            new($"DELETE FROM {backend.Table("transfers")}"),
            new($"DELETE FROM {backend.Table("seller_statements")}"),
        };
        statements.AddRange(projection.Accounts.Values.Select(ledger.UpsertAccount));
        statements.AddRange(projection.Transfers.Values.Select(ledger.InsertTransfer));
        statements.AddRange(projection.Statements.Select(pair => LedgerService.StatementInsert(backend, pair.Key, pair.Value)));
        foreach (var chunk in statements.Chunk(1000))
        {
            await backend.ExecuteAsync(transaction, chunk, cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return events;
    }
}
