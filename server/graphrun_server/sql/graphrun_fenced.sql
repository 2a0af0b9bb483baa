-- graphrun_fence as a condition: checkpoint writes call it in their own INSERT
-- (`INSERT ... SELECT ... WHERE graphrun_fenced(run, attempt)`, storage/checkpointer.py)
-- instead of in a statement of their own. It still raises when the attempt no longer owns
-- its run, and its shared advisory lock still lasts until the write commits.
CREATE OR REPLACE FUNCTION graphrun_fenced(p_run_id uuid, p_attempt integer) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM graphrun_fence(p_run_id, p_attempt);
    RETURN true;
END $$;
