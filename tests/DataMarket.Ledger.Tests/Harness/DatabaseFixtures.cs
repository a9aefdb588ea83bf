using DataMarket.Ledger.Events.Postgres;

namespace DataMarket.Ledger.Tests.Harness;

/// <summary>One ledger database per test class: a fresh schema on PostgreSQL, a fresh file on SQLite.</summary>
public abstract class LedgerDatabaseFixture : IAsyncLifetime
{
    private LedgerDatabase? _database;

    public LedgerDatabase Database => _database ?? throw new InvalidOperationException("Fixture not initialized.");

    public abstract string Provider { get; }

    /// <summary>Where the database is, for a child process to open it: schema on PostgreSQL, table prefix on SQLite.</summary>
    public abstract (string ConnectionString, string Schema) Location { get; }

    /// <summary>Opens another handle on the same database, as a restarted process would.</summary>
    public abstract Task<LedgerDatabase> OpenAnotherAsync(TimeProvider? timeProvider = null);

    public async Task InitializeAsync() => _database = await OpenAnotherAsync();

    public virtual async Task DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }
}

public sealed class PostgresFixture : LedgerDatabaseFixture
{
    public static string ConnectionString { get; } = WithSmallPool(
        Environment.GetEnvironmentVariable("DATAMARKET_TEST_POSTGRES") is { Length: > 0 } value
            ? value
            : "Host=127.0.0.1;Port=5432;Username=datamarket;Password=datamarket;Database=datamarket");

    /// <summary>Other test projects share the server's connection slots: each test class's pool stays small (writers then queue, not fail).</summary>
    private static string WithSmallPool(string connectionString)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        if (builder.MaxPoolSize > 10)
        {
            builder.MaxPoolSize = 10;
        }

        return builder.ConnectionString;
    }

    public string Schema { get; } = "ledger_test_" + Guid.NewGuid().ToString("N")[..12];

    public override string Provider => "postgresql";

    public override (string ConnectionString, string Schema) Location => (ConnectionString, Schema);

    public override Task<LedgerDatabase> OpenAnotherAsync(TimeProvider? timeProvider = null) =>
        LedgerDatabase.OpenPostgresAsync(ConnectionString, Schema, timeProvider);

    public override async Task DisposeAsync()
    {
        // Only our own schema is dropped; the server and database are shared with other test runs.
        await using (var backend = new PostgresBackend(ConnectionString, Schema))
        {
            await backend.DropSchemaAsync(CancellationToken.None);
        }

        await base.DisposeAsync();
    }
}

public sealed class SqliteFixture : LedgerDatabaseFixture
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), "datamarket-ledger-" + Guid.NewGuid().ToString("N") + ".db");

    public override string Provider => "sqlite";

    public override (string ConnectionString, string Schema) Location => ($"Data Source={_path}", "ledger");

    public override Task<LedgerDatabase> OpenAnotherAsync(TimeProvider? timeProvider = null) =>
        LedgerDatabase.OpenSqliteAsync($"Data Source={_path}", timeProvider: timeProvider);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        foreach (var suffix in new[] { "", "-wal", "-shm" })
        {
            File.Delete(_path + suffix);
        }
    }
}
