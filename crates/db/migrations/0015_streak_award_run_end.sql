-- The last day of the run a streak bonus was given for, as it stood then.
-- A bonus counts as given for the current run when the two runs share a
-- day, so that deleting a usage in the middle of a run (which splits it)
-- does not make the later part a new run that earns the bonuses again.
-- Rows from before have none; their run is taken to end threshold - 1 days
-- after it began, the least it covered.
ALTER TABLE streak_bonus_awards ADD COLUMN run_end date;
