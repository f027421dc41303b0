-- Bookkeeping of the sync between PostgreSQL and Airtable (docs/sync.md).

-- Which Airtable record mirrors which row. Record ids are unique across a
-- whole base (Airtable resolves a record id from any table), so the record
-- id alone is unique here too.
CREATE TABLE airtable_id_map (
    entity       text NOT NULL,
    row_id       uuid NOT NULL,
    airtable_id  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, row_id),
    CONSTRAINT airtable_id_map_airtable_id_key UNIQUE (airtable_id),
    CONSTRAINT airtable_id_map_entity_not_blank CHECK (btrim(entity) <> ''),
    CONSTRAINT airtable_id_map_airtable_id_format CHECK (airtable_id ~ '^rec[A-Za-z0-9]{14}$')
);

-- "Entity X changed", written in the same transaction as the change. The
-- worker sends the row's state at send time, so the event carries no copy of
-- the row. Finished events are deleted, so that the claim query stays fast
-- however long the history; failures that give up move to sync_dead_letter.
CREATE TABLE sync_outbox (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity            text NOT NULL,
    row_id            uuid NOT NULL,
    operation         text NOT NULL,
    state             text NOT NULL DEFAULT 'pending',
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    lease_owner       text,
    lease_expires_at  timestamptz,
    idempotency_key   text NOT NULL,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sync_outbox_idempotency_key_key UNIQUE (idempotency_key),
    CONSTRAINT sync_outbox_entity_not_blank CHECK (btrim(entity) <> ''),
    CONSTRAINT sync_outbox_operation_valid CHECK (operation IN ('upsert', 'delete')),
    CONSTRAINT sync_outbox_state_valid CHECK (state IN ('pending', 'leased')),
    CONSTRAINT sync_outbox_attempts_not_negative CHECK (attempts >= 0),
    -- A lease is an owner and an expiry together, and only a leased event
    -- has one; fencing compares the owner, rescue compares the expiry.
    CONSTRAINT sync_outbox_lease_matches_state CHECK (
        (state = 'leased') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)
    )
);
-- The claim query takes due pending events in order, and leased events whose
-- lease has expired (their worker died); one partial index serves each arm.
CREATE INDEX sync_outbox_due_idx ON sync_outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX sync_outbox_lease_expiry_idx ON sync_outbox (lease_expires_at) WHERE state = 'leased';
-- Coalescing looks up every event of one record.
CREATE INDEX sync_outbox_record_idx ON sync_outbox (entity, row_id);

CREATE TABLE sync_dead_letter (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id               bigint NOT NULL,
    entity                  text NOT NULL,
    row_id                  uuid NOT NULL,
    operation               text NOT NULL,
    idempotency_key         text NOT NULL,
    attempts                integer NOT NULL,
    -- Why it gave up: Airtable refused the record, or the retries ran out.
    reason                  text NOT NULL,
    last_error              text NOT NULL,
    http_status             integer,
    airtable_error_type     text,
    airtable_error_message  text,
    first_enqueued_at       timestamptz NOT NULL,
    failed_at               timestamptz NOT NULL DEFAULT now(),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sync_dead_letter_operation_valid CHECK (operation IN ('upsert', 'delete')),
    CONSTRAINT sync_dead_letter_reason_valid CHECK (reason IN ('rejected', 'attempts_exhausted', 'missing_link', 'mapping')),
    CONSTRAINT sync_dead_letter_attempts_not_negative CHECK (attempts >= 0),
    CONSTRAINT sync_dead_letter_http_status_range CHECK (http_status BETWEEN 100 AND 599)
);
CREATE INDEX sync_dead_letter_entity_idx ON sync_dead_letter (entity, failed_at);
CREATE INDEX sync_dead_letter_failed_at_idx ON sync_dead_letter (failed_at);

-- Positions of the inbound paths: the webhook payload cursor, each table's
-- incremental poll watermark, the last full reconcile. One row per position,
-- updated in the same transaction as the changes it covers.
CREATE TABLE sync_checkpoint (
    name        text PRIMARY KEY,
    value       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sync_checkpoint_name_not_blank CHECK (btrim(name) <> '')
);

-- Notifications received from Airtable. The event key makes a redelivered
-- ping a no-op.
CREATE TABLE sync_inbox_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_key     text NOT NULL,
    source        text NOT NULL,
    base_id       text,
    webhook_id    text,
    body          jsonb NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    processed_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sync_inbox_events_event_key_key UNIQUE (event_key),
    CONSTRAINT sync_inbox_events_source_valid CHECK (source IN ('webhook', 'poll', 'reconcile'))
);
CREATE INDEX sync_inbox_events_unprocessed_idx ON sync_inbox_events (received_at) WHERE processed_at IS NULL;

CREATE TRIGGER airtable_id_map_updated_at BEFORE UPDATE ON airtable_id_map
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER sync_outbox_updated_at BEFORE UPDATE ON sync_outbox
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER sync_dead_letter_updated_at BEFORE UPDATE ON sync_dead_letter
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER sync_checkpoint_updated_at BEFORE UPDATE ON sync_checkpoint
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER sync_inbox_events_updated_at BEFORE UPDATE ON sync_inbox_events
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
