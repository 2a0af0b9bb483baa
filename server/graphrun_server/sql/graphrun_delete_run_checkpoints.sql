-- Remove the checkpoints (and their pending writes) a run wrote: a rollback. Returns the
-- number of checkpoints removed.
CREATE OR REPLACE FUNCTION graphrun_delete_run_checkpoints(p_thread_id uuid, p_run_id uuid) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_count integer;
BEGIN
    DELETE FROM checkpoint_writes w USING checkpoints c
     WHERE c.thread_id = p_thread_id::text AND c.metadata->>'run_id' = p_run_id::text
       AND w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id;
    DELETE FROM checkpoints WHERE thread_id = p_thread_id::text AND metadata->>'run_id' = p_run_id::text;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END $$;
