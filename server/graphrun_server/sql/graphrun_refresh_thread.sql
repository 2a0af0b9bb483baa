-- The thread's status, derived from its runs: BUSY while any is pending or
-- running, else from the latest run that ended. Returns whether runs are queued.
-- A run refused with THREAD_INTERRUPTED never touched the graph: it does not count.
CREATE OR REPLACE FUNCTION graphrun_refresh_thread(p_thread_id uuid, p_ended_status text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_in_flight boolean;
    v_last text := p_ended_status;  -- given by a run that just ended: it is the latest
BEGIN
    SELECT EXISTS (SELECT 1 FROM graphrun_run
                    WHERE thread_id = p_thread_id AND status IN ('pending', 'running'))
      INTO v_in_flight;
    IF NOT v_in_flight AND v_last IS NULL THEN
        SELECT status INTO v_last FROM graphrun_run
         WHERE thread_id = p_thread_id AND ended_at IS NOT NULL AND attempt > 0
           AND coalesce(error->>'reason', '') <> '{{REASON_THREAD_INTERRUPTED}}'  -- never touched the graph
         ORDER BY ended_at DESC, queue_position DESC LIMIT 1;
    END IF;
    UPDATE graphrun_thread
       SET updated_at = now(),
           status = CASE WHEN v_in_flight THEN 'busy'
                         WHEN v_last IN ('interrupted', 'error') THEN v_last
                         ELSE 'idle' END
     WHERE thread_id = p_thread_id;
    RETURN v_in_flight;
END $$;
