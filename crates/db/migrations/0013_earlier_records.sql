-- A create whose answer was lost (a worker killed, a timeout) is tried
-- again as an upsert on pg_id. When the team deleted the record of the first
-- try in between, the retry makes a second record, and the first one's
-- delete, read later, names a record the id map never held. These two
-- tables keep what the inbound sync needs to know that delete as the team
-- deleting the row (docs/sync.md, "A create tried again").
--
-- When Airtable created the record the id map names, when a push of ours
-- created or found it (Airtable's own clock, comparable with its payload
-- times).
ALTER TABLE airtable_id_map ADD COLUMN record_created_at timestamptz;

-- Records that carried a row's pg_id before the row's current record was
-- created: the first try of a create whose answer was lost.
CREATE TABLE sync_earlier_record (
    entity       text NOT NULL,
    airtable_id  text NOT NULL,
    row_id       uuid NOT NULL,
    noted_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, airtable_id)
);
CREATE INDEX sync_earlier_record_noted_at ON sync_earlier_record (noted_at);
