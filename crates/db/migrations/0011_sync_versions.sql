-- What the two-way merge needs to apply "per field, the later change wins;
-- a delete wins" when the app and the team change the same record at once
-- (docs/sync.md, "The sync model").
--
-- sync_row_version, one row per synced row (entity, row id):
--   changed_at  for each column (or join table of a links field), the time
--               of the value the row holds: when the app wrote it (stamped
--               by the capture trigger, the writing transaction's time), or
--               the time Airtable changed it when the inbound sync took it
--               from Airtable (stamped by the inbound sync). A row's
--               updated_at cannot serve: it is per row, and every inbound
--               write moves it to the inbound transaction's own time.
--   sent        for each Airtable field, the values pushed most recently
--               (newest last, a few per field), each with the time of the
--               value it carried ("at") and when its request left ("sent").
--               The worker writes it before a request leaves, so Airtable
--               showing one of these values is known as our own push by its
--               content, however long the request took or whether its
--               answer ever came.
-- It outlives the row until the row's delete has reached Airtable: whether
-- anything was ever sent decides whether a record may exist to delete.
CREATE TABLE sync_row_version (
    entity      text NOT NULL,
    row_id      uuid NOT NULL,
    changed_at  jsonb NOT NULL DEFAULT '{}',
    sent        jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (entity, row_id)
);

-- Deletes remembered: a row the app deleted ('postgres') must not come back
-- from a record Airtable still lists (an orphan of a lost create answer, a
-- page read before the delete reached Airtable); a row whose record the
-- team deleted ('airtable', kept when the policy deactivates the row) has
-- no record to link to, so links to it are left out of pushes as Airtable
-- itself drops them. Kept for 90 days (pruned by the inbound poll).
CREATE TABLE sync_tombstone (
    entity      text NOT NULL,
    row_id      uuid NOT NULL,
    side        text NOT NULL,
    deleted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, row_id),
    CONSTRAINT sync_tombstone_side CHECK (side IN ('postgres', 'airtable'))
);
CREATE INDEX sync_tombstone_deleted_at ON sync_tombstone (deleted_at);

-- When the id map's agreed cells (synced_fields) were last written, by a
-- push recorded or an inbound apply: a listing read before then may be
-- older than what both sides agreed on, and is not applied to the record.
ALTER TABLE airtable_id_map ADD COLUMN agreed_at timestamptz;

-- Stamps the change times of an app write's changed columns.
CREATE FUNCTION sync_stamp_columns(p_entity text, p_row_id uuid, p_columns text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_columns IS NULL OR cardinality(p_columns) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO sync_row_version AS v (entity, row_id, changed_at)
    SELECT p_entity, p_row_id, jsonb_object_agg(c, to_jsonb(now())) FROM unnest(p_columns) c
    ON CONFLICT (entity, row_id)
    DO UPDATE SET changed_at = v.changed_at || EXCLUDED.changed_at;
END;
$$;

CREATE OR REPLACE FUNCTION sync_capture_row_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_entity text := TG_ARGV[0];
    v_ignored text[] := coalesce(TG_ARGV[1:TG_NARGS - 1], '{}') || ARRAY['updated_at'];
    v_new jsonb;
    v_old jsonb;
    v_changed text[];
BEGIN
    IF current_setting('airsync.origin', true) = 'inbound' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO sync_tombstone (entity, row_id, side) VALUES (v_entity, OLD.id, 'postgres')
        ON CONFLICT (entity, row_id) DO UPDATE SET side = 'postgres', deleted_at = now();
        PERFORM sync_enqueue_change(v_entity, OLD.id, 'delete');
        RETURN NULL;
    END IF;
    v_new := to_jsonb(NEW) - v_ignored;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(k) INTO v_changed FROM jsonb_object_keys(v_new) k;
    ELSE
        v_old := to_jsonb(OLD) - v_ignored;
        SELECT array_agg(k) INTO v_changed FROM jsonb_each(v_new) e(k, v)
         WHERE v_old -> k IS DISTINCT FROM v;
    END IF;
    IF v_changed IS NOT NULL THEN
        PERFORM sync_stamp_columns(v_entity, NEW.id, v_changed);
        PERFORM sync_enqueue_change(v_entity, NEW.id, 'upsert');
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION sync_capture_link_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_entity text := TG_ARGV[0];
    v_column text := TG_ARGV[1];
    v_row uuid;
BEGIN
    IF current_setting('airsync.origin', true) = 'inbound' THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        v_row := (to_jsonb(NEW) ->> v_column)::uuid;
        PERFORM sync_stamp_columns(v_entity, v_row, ARRAY[TG_TABLE_NAME]);
        PERFORM sync_enqueue_change(v_entity, v_row, 'upsert');
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        -- When the owning row itself is being deleted (a cascade), this merges
        -- into its event; the worker decides by whether the row still exists.
        v_row := (to_jsonb(OLD) ->> v_column)::uuid;
        PERFORM sync_stamp_columns(v_entity, v_row, ARRAY[TG_TABLE_NAME]);
        PERFORM sync_enqueue_change(v_entity, v_row, 'upsert');
    END IF;
    RETURN NULL;
END;
$$;

-- Records what a request sends, before it leaves: items are
-- {row_id, field, entry: {v, at, sent}}; each field keeps its newest p_keep
-- entries.
CREATE FUNCTION sync_record_sent(p_entity text, p_items jsonb, p_keep int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_list jsonb;
BEGIN
    FOR r IN SELECT * FROM jsonb_to_recordset(p_items) AS x(row_id uuid, field text, entry jsonb) LOOP
        SELECT coalesce(v.sent -> r.field, '[]'::jsonb) INTO v_list
          FROM sync_row_version v WHERE v.entity = p_entity AND v.row_id = r.row_id FOR UPDATE;
        v_list := coalesce(v_list, '[]'::jsonb) || jsonb_build_array(r.entry);
        SELECT coalesce(jsonb_agg(t.item ORDER BY t.n), '[]'::jsonb) INTO v_list
          FROM jsonb_array_elements(v_list) WITH ORDINALITY AS t(item, n)
         WHERE t.n > jsonb_array_length(v_list) - p_keep;
        INSERT INTO sync_row_version AS v (entity, row_id, sent)
        VALUES (p_entity, r.row_id, jsonb_build_object(r.field, v_list))
        ON CONFLICT (entity, row_id) DO UPDATE SET sent = v.sent || EXCLUDED.sent;
    END LOOP;
END;
$$;
