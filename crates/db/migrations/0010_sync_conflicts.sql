-- Fields the inbound sync found changed on both sides (the three-way merge's
-- conflicts), kept so that the ops page can show the recent ones: which
-- value each side had and which one was kept. Rows are written in the same
-- transaction as the inbound apply that decided them, so a conflict shown
-- here is one that was applied; the table is a bounded log, pruned by age
-- and count as new conflicts arrive (see crates/sync/src/conflicts.rs).
CREATE TABLE sync_conflicts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity          text NOT NULL,
    row_id          uuid NOT NULL,
    airtable_id     text NOT NULL,
    field           text NOT NULL,
    postgres_value  jsonb,
    airtable_value  jsonb,
    winner          text NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sync_conflicts_winner_known CHECK (winner IN ('airtable', 'postgres')),
    CONSTRAINT sync_conflicts_entity_not_blank CHECK (btrim(entity) <> ''),
    CONSTRAINT sync_conflicts_field_not_blank CHECK (btrim(field) <> '')
);
-- The page lists the newest first; pruning deletes the oldest.
CREATE INDEX sync_conflicts_at_idx ON sync_conflicts (at DESC, id DESC);
