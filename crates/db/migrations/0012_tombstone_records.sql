-- A remembered delete also names the record the row had, when it had one:
-- a payload read late (a reader behind, a replay from an older cursor) can
-- show that record's creation or changes after both sides deleted it, and
-- no pg_id cell may be there to name the row. With the record id the
-- inbound sync knows the record as one of a deleted row instead of a new
-- one (docs/sync.md, "How long a delete is remembered").
--
-- sent entries (sync_row_version.sent) may also carry "landed": when
-- Airtable's answer to the request came. A push answered before a team
-- change cannot have overwritten it.
ALTER TABLE sync_tombstone ADD COLUMN airtable_id text;
CREATE INDEX sync_tombstone_record ON sync_tombstone (entity, airtable_id)
    WHERE airtable_id IS NOT NULL;
