-- A user's time zone is set through PATCH /api/auth/me and shown in the
-- Users table ("Time zone", sent to Airtable only): a change of it is now
-- captured like every other mapped column.
DROP TRIGGER users_pg_sync ON users_pg;
CREATE TRIGGER users_pg_sync AFTER INSERT OR UPDATE OR DELETE ON users_pg
    FOR EACH ROW EXECUTE FUNCTION sync_capture_row_change('user', 'password_hash', 'last_login_at');
