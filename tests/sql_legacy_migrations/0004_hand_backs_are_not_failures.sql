-- Runs handed back cleanly (a replica draining on SIGTERM, or waiting out a database
-- outage) count their hand-backs, so that GRAPHRUN_MAX_ATTEMPTS limits failed executions
-- only: a rolling deploy must not use up a long run's attempts. `attempt` still grows with
-- every execution (it is what fences a former owner's writes).
ALTER TABLE graphrun_run ADD COLUMN handoffs integer NOT NULL DEFAULT 0;
