-- Reference data: owned by the team in Airtable, read-only through the API.
-- Rows are created by the inbound sync, so names may be empty strings while
-- the team is still filling a record in; they may not be NULL.

CREATE TABLE companies_pg (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL DEFAULT '',
    code        text NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- A company code is typed by people at sign-up: it must say something.
    CONSTRAINT companies_pg_code_not_blank CHECK (btrim(code) <> '')
);
-- Codes are looked up case-insensitively (`GET /api/companies/lookup?code=`),
-- so two codes that differ only in case would be ambiguous.
CREATE UNIQUE INDEX companies_pg_code_key ON companies_pg (lower(code));

CREATE TABLE reference_goals_pg (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL DEFAULT '',
    description  text NOT NULL DEFAULT '',
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reference_days_pg (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL DEFAULT '',
    weekday     smallint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- ISO weekday numbers: Monday = 1 ... Sunday = 7.
    CONSTRAINT reference_days_pg_weekday_range CHECK (weekday BETWEEN 1 AND 7),
    -- Schedules are generated from weekdays; two rows for one weekday would
    -- make a program's days ambiguous.
    CONSTRAINT reference_days_pg_weekday_key UNIQUE (weekday)
);

CREATE TABLE reference_methods_pg (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name              text NOT NULL DEFAULT '',
    description       text NOT NULL DEFAULT '',
    duration_minutes  integer,
    is_habit          boolean NOT NULL DEFAULT false,
    active            boolean NOT NULL DEFAULT true,
    sort_order        integer NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reference_methods_pg_duration_not_negative CHECK (duration_minutes >= 0)
);

-- Many-to-many links are join tables rather than arrays so that every link is
-- a foreign key: a link to a deleted goal disappears with it, as it does in
-- Airtable, instead of dangling.
CREATE TABLE reference_method_goals_pg (
    method_id  uuid NOT NULL REFERENCES reference_methods_pg (id) ON DELETE CASCADE,
    goal_id    uuid NOT NULL REFERENCES reference_goals_pg (id) ON DELETE CASCADE,
    position   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (method_id, goal_id)
);
CREATE INDEX reference_method_goals_pg_goal_idx ON reference_method_goals_pg (goal_id);

CREATE TABLE reference_overtuigingen_pg (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL DEFAULT '',
    description  text NOT NULL DEFAULT '',
    level        smallint NOT NULL DEFAULT 1,
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reference_overtuigingen_pg_level_range CHECK (level BETWEEN 1 AND 3)
);

CREATE TABLE reference_overtuiging_goals_pg (
    overtuiging_id  uuid NOT NULL REFERENCES reference_overtuigingen_pg (id) ON DELETE CASCADE,
    goal_id         uuid NOT NULL REFERENCES reference_goals_pg (id) ON DELETE CASCADE,
    position        integer NOT NULL DEFAULT 0,
    PRIMARY KEY (overtuiging_id, goal_id)
);
CREATE INDEX reference_overtuiging_goals_pg_goal_idx ON reference_overtuiging_goals_pg (goal_id);

CREATE TRIGGER companies_pg_updated_at BEFORE UPDATE ON companies_pg
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER reference_goals_pg_updated_at BEFORE UPDATE ON reference_goals_pg
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER reference_days_pg_updated_at BEFORE UPDATE ON reference_days_pg
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER reference_methods_pg_updated_at BEFORE UPDATE ON reference_methods_pg
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER reference_overtuigingen_pg_updated_at BEFORE UPDATE ON reference_overtuigingen_pg
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
