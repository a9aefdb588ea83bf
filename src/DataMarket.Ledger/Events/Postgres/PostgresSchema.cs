namespace DataMarket.Ledger.Events.Postgres;

/// <summary>
/// Idempotent DDL for the ledger's projection, outbox and inbox tables: safe to run at every start. The
/// events and streams are Marten's (mt_events, mt_streams) in the same schema.
/// </summary>
internal static class PostgresSchema
{
    public static string Ddl(string s) => $"""
        -- A migration that must wait for a lock gives up instead of queueing every writer behind it.
        SET LOCAL lock_timeout = '10s';
        CREATE SCHEMA IF NOT EXISTS {s};
        CREATE TABLE IF NOT EXISTS {s}.accounts (
            id               text PRIMARY KEY,
            kind             text NOT NULL,
            owner            text NOT NULL,
            currency         text NOT NULL,
            flags            integer NOT NULL,
            debits_pending   bigint NOT NULL,
            debits_posted    bigint NOT NULL,
            credits_pending  bigint NOT NULL,
            credits_posted   bigint NOT NULL
        );

        CREATE TABLE IF NOT EXISTS {s}.transfers (
            id                 text PRIMARY KEY,
            debit_account_id   text NOT NULL,
            credit_account_id  text NOT NULL,
            amount             bigint NOT NULL,
            currency           text NOT NULL,
            code               text NOT NULL,
            pending            integer NOT NULL,
            state              text NOT NULL,
            batch_id           text,
            reference          text,
            created_at         bigint NOT NULL,
            resolved_at        bigint
        );

        CREATE TABLE IF NOT EXISTS {s}.seller_statements (
            seller    text NOT NULL,
            currency  text NOT NULL,
            period    text NOT NULL,
            earned    bigint NOT NULL,
            held      bigint NOT NULL,
            paid      bigint NOT NULL,
            PRIMARY KEY (seller, currency, period)
        );

        CREATE TABLE IF NOT EXISTS {s}.outbox (
            id             text PRIMARY KEY,
            seq            bigserial UNIQUE,
            type           text NOT NULL,
            payload        jsonb NOT NULL,
            headers        jsonb,
            created_at     bigint NOT NULL,
            dispatched_at  bigint,
            attempts       integer NOT NULL DEFAULT 0
        );
        DO $index$ BEGIN
            IF to_regclass('{s}.outbox_undispatched') IS NULL THEN
                CREATE INDEX outbox_undispatched ON {s}.outbox (seq) WHERE dispatched_at IS NULL;
            END IF;
        END $index$;

        CREATE TABLE IF NOT EXISTS {s}.inbox (
            consumer      text NOT NULL,
            message_id    text NOT NULL,
            processed_at  bigint NOT NULL,
            PRIMARY KEY (consumer, message_id)
        );
        -- Migrations from earlier releases. Each ALTER runs only when needed: even a no-op ALTER takes an
        -- exclusive lock on a table every writer uses.
        DO $migrate$ BEGIN
            -- What the first delivery decided, so a redelivery of a rejected command stays rejected.
            IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '{s}.inbox'::regclass AND attname = 'rejection' AND NOT attisdropped) THEN
                ALTER TABLE {s}.inbox ADD COLUMN rejection text;
            END IF;
            IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '{s}.inbox'::regclass AND attname = 'detail' AND NOT attisdropped) THEN
                ALTER TABLE {s}.inbox ADD COLUMN detail text;
            END IF;
        END $migrate$;
        """;
}
