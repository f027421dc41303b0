-- The cell values last agreed between PostgreSQL and Airtable for each
-- record: what the worker last pushed, or what the inbound sync last applied.
-- It is the common base of a three-way merge: a field that differs from it
-- on one side only was changed on that side; a field that differs on both
-- sides is a conflict, decided by the rules of docs/architecture.md,
-- "Conflicts". It also makes echoes visible: Airtable reporting the values
-- we pushed changes nothing.
ALTER TABLE airtable_id_map ADD COLUMN synced_fields jsonb;
