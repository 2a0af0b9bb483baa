-- Stores the events of several executing runs in one statement (storage/event_writer.py's group
-- commit): `p_groups` is a JSON array of `[run_id, attempt, [[sequence, kind, data], ...]]`.
-- Each run is fenced as checkpoint writes are (graphrun_fence): its shared advisory lock first
-- (all of them in one statement, in run id order), then its row read afresh (a statement of its
-- own, so it sees a takeover that committed while a lock was awaited); a run this attempt no
-- longer owns gets nothing stored. Returns the ids of the runs it stored for, and wakes followers
-- on other replicas (NOTIFY graphrun_event). Set-based, not run by run: a replica streaming for a
-- hundred runs writes a hundred runs' events at a time, a token or two each. One group (a replica
-- streaming one run, a stream's first token) takes a path of its own, the same steps without the
-- sorting and the arrays: 0.33 ms a write instead of 0.46 (one event, a round trip included).
CREATE OR REPLACE FUNCTION graphrun_append_events(p_groups jsonb) RETURNS uuid[]
LANGUAGE plpgsql AS $$
DECLARE
    v_owned integer[];  -- the groups (by position in p_groups) whose attempt still owns its run
    v_notified bigint;
    v_run uuid;
    v_stored integer;
BEGIN
    IF jsonb_array_length(p_groups) = 1 THEN
        v_run := (p_groups->0->>0)::uuid;
        PERFORM pg_advisory_xact_lock_shared(graphrun_run_lock_key(v_run));
        PERFORM 1 FROM graphrun_run
          WHERE run_id = v_run AND attempt = (p_groups->0->>1)::integer AND status = 'running';
        IF NOT FOUND THEN
            RETURN '{}';
        END IF;
        INSERT INTO graphrun_run_event (run_id, sequence, kind, data)
        SELECT v_run, (e->>0)::bigint, e->>1, e->2 FROM jsonb_array_elements(p_groups->0->2) AS e
            ON CONFLICT DO NOTHING;  -- a retried write whose answer was lost
        GET DIAGNOSTICS v_stored = ROW_COUNT;
        IF v_stored > 0 THEN
            PERFORM pg_notify('graphrun_event', v_run::text);
        END IF;
        RETURN ARRAY[v_run];
    END IF;
    PERFORM pg_advisory_xact_lock_shared(graphrun_run_lock_key(g.run_id))
       FROM (SELECT (value->>0)::uuid AS run_id FROM jsonb_array_elements(p_groups) ORDER BY 1) AS g;
    SELECT coalesce(array_agg(g.n), '{}') INTO v_owned
      FROM jsonb_array_elements(p_groups) WITH ORDINALITY AS g(value, n)
      JOIN graphrun_run AS r
        ON r.run_id = (g.value->>0)::uuid AND r.attempt = (g.value->>1)::integer AND r.status = 'running';
    WITH stored AS (
        INSERT INTO graphrun_run_event (run_id, sequence, kind, data)
        SELECT (g.value->>0)::uuid, (e->>0)::bigint, e->>1, e->2
          FROM jsonb_array_elements(p_groups) WITH ORDINALITY AS g(value, n), jsonb_array_elements(g.value->2) AS e
         WHERE g.n = ANY (v_owned)
            ON CONFLICT DO NOTHING  -- a retried write whose answer was lost
        RETURNING run_id
    )
    SELECT count(pg_notify('graphrun_event', run_id::text)) INTO v_notified  -- runs with new rows only
      FROM (SELECT DISTINCT run_id FROM stored) AS fresh;
    RETURN ARRAY(SELECT (p_groups->(n - 1)->>0)::uuid FROM unnest(v_owned) AS n);
END $$;
