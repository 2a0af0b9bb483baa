-- The advisory lock of a run: shared by its writes (graphrun_fence), exclusive for a takeover
-- (Records.claim).
CREATE OR REPLACE FUNCTION graphrun_run_lock_key(p_run_id uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('graphrun-run:' || p_run_id::text, 0) $$;
