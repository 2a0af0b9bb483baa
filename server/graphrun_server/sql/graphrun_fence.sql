-- Raises unless `attempt` still owns the running run: checkpoint writes call
-- it in their transaction, so a stalled former owner cannot write after a
-- takeover. The shared advisory lock orders it against the takeover itself (a
-- claim takes the exclusive one and passes over a run being written); unlike
-- a row lock it writes nothing.
CREATE OR REPLACE FUNCTION graphrun_fence(p_run_id uuid, p_attempt integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(graphrun_run_lock_key(p_run_id));
    PERFORM 1 FROM graphrun_run WHERE run_id = p_run_id AND attempt = p_attempt AND status = 'running';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % attempt % no longer owns its run', p_run_id, p_attempt
            USING ERRCODE = '{{SQLSTATE_NOT_OWNER}}';
    END IF;
END $$;
