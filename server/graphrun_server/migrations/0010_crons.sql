-- Crons: schedules that start runs (crons.py). Every replica's scheduler takes a cron whose
-- tick is due by setting `claimed_until` (FOR UPDATE SKIP LOCKED, so one replica does), starts
-- the tick's run under a run id that follows from the cron and the tick (so a replica that
-- starts it again finds the first run instead of making a second), then moves `next_run_at`
-- on. A claim whose replica died lapses at `claimed_until`, and another replica tries the same
-- tick again.
CREATE TABLE graphrun_cron (
    cron_id        uuid PRIMARY KEY,
    owner          text,  -- the caller that created it; its runs are this owner's. NULL without authentication
    schedule       text NOT NULL,  -- a cron expression, read in `timezone` (schedule.py)
    timezone       text NOT NULL,
    assistant_id   text NOT NULL,  -- the spec's, for CronService.List's filter
    -- The spec's thread (NULL: a new thread per tick); the cron goes with it.
    thread_id      uuid REFERENCES graphrun_thread (thread_id) ON DELETE CASCADE,
    spec           jsonb NOT NULL,  -- the run each tick starts (RunRequest)
    end_time       timestamptz,
    paused         boolean NOT NULL DEFAULT false,
    metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
    next_run_at    timestamptz,  -- the next tick (UTC); NULL: none (paused, or past end_time)
    claimed_until  timestamptz,  -- a replica is starting the tick at next_run_at until then
    last_tick_at   timestamptz,
    last_run_id    uuid,
    last_skip      jsonb,  -- {tick_at, reason, message} of the latest tick that started no run
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX graphrun_cron_due ON graphrun_cron (next_run_at) WHERE next_run_at IS NOT NULL;
CREATE INDEX graphrun_cron_by_time ON graphrun_cron (created_at DESC, cron_id DESC);
CREATE INDEX graphrun_cron_by_thread ON graphrun_cron (thread_id) WHERE thread_id IS NOT NULL;
-- RunService.List's cron_id filter: a tick's run carries its cron in its spec.
CREATE INDEX graphrun_run_by_cron ON graphrun_run ((spec->>'cron_id'), created_at DESC, run_id DESC)
    WHERE spec ? 'cron_id';
