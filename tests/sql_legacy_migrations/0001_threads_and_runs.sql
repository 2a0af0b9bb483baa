-- Threads, runs and run events: graphrun's records beside LangGraph's checkpoint tables.

CREATE TABLE graphrun_thread (
    thread_id     uuid PRIMARY KEY,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb,
    status        text NOT NULL DEFAULT 'idle'
                  CHECK (status IN ('idle', 'busy', 'interrupted', 'error')),
    -- The assistant of the latest run: the graph GetState/UpdateState use.
    assistant_id  text,
    -- The authenticated caller that created it; only that caller sees it. NULL without authentication.
    owner         text
);

CREATE TABLE graphrun_run (
    run_id              uuid PRIMARY KEY,
    thread_id           uuid NOT NULL REFERENCES graphrun_thread (thread_id) ON DELETE CASCADE,
    assistant_id        text NOT NULL,
    status              text NOT NULL
                        CHECK (status IN ('pending', 'running', 'success', 'error',
                                          'timeout', 'interrupted', 'cancelled')),
    -- Incremented each time execution starts; every later write of the run,
    -- its events and its checkpoints is fenced by it.
    attempt             integer NOT NULL DEFAULT 0,
    multitask_strategy  text NOT NULL,
    on_disconnect       text NOT NULL DEFAULT 'cancel',
    -- What to execute (input, command, config, interrupts, stream modes, ...),
    -- so that any replica can execute or resume the run.
    spec                jsonb NOT NULL,
    metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,
    error               jsonb,
    -- Arrival order: the thread's queued runs execute in this order.
    queue_position      bigint GENERATED ALWAYS AS IDENTITY,
    not_before          timestamptz NOT NULL DEFAULT now(),
    -- The replica executing the run and until when its lease holds.
    lease_owner         text,
    lease_expires_at    timestamptz,
    -- A cancel asked of whichever replica executes the run: 'interrupt' or 'rollback'.
    cancel_action       text,
    current_node        text,
    step                integer,
    owner               text,  -- as on its thread
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    ended_at            timestamptz
);

-- One run executing per thread, whichever replica executes it.
CREATE UNIQUE INDEX graphrun_run_one_running_per_thread ON graphrun_run (thread_id) WHERE status = 'running';
CREATE INDEX graphrun_run_queue ON graphrun_run (queue_position) WHERE status = 'pending';
CREATE INDEX graphrun_run_leases ON graphrun_run (lease_expires_at) WHERE status = 'running';
CREATE INDEX graphrun_run_by_thread ON graphrun_run (thread_id, created_at DESC);
CREATE INDEX graphrun_run_by_time ON graphrun_run (created_at DESC, run_id DESC);
CREATE INDEX graphrun_run_ended ON graphrun_run (ended_at) WHERE ended_at IS NOT NULL;

-- A run's events, numbered 1, 2, 3 ... across attempts, for Join.
CREATE TABLE graphrun_run_event (
    run_id      uuid NOT NULL REFERENCES graphrun_run (run_id) ON DELETE CASCADE,
    sequence    bigint NOT NULL,
    kind        text NOT NULL,
    data        jsonb NOT NULL,
    namespace   text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, sequence)
);

-- The advisory lock of a run: shared by its writes (graphrun_fence), exclusive for a takeover.
CREATE FUNCTION graphrun_run_lock_key(p_run_id uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('graphrun-run:' || p_run_id::text, 0) $$;

-- Raises unless `attempt` still owns the running run: checkpoint writes call
-- it in their transaction, so a stalled former owner cannot write after a
-- takeover. The shared advisory lock orders it against the takeover itself (a
-- claim takes the exclusive one and passes over a run being written); unlike
-- a row lock it writes nothing.
CREATE FUNCTION graphrun_fence(p_run_id uuid, p_attempt integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(graphrun_run_lock_key(p_run_id));
    PERFORM 1 FROM graphrun_run WHERE run_id = p_run_id AND attempt = p_attempt AND status = 'running';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % attempt % no longer owns its run', p_run_id, p_attempt
            USING ERRCODE = 'GR001';
    END IF;
END $$;

-- The advisory lock of a thread: shared by run starts, exclusive for UpdateState and Delete.
CREATE FUNCTION graphrun_thread_lock_key(p_thread_id uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('graphrun-thread:' || p_thread_id::text, 0) $$;

-- Remove the checkpoints (and their pending writes) a run wrote: a rollback.
CREATE FUNCTION graphrun_delete_run_checkpoints(p_thread_id uuid, p_run_id uuid) RETURNS integer
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

-- The thread's status, derived from its runs: BUSY while any is pending or
-- running, else from the latest run that ended. Returns whether runs are queued.
CREATE FUNCTION graphrun_refresh_thread(p_thread_id uuid, p_ended_status text DEFAULT NULL) RETURNS boolean
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
           AND coalesce(error->>'reason', '') <> 'THREAD_INTERRUPTED'  -- never touched the graph
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

-- Accept a run on a thread, applying its multitask strategy, in one
-- transaction under the thread's row lock. The run starts RUNNING (leased to
-- p_owner) when it can start at once, else PENDING for any replica's workers.
-- Errors: GR404 no such thread; GR409 thread busy (DETAIL: the run in flight);
-- GR412 the thread waits on an interrupt and the run brings new input.
CREATE FUNCTION graphrun_begin_run(
    p_run_id uuid, p_thread_id uuid, p_create boolean, p_assistant_id text, p_strategy text,
    p_on_disconnect text, p_spec jsonb, p_metadata jsonb, p_delay interval, p_has_input boolean,
    p_owner text, p_lease interval, p_caller text DEFAULT NULL
) RETURNS SETOF graphrun_run
LANGUAGE plpgsql AS $$
DECLARE
    v_thread graphrun_thread;
    v_in_flight uuid;
    v_start boolean;
BEGIN
    IF p_create THEN
        INSERT INTO graphrun_thread (thread_id, owner, metadata)
        VALUES (p_thread_id, p_caller,
                CASE WHEN p_caller IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('owner', p_caller) END)
        ON CONFLICT DO NOTHING;
    END IF;
    SELECT * INTO v_thread FROM graphrun_thread WHERE thread_id = p_thread_id FOR UPDATE;
    -- Another caller's thread is answered as if it did not exist.
    IF NOT FOUND OR (p_caller IS NOT NULL AND v_thread.owner IS DISTINCT FROM p_caller) THEN
        RAISE EXCEPTION 'thread % not found', p_thread_id USING ERRCODE = 'GR404';
    END IF;
    -- UpdateState and Delete hold this lock exclusively while they change the thread.
    IF NOT pg_try_advisory_xact_lock_shared(graphrun_thread_lock_key(p_thread_id)) THEN
        RAISE EXCEPTION 'thread % is being changed', p_thread_id USING ERRCODE = 'GR409';
    END IF;
    SELECT run_id INTO v_in_flight FROM graphrun_run
     WHERE thread_id = p_thread_id AND status IN ('pending', 'running')
     ORDER BY queue_position LIMIT 1;
    IF v_in_flight IS NOT NULL THEN
        IF p_strategy = 'reject' THEN
            RAISE EXCEPTION 'thread % is busy', p_thread_id
                USING ERRCODE = 'GR409', DETAIL = v_in_flight::text;
        ELSIF p_strategy IN ('interrupt', 'rollback') THEN
            PERFORM graphrun_cancel_run(run_id, p_strategy, 'replaced by run ' || p_run_id)
               FROM graphrun_run
              WHERE thread_id = p_thread_id AND status IN ('pending', 'running');
        END IF;
    ELSIF v_thread.status = 'interrupted' AND p_has_input THEN
        RAISE EXCEPTION 'thread % is waiting on an interrupt', p_thread_id USING ERRCODE = 'GR412';
    END IF;
    v_start := p_owner IS NOT NULL AND p_delay <= interval '0' AND NOT EXISTS (
        SELECT 1 FROM graphrun_run WHERE thread_id = p_thread_id AND status IN ('pending', 'running'));
    RETURN QUERY
    INSERT INTO graphrun_run (run_id, thread_id, assistant_id, status, attempt, multitask_strategy,
                              on_disconnect, spec, metadata, not_before, lease_owner, lease_expires_at,
                              started_at, owner)
    VALUES (p_run_id, p_thread_id, p_assistant_id,
            CASE WHEN v_start THEN 'running' ELSE 'pending' END,
            CASE WHEN v_start THEN 1 ELSE 0 END,
            p_strategy, p_on_disconnect, p_spec, p_metadata, now() + greatest(p_delay, interval '0'),
            CASE WHEN v_start THEN p_owner END,
            CASE WHEN v_start THEN now() + p_lease END,
            CASE WHEN v_start THEN now() END,
            p_caller)
    RETURNING *;
    UPDATE graphrun_thread SET status = 'busy', assistant_id = p_assistant_id, updated_at = now()
     WHERE thread_id = p_thread_id;
    IF NOT v_start THEN
        PERFORM pg_notify('graphrun_run', p_run_id::text);
    END IF;
END $$;

-- Record a run's end (fenced by its attempt) with its last events, free or
-- hand on its thread, and wake followers and workers. Returns nothing when
-- the attempt no longer owns the run.
CREATE FUNCTION graphrun_finish_run(
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
    IF graphrun_refresh_thread(v_run.thread_id,
                               CASE WHEN coalesce(p_error->>'reason', '') = 'THREAD_INTERRUPTED' THEN NULL
                                    ELSE p_status END) THEN
        PERFORM pg_notify('graphrun_run', '');
    END IF;
    RETURN NEXT v_run;
END $$;

-- Cancel a run: a pending one ends CANCELLED here; a running one is asked to
-- stop (its replica hears it on 'graphrun_cancel' or at its next lease
-- renewal). p_action: 'interrupt', 'rollback' or 'timeout'.
CREATE FUNCTION graphrun_cancel_run(p_run_id uuid, p_action text, p_message text) RETURNS SETOF graphrun_run
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
                   'reason', CASE WHEN p_action = 'timeout' THEN 'RUN_TIMEOUT' ELSE 'RUN_CANCELLED' END,
                   'message', p_message)
         WHERE run_id = p_run_id
        RETURNING * INTO v_run;
        -- A run that never started has one event: its end.
        INSERT INTO graphrun_run_event (run_id, sequence, kind, data)
        SELECT p_run_id, coalesce(max(sequence), 0) + 1, 'end',
               jsonb_build_object('status', v_run.status, 'error', v_run.error, 'state', NULL)
          FROM graphrun_run_event WHERE run_id = p_run_id;
        PERFORM pg_notify('graphrun_event', p_run_id::text);
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
