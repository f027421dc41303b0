-- Each base's Airtable budget, shared by every process of the deployment:
-- the request starts of the last two minutes, the pause after a 429, the
-- share of the base's limit and the requests waiting by priority, as the
-- Airtable client's pacing writes them. One row per base, locked for each
-- update, so that two processes can never both take the last start of a
-- second.
CREATE TABLE airtable_budgets (
    base_id    text PRIMARY KEY,
    record     jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER airtable_budgets_updated_at BEFORE UPDATE ON airtable_budgets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
