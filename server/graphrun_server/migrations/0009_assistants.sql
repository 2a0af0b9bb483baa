-- Assistants: a graph with its own configuration (config, context, metadata, webhook, name,
-- description), created and versioned through AssistantService. Each graph also keeps its
-- default assistant, whose id is the graph id; those live in no table (they follow the
-- project's langgraph.json). Created ones are owner-scoped like threads.
--
-- graphrun_assistant holds the current version's fields (what Get, List and runs read);
-- graphrun_assistant_version every version, 1, 2, 3 … (Update adds one, SetLatest copies one
-- back into graphrun_assistant). Deleting an assistant deletes its versions; runs keep what
-- they ran (their spec is the effective one), so nothing references the assistant.
CREATE TABLE graphrun_assistant (
    assistant_id  uuid PRIMARY KEY,
    -- The authenticated caller that created it; only that caller sees it. NULL without authentication.
    owner         text,
    graph_id      text NOT NULL,
    name          text NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',
    config        jsonb NOT NULL DEFAULT '{}'::jsonb,
    context       jsonb NOT NULL DEFAULT '{}'::jsonb,
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb,
    webhook       text,
    version       integer NOT NULL DEFAULT 1,  -- the current version
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX graphrun_assistant_newest_first ON graphrun_assistant (created_at DESC, assistant_id DESC);
CREATE INDEX graphrun_assistant_by_owner ON graphrun_assistant (owner, created_at DESC, assistant_id DESC);
CREATE INDEX graphrun_assistant_metadata ON graphrun_assistant USING gin (metadata jsonb_path_ops);

CREATE TABLE graphrun_assistant_version (
    assistant_id  uuid NOT NULL REFERENCES graphrun_assistant (assistant_id) ON DELETE CASCADE,
    version       integer NOT NULL CHECK (version > 0),
    graph_id      text NOT NULL,
    name          text NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',
    config        jsonb NOT NULL DEFAULT '{}'::jsonb,
    context       jsonb NOT NULL DEFAULT '{}'::jsonb,
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb,
    webhook       text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (assistant_id, version)
);

-- A run names an assistant (a graph id, or a created assistant's id): which graph it executes
-- and which version of the assistant it ran. NULL on runs and threads from before assistants
-- were stored: their assistant_id is their graph id.
ALTER TABLE graphrun_run
    ADD COLUMN graph_id text,
    ADD COLUMN assistant_version integer;
-- The graph of the thread's latest run, for state reads (its assistant may be deleted since).
ALTER TABLE graphrun_thread ADD COLUMN graph_id text;

-- graphrun_begin_run takes the graph and the assistant's version (sql/graphrun_begin_run.sql):
-- the old signature goes, the start-up defines the new one.
DROP FUNCTION IF EXISTS graphrun_begin_run(uuid, uuid, boolean, text, text, text, jsonb, jsonb, interval, boolean,
                                           text, interval, text);
