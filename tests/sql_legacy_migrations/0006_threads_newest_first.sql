-- ThreadService.List: threads newest first, a page at a time; with authentication on, only
-- the caller's (the owner leads its index), optionally only those whose metadata contains
-- given values (the GIN index answers `metadata @> …`).
CREATE INDEX graphrun_thread_by_time ON graphrun_thread (created_at DESC, thread_id DESC);
CREATE INDEX graphrun_thread_by_owner_and_time ON graphrun_thread (owner, created_at DESC, thread_id DESC);
CREATE INDEX graphrun_thread_metadata ON graphrun_thread USING gin (metadata jsonb_path_ops);
