-- Airtable records the inbound sync could not apply yet: a link to a record
-- PostgreSQL does not have yet, or a row the schema refuses (a program whose
-- dates the team has not typed in yet, a second user with the same email).
-- They are tried again by reading the record afresh, never dropped; one
-- that keeps failing stays here with its reason for the team to fix.
CREATE TABLE sync_inbound_deferred (
    airtable_id      text PRIMARY KEY,
    entity           text NOT NULL,
    reason           text NOT NULL,
    attempts         integer NOT NULL DEFAULT 1,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sync_inbound_deferred_airtable_id_format CHECK (airtable_id ~ '^rec[A-Za-z0-9]{14}$'),
    CONSTRAINT sync_inbound_deferred_entity_not_blank CHECK (btrim(entity) <> ''),
    CONSTRAINT sync_inbound_deferred_attempts_positive CHECK (attempts >= 1)
);
-- The retry claims the due entries in order.
CREATE INDEX sync_inbound_deferred_due_idx ON sync_inbound_deferred (next_attempt_at);

CREATE TRIGGER sync_inbound_deferred_updated_at BEFORE UPDATE ON sync_inbound_deferred
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
