-- Record a run's end (fenced by its attempt) with its last events, free or
-- hand on its thread, and wake followers and workers. Returns nothing when
-- the attempt no longer owns the run (and then changes nothing).
CREATE OR REPLACE FUNCTION graphrun_finish_run(
    p_run_id uuid, p_attempt integer, p_status text, p_error jsonb, p_node text, p_step integer,
    p_sequences bigint[], p_kinds text[], p_data jsonb[]
) RETURNS SETOF graphrun_run
LANGUAGE plpgsql AS $$
DECLARE
    v_run graphrun_run;
BEGIN
    UPDATE graphrun_run
       SET status = p_status, error = p_error, ended_at = now(), updated_at = now(),
           lease_owner = NULL, lease_expires_at = NULL,
           current_node = coalesce(p_node, current_node), step = coalesce(p_step, step)
     WHERE run_id = p_run_id AND attempt = p_attempt AND status = 'running'
    RETURNING * INTO v_run;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO graphrun_run_event (run_id, sequence, kind, data)
    SELECT p_run_id, e.sequence, e.kind, e.data
      FROM unnest(p_sequences, p_kinds, p_data) AS e(sequence, kind, data)
        ON CONFLICT DO NOTHING;  -- a flush whose answer was lost may have stored some already
    PERFORM pg_notify('graphrun_event', p_run_id::text);
    INSERT INTO graphrun_webhook (run_id, url)  -- its completion webhook, sent from this outbox
    SELECT p_run_id, v_run.spec->>'webhook' WHERE v_run.spec ? 'webhook'
        ON CONFLICT DO NOTHING;
    IF graphrun_refresh_thread(v_run.thread_id,
                               CASE WHEN coalesce(p_error->>'reason', '') = '{{REASON_THREAD_INTERRUPTED}}' THEN NULL
                                    ELSE p_status END) THEN
        PERFORM pg_notify('graphrun_run', '');
    END IF;
    RETURN NEXT v_run;
END $$;
