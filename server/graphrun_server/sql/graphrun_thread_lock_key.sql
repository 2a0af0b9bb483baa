-- The advisory lock of a thread: shared by run starts (graphrun_begin_run), exclusive for
-- UpdateState and Delete (Records.thread_changing).
CREATE OR REPLACE FUNCTION graphrun_thread_lock_key(p_thread_id uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('graphrun-thread:' || p_thread_id::text, 0) $$;
