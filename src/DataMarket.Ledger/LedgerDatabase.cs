using DataMarket.Ledger.Events;
using DataMarket.Ledger.Events.Postgres;
using DataMarket.Ledger.Events.Sqlite;
using DataMarket.Ledger.Storage;

namespace DataMarket.Ledger;

/// <summary>
/// The ledger's database: event store, double-entry ledger, outbox and inbox, on PostgreSQL (server mode)
/// or SQLite (embedded mode). Opening it creates or migrates its schema (idempotent DDL).
/// </summary>
public sealed class LedgerDatabase : IAsyncDisposable
{
    private LedgerDatabase(StorageBackend backend, TimeProvider timeProvider)
    {
        Backend = backend;
        Events = new RelationalEventStore(backend);
        TimeProvider = timeProvider;
    }

    /// <summary>"postgresql" or "sqlite".</summary>
    public string Provider => Backend.ProviderName;

    public IEventStore Events { get; }

    internal StorageBackend Backend { get; }

    internal TimeProvider TimeProvider { get; }

    /// <summary>Opens (and creates or migrates) a ledger in <paramref name="schema"/> on PostgreSQL.</summary>
    public static Task<LedgerDatabase> OpenPostgresAsync(
        string connectionString,
        string schema = "ledger",
        TimeProvider? timeProvider = null,
        CancellationToken cancellationToken = default) =>
        OpenAsync(new PostgresBackend(connectionString, schema), timeProvider, cancellationToken);

    /// <summary>Opens (and creates or migrates) a ledger in a SQLite file, e.g. "Data Source=datamarket.db".</summary>
    public static Task<LedgerDatabase> OpenSqliteAsync(
        string connectionString,
        string tablePrefix = "ledger",
        TimeProvider? timeProvider = null,
        CancellationToken cancellationToken = default) =>
        OpenAsync(new SqliteBackend(connectionString, tablePrefix), timeProvider, cancellationToken);

    private static async Task<LedgerDatabase> OpenAsync(StorageBackend backend, TimeProvider? timeProvider, CancellationToken cancellationToken)
    {
        try
        {
            await backend.InitializeAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await backend.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return new LedgerDatabase(backend, timeProvider ?? TimeProvider.System);
    }

    public ValueTask DisposeAsync() => Backend.DisposeAsync();
}
