-- Accept a run on a thread, applying its multitask strategy, in one
-- transaction under the thread's row lock. The run starts RUNNING (leased to
-- p_owner, attempt 1) when it can start at once, else PENDING for any replica's
-- workers (NOTIFY graphrun_run). INTERRUPT and ROLLBACK first stop the runs in
-- flight (graphrun_cancel_run); ENQUEUE queues behind them.
-- A thread created here (p_create, and it did not exist) is BUSY with this run
-- from the start (nothing else can be in flight on it, and it cannot wait on an
-- interrupt), so it is inserted as such and the lookups, the row lock and the
-- second update of the thread are skipped.
-- p_assistant_id is the id the run named (a graph id, or a created assistant's), p_graph_id
-- the graph it executes and p_assistant_version the assistant's version it runs; the thread
-- remembers the first two (its latest run's).
-- Errors (storage/records.py turns them into graphrun's):
--   SQLSTATE_THREAD_NOT_FOUND    no such thread, or another caller's;
--   SQLSTATE_THREAD_BUSY         a run in flight under REJECT (DETAIL: its run id), or
--                                UpdateState/Delete changing the thread (no DETAIL);
--   SQLSTATE_THREAD_INTERRUPTED  the thread waits on an interrupt and the run brings new input.
CREATE OR REPLACE FUNCTION graphrun_begin_run(
    p_run_id uuid, p_thread_id uuid, p_create boolean, p_assistant_id text, p_strategy text,
    p_on_disconnect text, p_spec jsonb, p_metadata jsonb, p_delay interval, p_has_input boolean,
    p_owner text, p_lease interval, p_caller text DEFAULT NULL, p_graph_id text DEFAULT NULL,
    p_assistant_version integer DEFAULT NULL
) RETURNS SETOF graphrun_run
LANGUAGE plpgsql AS $$
DECLARE
    v_thread graphrun_thread;
    v_in_flight uuid;
    v_start boolean;
    v_created boolean := false;
BEGIN
    IF p_create THEN
        INSERT INTO graphrun_thread (thread_id, owner, metadata, status, assistant_id, graph_id)
        VALUES (p_thread_id, p_caller,
                CASE WHEN p_caller IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('owner', p_caller) END,
                'busy', p_assistant_id, coalesce(p_graph_id, p_assistant_id))
        ON CONFLICT DO NOTHING;
        v_created := FOUND;
    END IF;
    IF NOT v_created THEN
        SELECT * INTO v_thread FROM graphrun_thread WHERE thread_id = p_thread_id FOR UPDATE;
        -- Another caller's thread is answered as if it did not exist.
        IF NOT FOUND OR (p_caller IS NOT NULL AND v_thread.owner IS DISTINCT FROM p_caller) THEN
            RAISE EXCEPTION 'thread % not found', p_thread_id
                USING ERRCODE = '{{SQLSTATE_THREAD_NOT_FOUND}}';
        END IF;
    END IF;
    -- UpdateState and Delete hold this lock exclusively while they change the thread.
    IF NOT pg_try_advisory_xact_lock_shared(graphrun_thread_lock_key(p_thread_id)) THEN
        RAISE EXCEPTION 'thread % is being changed', p_thread_id
            USING ERRCODE = '{{SQLSTATE_THREAD_BUSY}}';
    END IF;
    IF NOT v_created THEN
        SELECT run_id INTO v_in_flight FROM graphrun_run
         WHERE thread_id = p_thread_id AND status IN ('pending', 'running')
         ORDER BY queue_position LIMIT 1;
        IF v_in_flight IS NOT NULL THEN
            IF p_strategy = 'reject' THEN
                RAISE EXCEPTION 'thread % is busy', p_thread_id
                    USING ERRCODE = '{{SQLSTATE_THREAD_BUSY}}', DETAIL = v_in_flight::text;
            ELSIF p_strategy IN ('interrupt', 'rollback') THEN
                PERFORM graphrun_cancel_run(run_id, p_strategy, 'replaced by run ' || p_run_id)
                   FROM graphrun_run
                  WHERE thread_id = p_thread_id AND status IN ('pending', 'running');
            END IF;
        ELSIF v_thread.status = 'interrupted' AND p_has_input THEN
            RAISE EXCEPTION 'thread % is waiting on an interrupt', p_thread_id
                USING ERRCODE = '{{SQLSTATE_THREAD_INTERRUPTED}}';
        END IF;
    END IF;
    v_start := p_owner IS NOT NULL AND p_delay <= interval '0' AND (v_created OR NOT EXISTS (
        SELECT 1 FROM graphrun_run WHERE thread_id = p_thread_id AND status IN ('pending', 'running')));
    RETURN QUERY
    INSERT INTO graphrun_run (run_id, thread_id, assistant_id, graph_id, assistant_version, status, attempt,
                              multitask_strategy, on_disconnect, spec, metadata, not_before, lease_owner,
                              lease_expires_at, started_at, owner)
    VALUES (p_run_id, p_thread_id, p_assistant_id, coalesce(p_graph_id, p_assistant_id), p_assistant_version,
            CASE WHEN v_start THEN 'running' ELSE 'pending' END,
            CASE WHEN v_start THEN 1 ELSE 0 END,
            p_strategy, p_on_disconnect, p_spec, p_metadata, now() + greatest(p_delay, interval '0'),
            CASE WHEN v_start THEN p_owner END,
            CASE WHEN v_start THEN now() + p_lease END,
            CASE WHEN v_start THEN now() END,
            p_caller)
    RETURNING *;
    IF NOT v_created THEN
        UPDATE graphrun_thread SET status = 'busy', assistant_id = p_assistant_id,
               graph_id = coalesce(p_graph_id, p_assistant_id), updated_at = now()
         WHERE thread_id = p_thread_id;
    END IF;
    IF NOT v_start THEN
        PERFORM pg_notify('graphrun_run', p_run_id::text);
    END IF;
END $$;
