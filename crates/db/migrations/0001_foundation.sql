-- Shared building blocks of the schema.
--
-- btree_gist lets an exclusion constraint mix equality on a user id with
-- overlap of date ranges, which is how programs of one user are kept from
-- overlapping even under concurrent writes.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Keeps updated_at true for every write, including writes from psql or from
-- the inbound sync, so that no code path can forget it.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
