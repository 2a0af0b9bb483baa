-- Cancel a run: a pending one ends CANCELLED (TIMEOUT for p_action 'timeout') here,
-- with its end event; a running one is asked to stop (its replica hears it on
-- 'graphrun_cancel' or at its next lease renewal) and records its end itself; an ended
-- one is left as it is. p_action: 'interrupt', 'rollback' or 'timeout'. Returns the run
-- (nothing for an unknown one).
CREATE OR REPLACE FUNCTION graphrun_cancel_run(p_run_id uuid, p_action text, p_message text) RETURNS SETOF graphrun_run
LANGUAGE plpgsql AS $$
DECLARE
    v_run graphrun_run;
BEGIN
    SELECT * INTO v_run FROM graphrun_run WHERE run_id = p_run_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF v_run.status = 'pending' THEN
        IF p_action = 'rollback' AND v_run.attempt > 0 THEN  -- handed back after writing checkpoints
            PERFORM graphrun_delete_run_checkpoints(v_run.thread_id, p_run_id);
        END IF;
        UPDATE graphrun_run
           SET status = CASE WHEN p_action = 'timeout' THEN 'timeout' ELSE 'cancelled' END,
               cancel_action = p_action, ended_at = now(), updated_at = now(),
               error = jsonb_build_object(
                   'type', CASE WHEN p_action = 'timeout' THEN 'TimeoutError' ELSE 'CancelledError' END,
                   'reason', CASE WHEN p_action = 'timeout' THEN '{{REASON_RUN_TIMEOUT}}' ELSE '{{REASON_RUN_CANCELLED}}' END,
                   'message', p_message)
         WHERE run_id = p_run_id
        RETURNING * INTO v_run;
        -- A run that never started has one event: its end.
        INSERT INTO graphrun_run_event (run_id, sequence, kind, data)
        SELECT p_run_id, coalesce(max(sequence), 0) + 1, 'end',
               jsonb_build_object('status', v_run.status, 'error', v_run.error, 'state', NULL)
          FROM graphrun_run_event WHERE run_id = p_run_id;
        PERFORM pg_notify('graphrun_event', p_run_id::text);
        INSERT INTO graphrun_webhook (run_id, url)  -- its completion webhook, sent from this outbox
        SELECT p_run_id, v_run.spec->>'webhook' WHERE v_run.spec ? 'webhook'
            ON CONFLICT DO NOTHING;
        IF graphrun_refresh_thread(v_run.thread_id) THEN
            PERFORM pg_notify('graphrun_run', '');
        END IF;
    ELSIF v_run.status = 'running' THEN
        UPDATE graphrun_run SET cancel_action = p_action, updated_at = now()
         WHERE run_id = p_run_id RETURNING * INTO v_run;
        PERFORM pg_notify('graphrun_cancel', p_run_id::text || ' ' || p_action);
    END IF;
    RETURN NEXT v_run;
END $$;
