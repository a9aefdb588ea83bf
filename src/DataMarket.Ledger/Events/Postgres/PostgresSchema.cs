namespace DataMarket.Ledger.Events.Postgres;

/// <summary>Idempotent DDL for the store's own schema: safe to run at every start.</summary>
internal static class PostgresSchema
{
    public static string Ddl(string s, bool ownEventStore) => $"""
        -- A migration that must wait for a lock gives up instead of queueing every writer behind it.
        SET LOCAL lock_timeout = '10s';
        CREATE SCHEMA IF NOT EXISTS {s};
        {(ownEventStore ? OwnEventStoreDdl(s) : "")}
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
            -- No foreign key from events to streams: both append paths write the stream row first, in the
            -- same transaction, and the key check cost a locking lookup per event (a third of the insert).
            -- `datamarket ledger verify` checks that every event has its stream instead.
            IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass('{s}.events') AND conname = 'events_stream_id_fkey') THEN
                ALTER TABLE {s}.events DROP CONSTRAINT events_stream_id_fkey;
            END IF;
            -- What the first delivery decided, so a redelivery of a rejected command stays rejected.
            IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '{s}.inbox'::regclass AND attname = 'rejection' AND NOT attisdropped) THEN
                ALTER TABLE {s}.inbox ADD COLUMN rejection text;
            END IF;
            IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '{s}.inbox'::regclass AND attname = 'detail' AND NOT attisdropped) THEN
                ALTER TABLE {s}.inbox ADD COLUMN detail text;
            END IF;
        END $migrate$;
        """;

    private static string OwnEventStoreDdl(string s) => $"""
        CREATE SEQUENCE IF NOT EXISTS {s}.event_sequence;

        CREATE TABLE IF NOT EXISTS {s}.streams (
            id          text PRIMARY KEY,
            type        text NOT NULL,
            version     bigint NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE IF NOT EXISTS {s}.events (
            seq             bigint PRIMARY KEY,
            id              uuid NOT NULL UNIQUE,
            stream_id       text NOT NULL,
            version         bigint NOT NULL,
            type            text NOT NULL,
            data            jsonb NOT NULL,
            correlation_id  text,
            causation_id    text,
            actor           text,
            created_at      timestamptz NOT NULL,
            CONSTRAINT events_stream_version UNIQUE (stream_id, version)
        );

        -- Checks the expected version before nextval, so a losing writer takes no sequence number.
        CREATE OR REPLACE FUNCTION {s}.append_events(
            p_stream_id text, p_stream_type text, p_expected bigint,
            p_ids uuid[], p_types text[], p_data text[],
            p_correlation text[], p_causation text[], p_actor text[], p_created timestamptz[])
        RETURNS TABLE (stream_version bigint, first_seq bigint, last_seq bigint)
        LANGUAGE plpgsql AS $fn$
        DECLARE
            v_current bigint;
            v_count int := coalesce(array_length(p_ids, 1), 0);
            v_first bigint := 0;
            v_seq bigint := 0;
            v_existing boolean := true;
        BEGIN
            -- Take a transaction id before any sequence number: the high-water mark depends on it.
            PERFORM pg_current_xact_id();
            SELECT st.version INTO v_current FROM {s}.streams st WHERE st.id = p_stream_id FOR UPDATE;
            IF NOT FOUND THEN
                IF p_expected > 0 THEN
                    RAISE EXCEPTION USING ERRCODE = 'DM001', MESSAGE = 'absent';
                END IF;
                -- A new stream is written once, at its final version (no second tuple from an UPDATE).
                INSERT INTO {s}.streams (id, type, version) VALUES (p_stream_id, p_stream_type, v_count);
                v_current := 0;
                v_existing := false;
            ELSIF p_expected = -1 OR (p_expected >= 0 AND p_expected <> v_current) THEN
                RAISE EXCEPTION USING ERRCODE = 'DM001', MESSAGE = v_current::text;
            END IF;

            FOR i IN 1..v_count LOOP
                v_seq := nextval('{s}.event_sequence');
                IF i = 1 THEN v_first := v_seq; END IF;
                INSERT INTO {s}.events (seq, id, stream_id, version, type, data, correlation_id, causation_id, actor, created_at)
                VALUES (v_seq, p_ids[i], p_stream_id, v_current + i, p_types[i], p_data[i]::jsonb,
                        p_correlation[i], p_causation[i], p_actor[i], p_created[i]);
            END LOOP;

            IF v_existing THEN
                UPDATE {s}.streams SET version = v_current + v_count, updated_at = now() WHERE id = p_stream_id;
            END IF;
            RETURN QUERY SELECT v_current + v_count, v_first, v_seq;
        END
        $fn$;

        """;
}
