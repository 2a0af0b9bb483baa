-- The runs in flight on a thread, found without reading the thread's past runs.
-- graphrun_begin_run (twice) and graphrun_refresh_thread (at every run's end) ask for a
-- thread's pending or running runs; through graphrun_run_by_thread that read every run the
-- thread ever had: a conversation of 300 turns cost 300 rows read three times per turn.
-- Only runs in flight are in this index, so it stays small and costs nothing once a run ends.
CREATE INDEX graphrun_run_in_flight ON graphrun_run (thread_id, queue_position)
    WHERE status IN ('pending', 'running');
