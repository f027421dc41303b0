-- A refresh token family (one sign-in and every rotation after it) ends at
-- a fixed time, however often it is rotated: each token's expiry is capped
-- at its family's. Families from before this column have none; their next
-- rotation gives them one, counted from then.
ALTER TABLE auth_refresh_tokens ADD COLUMN family_expires_at timestamptz;
