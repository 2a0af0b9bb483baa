-- Stores the events of several executing runs in one statement (storage/event_writer.py's group
-- commit): `p_groups` is a JSON array of `[run_id, attempt, [[sequence, kind, data], ...]]`.
-- Each run is fenced as checkpoint writes are (graphrun_fence): its shared advisory lock first,
-- then its row read afresh (a statement of its own, so it sees a takeover that committed while
-- the lock was awaited); a run this attempt no longer owns gets nothing stored. Returns the ids
-- of the runs it stored for, and wakes followers on other replicas (NOTIFY graphrun_event).
CREATE OR REPLACE FUNCTION graphrun_append_events(p_groups jsonb) RETURNS uuid[]
LANGUAGE plpgsql AS $$
DECLARE
    g jsonb;
    v_run uuid;
    v_stored bigint;
    v_owned uuid[] := '{}';
BEGIN
    FOR g IN SELECT value FROM jsonb_array_elements(p_groups) ORDER BY value->>0 LOOP
        v_run := (g->>0)::uuid;
        PERFORM pg_advisory_xact_lock_shared(graphrun_run_lock_key(v_run));
        PERFORM 1 FROM graphrun_run WHERE run_id = v_run AND attempt = (g->>1)::integer AND status = 'running';
        CONTINUE WHEN NOT FOUND;
        v_owned := v_owned || v_run;
        INSERT INTO graphrun_run_event (run_id, sequence, kind, data)
        SELECT v_run, (e->>0)::bigint, e->>1, e->2 FROM jsonb_array_elements(g->2) AS e
            ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS v_stored = ROW_COUNT;
        IF v_stored > 0 THEN
            PERFORM pg_notify('graphrun_event', v_run::text);
        END IF;
    END LOOP;
    RETURN v_owned;
END $$;
