-- Thread time-to-live: a thread's own TTL (minutes after its last activity, `updated_at`) and
-- what happens when it passes. Threads without one follow the server's default, if any
-- (checkpointer.ttl in langgraph.json); the sweep reads them in `updated_at` order.
ALTER TABLE graphrun_thread
    ADD COLUMN ttl_minutes double precision CHECK (ttl_minutes > 0),
    ADD COLUMN ttl_strategy text CHECK (ttl_strategy IN ('delete', 'keep_latest'));
CREATE INDEX graphrun_thread_by_activity ON graphrun_thread (updated_at) WHERE status <> 'busy';
