using System.Data.Common;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Projections;
using DataMarket.Ledger.Storage;

namespace DataMarket.Ledger.Events.Sqlite;

/// <summary>
/// One SQLite write transaction (BEGIN IMMEDIATE: writers take turns, so what is read stays true until the
/// commit). Writes are queued and sent at the commit: appends first, then rows.
/// </summary>
internal sealed class SqliteLedgerUnitOfWork : ILedgerUnitOfWork
{
    internal const string TransferColumns = "id, debit_account_id, credit_account_id, amount, currency, code, pending, state, batch_id, reference, created_at, resolved_at";
    internal const string AccountColumns = "id, kind, owner, currency, flags, debits_pending, debits_posted, credits_pending, credits_posted";

    private readonly SqliteBackend _backend;
    private readonly DbConnection _connection;
    private readonly DbTransaction _transaction;
    private readonly List<StreamAppend> _appends = [];
    private readonly List<SqlStatement> _statements = [];

    private SqliteLedgerUnitOfWork(SqliteBackend backend, DbConnection connection, DbTransaction transaction)
    {
        _backend = backend;
        _connection = connection;
        _transaction = transaction;
    }

    public static async Task<SqliteLedgerUnitOfWork> BeginAsync(SqliteBackend backend, CancellationToken cancellationToken)
    {
        var connection = await backend.OpenAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var transaction = await backend.BeginAsync(connection, cancellationToken).ConfigureAwait(false);
            return new SqliteLedgerUnitOfWork(backend, connection, transaction);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private string Table(string name) => _backend.Table(name);

    public async Task<LedgerRows> LoadAsync(LedgerKeys keys, CancellationToken cancellationToken)
    {
        var rows = new LedgerRows();
        if (keys.Transfers.Count > 0)
        {
            var (condition, parameters) = IdsIn("t", keys.Transfers.Select(id => id.ToString()).ToList());
            await ReadAsync($"SELECT {TransferColumns} FROM {Table("transfers")} WHERE {condition}", parameters, reader =>
            {
                var transfer = ReadTransfer(reader);
                rows.Transfers[transfer.Id] = transfer;
            }, cancellationToken).ConfigureAwait(false);
        }

        if (keys.Accounts.Count > 0)
        {
            var (condition, parameters) = IdsIn("a", keys.Accounts.Distinct(StringComparer.Ordinal).ToList());
            await ReadAsync($"SELECT {AccountColumns} FROM {Table("accounts")} WHERE {condition}", parameters, reader =>
            {
                var account = ReadAccount(reader);
                rows.Accounts[account.Id] = account;
            }, cancellationToken).ConfigureAwait(false);
        }

        if (keys.Statements.Count > 0)
        {
            // A superset (seller in the sellers, period in the periods); the caller looks up its own keys.
            var (sellers, sellerParameters) = IdsIn("ss", keys.Statements.Select(k => k.Seller).Distinct(StringComparer.Ordinal).ToList(), "seller");
            var (periods, periodParameters) = IdsIn("sp", keys.Statements.Select(k => k.Period).Distinct(StringComparer.Ordinal).ToList(), "period");
            await ReadAsync($"SELECT seller, currency, period, earned, held, paid FROM {Table("seller_statements")} WHERE {sellers} AND {periods}", [.. sellerParameters, .. periodParameters], reader =>
                rows.Statements[new StatementKey(reader.GetString(0), reader.GetString(1), reader.GetString(2))] =
                    new StatementTotals(reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5)),
                cancellationToken).ConfigureAwait(false);
        }

        if (keys.Inbox is { } inbox)
        {
            await ReadAsync($"SELECT rejection, detail FROM {Table("inbox")} WHERE consumer = @consumer AND message_id = @message", [("consumer", inbox.Consumer), ("message", inbox.MessageId.ToString())], reader =>
                rows.Inbox = new InboxOutcome(reader.IsDBNull(0) ? null : Enum.Parse<LedgerRejection>(reader.GetString(0)), reader.IsDBNull(1) ? null : reader.GetString(1)),
                cancellationToken).ConfigureAwait(false);
        }

        return rows;
    }

    private async Task ReadAsync(string sql, (string Name, object? Value)[] parameters, Action<DbDataReader> row, CancellationToken cancellationToken)
    {
        await using var command = StorageBackend.CreateCommand(_transaction, sql, parameters);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            row(reader);
        }
    }

    private static (string Condition, (string Name, object? Value)[] Parameters) IdsIn(string prefix, IReadOnlyList<string> ids, string column = "id")
    {
        var parameters = ids.Select((id, i) => ($"{prefix}{i}", (object?)id)).ToArray();
        return ($"{column} IN ({string.Join(", ", parameters.Select(p => "@" + p.Item1))})", parameters);
    }

    public void Append(StreamAppend append) => _appends.Add(append);

    public void PutAccount(AccountRow account) => _statements.Add(account.Loaded
        ? new SqlStatement(
            $"UPDATE {Table("accounts")} SET debits_pending = @dpend, debits_posted = @dpost, credits_pending = @cpend, credits_posted = @cpost WHERE id = @id",
            ("dpend", account.DebitsPending), ("dpost", account.DebitsPosted), ("cpend", account.CreditsPending), ("cpost", account.CreditsPosted), ("id", account.Id))
        : InsertAccount(_backend, account));

    internal static SqlStatement InsertAccount(SqliteBackend backend, AccountRow account) => new(
        $"INSERT INTO {backend.Table("accounts")} ({AccountColumns}) VALUES (@id, @kind, @owner, @currency, @flags, @dpend, @dpost, @cpend, @cpost)",
        ("id", account.Id), ("kind", AccountRef.KindName(account.Kind)), ("owner", account.Owner), ("currency", account.Currency),
        ("flags", (int)account.Flags), ("dpend", account.DebitsPending), ("dpost", account.DebitsPosted),
        ("cpend", account.CreditsPending), ("cpost", account.CreditsPosted));

    public void InsertTransfer(TransferRecord transfer) => _statements.Add(InsertTransfer(_backend, transfer));

    internal static SqlStatement InsertTransfer(SqliteBackend backend, TransferRecord transfer) => new(
        $"INSERT INTO {backend.Table("transfers")} ({TransferColumns}) VALUES (@id, @debit, @credit, @amount, @currency, @code, @pending, @state, @batch, @reference, @created, @resolved)",
        ("id", transfer.Id.ToString()), ("debit", transfer.DebitAccountId), ("credit", transfer.CreditAccountId),
        ("amount", transfer.Amount), ("currency", transfer.Currency), ("code", transfer.Code.ToString()),
        ("pending", transfer.Pending ? 1 : 0), ("state", transfer.State.ToString()), ("batch", transfer.BatchId?.ToString()),
        ("reference", transfer.Reference), ("created", Time.ToUnixMicroseconds(transfer.CreatedAt)),
        ("resolved", transfer.ResolvedAt is { } resolved ? Time.ToUnixMicroseconds(resolved) : null));

    public void UpdateTransfer(TransferRecord transfer) => _statements.Add(new SqlStatement(
        $"UPDATE {Table("transfers")} SET state = @state, resolved_at = @resolved WHERE id = @id",
        ("state", transfer.State.ToString()),
        ("resolved", transfer.ResolvedAt is { } resolved ? Time.ToUnixMicroseconds(resolved) : null),
        ("id", transfer.Id.ToString())));

    public void PutStatement(StatementKey key, StatementTotals delta, StatementTotals total) => _statements.Add(new SqlStatement(
        $"""
        INSERT INTO {Table("seller_statements")} AS st (seller, currency, period, earned, held, paid)
        VALUES (@seller, @currency, @period, @earned, @held, @paid)
        ON CONFLICT (seller, currency, period) DO UPDATE SET
            earned = st.earned + excluded.earned, held = st.held + excluded.held, paid = st.paid + excluded.paid
        """,
        ("seller", key.Seller), ("currency", key.Currency), ("period", key.Period),
        ("earned", delta.Earned), ("held", delta.Held), ("paid", delta.Paid)));

    internal static SqlStatement InsertStatement(SqliteBackend backend, StatementKey key, StatementTotals totals) => new(
        $"INSERT INTO {backend.Table("seller_statements")} (seller, currency, period, earned, held, paid) VALUES (@seller, @currency, @period, @earned, @held, @paid)",
        ("seller", key.Seller), ("currency", key.Currency), ("period", key.Period),
        ("earned", totals.Earned), ("held", totals.Held), ("paid", totals.Paid));

    public void AddOutbox(OutboxEntry entry) => _statements.Add(new SqlStatement(
        $"INSERT INTO {Table("outbox")} (id, type, payload, headers, created_at) VALUES (@id, @type, @payload, @headers, @created)",
        ("id", entry.MessageId.ToString()),
        ("type", entry.Type),
        ("payload", entry.Payload),
        ("headers", entry.Headers),
        ("created", entry.CreatedAtMicros)));

    public void RecordInbox(InboxReceipt receipt, DateTimeOffset processedAt, LedgerResult? rejection) => _statements.Add(new SqlStatement(
        $"INSERT INTO {Table("inbox")} (consumer, message_id, processed_at, rejection, detail) VALUES (@consumer, @message, @now, @rejection, @detail)",
        ("consumer", receipt.Consumer),
        ("message", receipt.MessageId.ToString()),
        ("now", Time.ToUnixMicroseconds(processedAt)),
        ("rejection", rejection?.Rejection?.ToString()),
        ("detail", rejection?.Detail)));

    public async Task CommitAsync(CancellationToken cancellationToken)
    {
        foreach (var append in _appends)
        {
            await _backend.AppendAsync(_transaction, append.StreamId, append.StreamType, append.Expected, append.Events, cancellationToken).ConfigureAwait(false);
        }

        await _backend.ExecuteAsync(_transaction, _statements, cancellationToken).ConfigureAwait(false);
        await _transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    internal static AccountRow ReadAccount(DbDataReader reader) => new()
    {
        Id = reader.GetString(0),
        Kind = AccountRef.ParseKind(reader.GetString(1)),
        Owner = reader.GetString(2),
        Currency = reader.GetString(3),
        Flags = (AccountFlags)reader.GetInt32(4),
        DebitsPending = reader.GetInt64(5),
        DebitsPosted = reader.GetInt64(6),
        CreditsPending = reader.GetInt64(7),
        CreditsPosted = reader.GetInt64(8),
        Loaded = true,
    };

    internal static TransferRecord ReadTransfer(DbDataReader reader) => new(
        Guid.Parse(reader.GetString(0)),
        reader.GetString(1),
        reader.GetString(2),
        reader.GetInt64(3),
        reader.GetString(4),
        Enum.Parse<TransferCode>(reader.GetString(5)),
        reader.GetInt32(6) != 0,
        Enum.Parse<TransferState>(reader.GetString(7)),
        reader.IsDBNull(8) ? null : Guid.Parse(reader.GetString(8)),
        reader.IsDBNull(9) ? null : reader.GetString(9),
        Time.FromUnixMicroseconds(reader.GetInt64(10)),
        reader.IsDBNull(11) ? null : Time.FromUnixMicroseconds(reader.GetInt64(11)));

    public async ValueTask DisposeAsync()
    {
        await _transaction.DisposeAsync().ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
    }
}
