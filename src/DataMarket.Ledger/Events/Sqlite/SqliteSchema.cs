namespace DataMarket.Ledger.Events.Sqlite;

/// <summary>The same tables as PostgreSQL, with SQLite types; SQLite has no schemas, so names carry a prefix.</summary>
internal static class SqliteSchema
{
    public static string Ddl(string p) => $"""
        CREATE TABLE IF NOT EXISTS {p}streams (
            id       TEXT PRIMARY KEY,
            type     TEXT NOT NULL,
            version  INTEGER NOT NULL
        );

        CREATE TABLE IF NOT EXISTS {p}events (
            seq             INTEGER PRIMARY KEY,
            id              TEXT NOT NULL UNIQUE,
            stream_id       TEXT NOT NULL REFERENCES {p}streams(id),
            version         INTEGER NOT NULL,
            type            TEXT NOT NULL,
            data            TEXT NOT NULL,
            correlation_id  TEXT,
            causation_id    TEXT,
            actor           TEXT,
            created_at      INTEGER NOT NULL,
            UNIQUE (stream_id, version)
        );

        CREATE TABLE IF NOT EXISTS {p}accounts (
            id               TEXT PRIMARY KEY,
            kind             TEXT NOT NULL,
            owner            TEXT NOT NULL,
            currency         TEXT NOT NULL,
            flags            INTEGER NOT NULL,
            debits_pending   INTEGER NOT NULL,
            debits_posted    INTEGER NOT NULL,
            credits_pending  INTEGER NOT NULL,
            credits_posted   INTEGER NOT NULL
        );

        CREATE TABLE IF NOT EXISTS {p}transfers (
            id                 TEXT PRIMARY KEY,
            debit_account_id   TEXT NOT NULL,
            credit_account_id  TEXT NOT NULL,
            amount             INTEGER NOT NULL,
            currency           TEXT NOT NULL,
            code               TEXT NOT NULL,
            pending            INTEGER NOT NULL,
            state              TEXT NOT NULL,
            batch_id           TEXT,
            reference          TEXT,
            created_at         INTEGER NOT NULL,
            resolved_at        INTEGER
        );

        CREATE TABLE IF NOT EXISTS {p}seller_statements (
            seller    TEXT NOT NULL,
            currency  TEXT NOT NULL,
            period    TEXT NOT NULL,
            earned    INTEGER NOT NULL,
            held      INTEGER NOT NULL,
            paid      INTEGER NOT NULL,
            PRIMARY KEY (seller, currency, period)
        );

        CREATE TABLE IF NOT EXISTS {p}outbox (
            seq            INTEGER PRIMARY KEY AUTOINCREMENT,
            id             TEXT NOT NULL UNIQUE,
            type           TEXT NOT NULL,
            payload        TEXT NOT NULL,
            headers        TEXT,
            created_at     INTEGER NOT NULL,
            dispatched_at  INTEGER,
            attempts       INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX IF NOT EXISTS {p}outbox_undispatched ON {p}outbox (seq) WHERE dispatched_at IS NULL;

        CREATE TABLE IF NOT EXISTS {p}inbox (
            consumer      TEXT NOT NULL,
            message_id    TEXT NOT NULL,
            processed_at  INTEGER NOT NULL,
            rejection     TEXT,
            detail        TEXT,
            PRIMARY KEY (consumer, message_id)
        );
        """;

    /// <summary>Columns added after the first release, with their types: added to older files at start.</summary>
    public static IReadOnlyList<(string Table, string Column, string Type)> AddedColumns(string p) =>
    [
        ($"{p}inbox", "rejection", "TEXT"),
        ($"{p}inbox", "detail", "TEXT"),
    ];
}
