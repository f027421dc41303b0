-- Capture: every change of a table that syncs to Airtable enqueues an outbox
-- event in the writing transaction, from a trigger, so a write from psql or a
-- migration is synced too and no code path can forget it (docs/architecture.md,
-- "Outbound").
--
-- Writes of the inbound sync run with `SET LOCAL airsync.origin = 'inbound'`
-- and enqueue nothing, so Airtable's own changes are not echoed back.

-- At most one pending event per record: changes made while an event waits
-- merge into it. The worker sends the row's state at send time, so the merged
-- event carries every change.
CREATE UNIQUE INDEX sync_outbox_pending_record_key ON sync_outbox (entity, row_id) WHERE state = 'pending';

-- A record just pushed waits until hold_until before it is pushed again, so
-- that a burst of edits to one row costs two requests, not one per edit. The
-- worker sets it when it records a push.
ALTER TABLE airtable_id_map ADD COLUMN last_pushed_at timestamptz;
ALTER TABLE airtable_id_map ADD COLUMN hold_until timestamptz;

CREATE FUNCTION sync_enqueue_change(p_entity text, p_row_id uuid, p_operation text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sync_outbox (entity, row_id, operation, idempotency_key, next_attempt_at)
    VALUES (
        p_entity,
        p_row_id,
        p_operation,
        'capture:' || p_entity || ':' || p_row_id || ':' || txid_current(),
        greatest(now(), (SELECT m.hold_until FROM airtable_id_map m
                          WHERE m.entity = p_entity AND m.row_id = p_row_id))
    )
    ON CONFLICT (entity, row_id) WHERE state = 'pending'
    DO UPDATE SET operation = EXCLUDED.operation;
    -- Delivered at commit, once per transaction and entity.
    PERFORM pg_notify('airsync_outbox', p_entity);
END;
$$;

-- Row trigger of a synced table. Arguments: the entity, then columns whose
-- changes alone are not synced (e.g. a user's password hash).
CREATE FUNCTION sync_capture_row_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_entity text := TG_ARGV[0];
    v_ignored text[] := coalesce(TG_ARGV[1:TG_NARGS - 1], '{}') || ARRAY['updated_at'];
BEGIN
    IF current_setting('airsync.origin', true) = 'inbound' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        PERFORM sync_enqueue_change(v_entity, OLD.id, 'delete');
    ELSIF TG_OP = 'INSERT' OR (to_jsonb(NEW) - v_ignored) IS DISTINCT FROM (to_jsonb(OLD) - v_ignored) THEN
        PERFORM sync_enqueue_change(v_entity, NEW.id, 'upsert');
    END IF;
    RETURN NULL;
END;
$$;

-- Row trigger of a join table behind a link field: a changed link is a change
-- of the row that holds the link field. Arguments: that row's entity, and the
-- join table's column pointing at it.
CREATE FUNCTION sync_capture_link_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_entity text := TG_ARGV[0];
    v_column text := TG_ARGV[1];
BEGIN
    IF current_setting('airsync.origin', true) = 'inbound' THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM sync_enqueue_change(v_entity, (to_jsonb(NEW) ->> v_column)::uuid, 'upsert');
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        -- When the owning row itself is being deleted (a cascade), this merges
        -- into its event; the worker decides by whether the row still exists.
        PERFORM sync_enqueue_change(v_entity, (to_jsonb(OLD) ->> v_column)::uuid, 'upsert');
    END IF;
    RETURN NULL;
END;
$$;

-- The tables PostgreSQL owns (or shares: users). Reference tables are owned
-- by Airtable and flow inbound only.
CREATE TRIGGER users_pg_sync AFTER INSERT OR UPDATE OR DELETE ON users_pg
    FOR EACH ROW EXECUTE FUNCTION sync_capture_row_change('user', 'password_hash', 'last_login_at', 'time_zone');
CREATE TRIGGER programs_pg_sync AFTER INSERT OR UPDATE OR DELETE ON programs_pg
    FOR EACH ROW EXECUTE FUNCTION sync_capture_row_change('program');
CREATE TRIGGER program_schedule_pg_sync AFTER INSERT OR UPDATE OR DELETE ON program_schedule_pg
    FOR EACH ROW EXECUTE FUNCTION sync_capture_row_change('program_schedule');
CREATE TRIGGER method_usage_pg_sync AFTER INSERT OR UPDATE OR DELETE ON method_usage_pg
    FOR EACH ROW EXECUTE FUNCTION sync_capture_row_change('method_usage');
CREATE TRIGGER habit_usage_pg_sync AFTER INSERT OR UPDATE OR DELETE ON habit_usage_pg
    FOR EACH ROW EXECUTE FUNCTION sync_capture_row_change('habit_usage');
CREATE TRIGGER personal_goals_pg_sync AFTER INSERT OR UPDATE OR DELETE ON personal_goals_pg
    FOR EACH ROW EXECUTE FUNCTION sync_capture_row_change('personal_goal');
CREATE TRIGGER personal_goal_usage_pg_sync AFTER INSERT OR UPDATE OR DELETE ON personal_goal_usage_pg
    FOR EACH ROW EXECUTE FUNCTION sync_capture_row_change('personal_goal_usage');
CREATE TRIGGER overtuiging_usage_pg_sync AFTER INSERT OR UPDATE OR DELETE ON overtuiging_usage_pg
    FOR EACH ROW EXECUTE FUNCTION sync_capture_row_change('overtuiging_usage');

CREATE TRIGGER program_goals_pg_sync AFTER INSERT OR UPDATE OR DELETE ON program_goals_pg
    FOR EACH ROW EXECUTE FUNCTION sync_capture_link_change('program', 'program_id');
CREATE TRIGGER program_methods_pg_sync AFTER INSERT OR UPDATE OR DELETE ON program_methods_pg
    FOR EACH ROW EXECUTE FUNCTION sync_capture_link_change('program', 'program_id');
CREATE TRIGGER program_days_pg_sync AFTER INSERT OR UPDATE OR DELETE ON program_days_pg
    FOR EACH ROW EXECUTE FUNCTION sync_capture_link_change('program', 'program_id');
CREATE TRIGGER program_schedule_methods_pg_sync AFTER INSERT OR UPDATE OR DELETE ON program_schedule_methods_pg
    FOR EACH ROW EXECUTE FUNCTION sync_capture_link_change('program_schedule', 'schedule_day_id');
