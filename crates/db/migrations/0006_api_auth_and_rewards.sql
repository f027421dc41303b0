-- What the coaching API keeps beside the domain tables: refresh-token
-- families, single-use password setup tokens, the streak bonuses already
-- awarded, and the answers of usage posts repeated with an idempotency key.
-- None of these tables syncs to Airtable (no capture trigger): credentials
-- never leave PostgreSQL, and the awards show in Airtable through the user's
-- bonus points and badges.

-- Refresh tokens rotate: each use marks the token used and issues its
-- successor in the same family. A used token presented again means it was
-- stolen (or the client replayed it), so the whole family is revoked. Only a
-- SHA-256 of the token is stored; the token itself is 32 random bytes, so a
-- plain hash is enough (no salt or stretching needed against guessing).
CREATE TABLE auth_refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id   uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users_pg (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT auth_refresh_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX auth_refresh_tokens_family_idx ON auth_refresh_tokens (family_id);
CREATE INDEX auth_refresh_tokens_user_idx ON auth_refresh_tokens (user_id);

-- Issued by `airsync users invite EMAIL` so that a user provisioned in
-- Airtable (who has no password) can set the first one. Single use; a new
-- invitation supersedes the unused ones.
CREATE TABLE auth_setup_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users_pg (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT auth_setup_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX auth_setup_tokens_user_idx ON auth_setup_tokens (user_id);

-- A streak bonus is awarded once per streak run (docs/domain.md, "Bonus").
-- A run is known by its first day; because a late usage can move that first
-- day earlier, the API also treats an award whose run_start lies inside the
-- current run as already given.
CREATE TABLE streak_bonus_awards (
    user_id     uuid NOT NULL REFERENCES users_pg (id) ON DELETE CASCADE,
    threshold   integer NOT NULL,
    run_start   date NOT NULL,
    points      integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, threshold, run_start),
    CONSTRAINT streak_bonus_awards_threshold_valid CHECK (threshold IN (3, 7, 14, 30, 60, 100)),
    CONSTRAINT streak_bonus_awards_points_positive CHECK (points > 0)
);

-- Usage posts carrying an `Idempotency-Key` header: the first request's
-- answer is kept, and a repeat gets the same answer without a second row.
-- The key row is inserted first in the request's transaction, so a
-- concurrent repeat waits for the first to commit and then reads its answer.
CREATE TABLE api_idempotency_keys (
    user_id       uuid NOT NULL REFERENCES users_pg (id) ON DELETE CASCADE,
    route         text NOT NULL,
    key           text NOT NULL,
    request_hash  text NOT NULL,
    status        smallint,
    response      jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, route, key),
    CONSTRAINT api_idempotency_keys_key_length CHECK (char_length(key) BETWEEN 1 AND 200)
);
CREATE INDEX api_idempotency_keys_created_idx ON api_idempotency_keys (created_at);

CREATE TRIGGER auth_refresh_tokens_updated_at BEFORE UPDATE ON auth_refresh_tokens
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER auth_setup_tokens_updated_at BEFORE UPDATE ON auth_setup_tokens
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER streak_bonus_awards_updated_at BEFORE UPDATE ON streak_bonus_awards
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER api_idempotency_keys_updated_at BEFORE UPDATE ON api_idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
