-- Users and the data they make through the app. PostgreSQL owns these rows
-- (users are shared with the team, see docs/domain.md) and the outbound sync
-- mirrors them to Airtable.

CREATE TABLE users_pg (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email          text NOT NULL,
    name           text NOT NULL DEFAULT '',
    company_id     uuid REFERENCES companies_pg (id) ON DELETE SET NULL,
    role           text NOT NULL DEFAULT 'user',
    -- argon2id PHC string; NULL for a user provisioned in Airtable who has
    -- not set a password yet. Never synced to Airtable.
    password_hash  text,
    bonus_points   integer NOT NULL DEFAULT 0,
    badges         text[] NOT NULL DEFAULT '{}',
    level          integer NOT NULL DEFAULT 1,
    -- IANA zone that decides which calendar day a usage falls on (streaks).
    time_zone      text NOT NULL DEFAULT 'Europe/Amsterdam',
    last_login_at  timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pg_email_format CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    CONSTRAINT users_pg_role_valid CHECK (role IN ('user', 'admin')),
    CONSTRAINT users_pg_bonus_points_not_negative CHECK (bonus_points >= 0),
    CONSTRAINT users_pg_level_positive CHECK (level >= 1)
);
-- People type their email in any case; one person must not get two accounts.
CREATE UNIQUE INDEX users_pg_email_key ON users_pg (lower(email));
CREATE INDEX users_pg_company_idx ON users_pg (company_id);

CREATE TABLE programs_pg (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users_pg (id) ON DELETE CASCADE,
    name        text NOT NULL,
    start_date  date NOT NULL,
    end_date    date NOT NULL,
    notes       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT programs_pg_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT programs_pg_date_range CHECK (end_date >= start_date),
    -- A user follows one program at a time. The exclusion constraint holds
    -- under concurrent writes, where a check-then-insert would not.
    CONSTRAINT programs_pg_no_overlap EXCLUDE USING gist (
        user_id WITH =,
        daterange(start_date, end_date, '[]') WITH &&
    ),
    -- Target of the composite keys that tie usages to their owner's programs.
    CONSTRAINT programs_pg_id_user_key UNIQUE (id, user_id)
);

CREATE TABLE program_goals_pg (
    program_id  uuid NOT NULL REFERENCES programs_pg (id) ON DELETE CASCADE,
    goal_id     uuid NOT NULL REFERENCES reference_goals_pg (id) ON DELETE CASCADE,
    position    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (program_id, goal_id)
);

CREATE TABLE program_methods_pg (
    program_id  uuid NOT NULL REFERENCES programs_pg (id) ON DELETE CASCADE,
    method_id   uuid NOT NULL REFERENCES reference_methods_pg (id) ON DELETE CASCADE,
    position    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (program_id, method_id)
);

CREATE TABLE program_days_pg (
    program_id  uuid NOT NULL REFERENCES programs_pg (id) ON DELETE CASCADE,
    day_id      uuid NOT NULL REFERENCES reference_days_pg (id) ON DELETE CASCADE,
    PRIMARY KEY (program_id, day_id)
);

CREATE TABLE program_schedule_pg (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    program_id  uuid NOT NULL REFERENCES programs_pg (id) ON DELETE CASCADE,
    date        date NOT NULL,
    notes       text NOT NULL DEFAULT '',
    -- Derived from method usage; stored so that the team sees it in Airtable.
    completed   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT program_schedule_pg_program_date_key UNIQUE (program_id, date),
    CONSTRAINT program_schedule_pg_id_program_key UNIQUE (id, program_id)
);

CREATE TABLE program_schedule_methods_pg (
    schedule_day_id  uuid NOT NULL REFERENCES program_schedule_pg (id) ON DELETE CASCADE,
    method_id        uuid NOT NULL REFERENCES reference_methods_pg (id) ON DELETE CASCADE,
    position         integer NOT NULL DEFAULT 0,
    PRIMARY KEY (schedule_day_id, method_id)
);

-- Usages keep their history: a deleted program clears the link (only the
-- program column, so the owner stays), and a method with usages cannot be
-- deleted (the inbound sync deactivates it instead).
CREATE TABLE method_usage_pg (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid NOT NULL REFERENCES users_pg (id) ON DELETE CASCADE,
    method_id        uuid NOT NULL REFERENCES reference_methods_pg (id) ON DELETE RESTRICT,
    program_id       uuid,
    schedule_day_id  uuid REFERENCES program_schedule_pg (id) ON DELETE SET NULL,
    used_on          date NOT NULL,
    remark           text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- The program must be the user's own.
    CONSTRAINT method_usage_pg_program_owner_fkey FOREIGN KEY (program_id, user_id)
        REFERENCES programs_pg (id, user_id) ON DELETE SET NULL (program_id)
);
CREATE INDEX method_usage_pg_user_used_on_idx ON method_usage_pg (user_id, used_on);
CREATE INDEX method_usage_pg_program_idx ON method_usage_pg (program_id);
CREATE INDEX method_usage_pg_schedule_day_idx ON method_usage_pg (schedule_day_id);
CREATE INDEX method_usage_pg_method_idx ON method_usage_pg (method_id);

CREATE TABLE habit_usage_pg (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users_pg (id) ON DELETE CASCADE,
    method_id   uuid NOT NULL REFERENCES reference_methods_pg (id) ON DELETE RESTRICT,
    used_on     date NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT habit_usage_pg_user_method_day_key UNIQUE (user_id, method_id, used_on)
);
CREATE INDEX habit_usage_pg_user_used_on_idx ON habit_usage_pg (user_id, used_on);
CREATE INDEX habit_usage_pg_method_idx ON habit_usage_pg (method_id);

-- A habit usage must point at a method that is a habit. A CHECK cannot look
-- at another table, so a trigger raises the same error a CHECK would, with a
-- constraint name the API can map.
CREATE FUNCTION habit_usage_pg_require_habit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM reference_methods_pg WHERE id = NEW.method_id AND NOT is_habit) THEN
        RAISE EXCEPTION 'method % is not a habit', NEW.method_id
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'habit_usage_pg_method_is_habit',
                  TABLE = 'habit_usage_pg';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER habit_usage_pg_method_is_habit BEFORE INSERT OR UPDATE OF method_id ON habit_usage_pg
    FOR EACH ROW EXECUTE FUNCTION habit_usage_pg_require_habit();

CREATE TABLE personal_goals_pg (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users_pg (id) ON DELETE CASCADE,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT personal_goals_pg_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT personal_goals_pg_id_user_key UNIQUE (id, user_id)
);
CREATE INDEX personal_goals_pg_user_idx ON personal_goals_pg (user_id);

-- At most 10 active personal goals per user. Concurrent writers for one user
-- are serialised by a transaction-scoped advisory lock, so two inserts racing
-- for the tenth place cannot both win.
CREATE FUNCTION personal_goals_pg_enforce_max_active() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.active THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('personal_goals_pg:' || NEW.user_id::text, 0));
        IF (SELECT count(*) FROM personal_goals_pg
             WHERE user_id = NEW.user_id AND active AND id <> NEW.id) >= 10 THEN
            RAISE EXCEPTION 'user % already has 10 active personal goals', NEW.user_id
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'personal_goals_pg_max_active',
                      TABLE = 'personal_goals_pg';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER personal_goals_pg_max_active BEFORE INSERT OR UPDATE OF active, user_id ON personal_goals_pg
    FOR EACH ROW EXECUTE FUNCTION personal_goals_pg_enforce_max_active();

CREATE TABLE personal_goal_usage_pg (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id           uuid NOT NULL REFERENCES users_pg (id) ON DELETE CASCADE,
    personal_goal_id  uuid NOT NULL,
    used_on           date NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT personal_goal_usage_pg_user_goal_day_key UNIQUE (user_id, personal_goal_id, used_on),
    -- The goal must be the user's own.
    CONSTRAINT personal_goal_usage_pg_goal_owner_fkey FOREIGN KEY (personal_goal_id, user_id)
        REFERENCES personal_goals_pg (id, user_id) ON DELETE CASCADE
);
CREATE INDEX personal_goal_usage_pg_user_used_on_idx ON personal_goal_usage_pg (user_id, used_on);
CREATE INDEX personal_goal_usage_pg_goal_idx ON personal_goal_usage_pg (personal_goal_id);

CREATE TABLE overtuiging_usage_pg (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users_pg (id) ON DELETE CASCADE,
    overtuiging_id  uuid NOT NULL REFERENCES reference_overtuigingen_pg (id) ON DELETE RESTRICT,
    program_id      uuid,
    used_on         date NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT overtuiging_usage_pg_user_overtuiging_key UNIQUE (user_id, overtuiging_id),
    CONSTRAINT overtuiging_usage_pg_program_owner_fkey FOREIGN KEY (program_id, user_id)
        REFERENCES programs_pg (id, user_id) ON DELETE SET NULL (program_id)
);
CREATE INDEX overtuiging_usage_pg_user_used_on_idx ON overtuiging_usage_pg (user_id, used_on);
CREATE INDEX overtuiging_usage_pg_program_idx ON overtuiging_usage_pg (program_id);
CREATE INDEX overtuiging_usage_pg_overtuiging_idx ON overtuiging_usage_pg (overtuiging_id);

CREATE TRIGGER users_pg_updated_at BEFORE UPDATE ON users_pg
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER programs_pg_updated_at BEFORE UPDATE ON programs_pg
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER program_schedule_pg_updated_at BEFORE UPDATE ON program_schedule_pg
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER method_usage_pg_updated_at BEFORE UPDATE ON method_usage_pg
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER habit_usage_pg_updated_at BEFORE UPDATE ON habit_usage_pg
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER personal_goals_pg_updated_at BEFORE UPDATE ON personal_goals_pg
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER personal_goal_usage_pg_updated_at BEFORE UPDATE ON personal_goal_usage_pg
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER overtuiging_usage_pg_updated_at BEFORE UPDATE ON overtuiging_usage_pg
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
