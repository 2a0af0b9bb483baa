-- Threads and runs: graphrun's own records, beside LangGraph's checkpoint tables.

CREATE TABLE graphrun_thread (
    thread_id     uuid PRIMARY KEY,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb,
    status        text NOT NULL DEFAULT 'idle'
                  CHECK (status IN ('idle', 'busy', 'interrupted', 'error')),
    -- The assistant of the latest run: the graph GetState/UpdateState use.
    assistant_id  text
);

CREATE TABLE graphrun_run (
    run_id              uuid PRIMARY KEY,
    thread_id           uuid NOT NULL REFERENCES graphrun_thread (thread_id) ON DELETE CASCADE,
    assistant_id        text NOT NULL,
    status              text NOT NULL
                        CHECK (status IN ('pending', 'running', 'success', 'error',
                                          'timeout', 'interrupted', 'cancelled')),
    -- Incremented each time execution starts; every later write is fenced by it.
    attempt             integer NOT NULL DEFAULT 0,
    multitask_strategy  text NOT NULL,
    -- What to execute (input, command, config, interrupts, ...), as JSON, so
    -- the run can be inspected and executed by any replica.
    spec                jsonb NOT NULL,
    metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,
    error               jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    ended_at            timestamptz
);

-- One run in flight per thread, whichever replica started it.
CREATE UNIQUE INDEX graphrun_run_one_in_flight_per_thread
    ON graphrun_run (thread_id) WHERE status IN ('pending', 'running');

CREATE INDEX graphrun_run_by_thread ON graphrun_run (thread_id, created_at DESC);
