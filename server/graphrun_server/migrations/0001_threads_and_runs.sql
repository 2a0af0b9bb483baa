-- Threads, runs and run events: graphrun's records beside LangGraph's checkpoint tables.
--
-- Migrations create and change tables and indexes (and drop a function whose signature
-- changes). The run life cycle's functions are defined in graphrun_server/sql/, one file
-- each, and applied after the migrations at every start-up. This migration created them too
-- before that folder existed (see git history); where it did, the start-up replaces them.

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
