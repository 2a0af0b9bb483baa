-- Completion webhooks: a durable outbox. graphrun_finish_run and graphrun_cancel_run add a
-- row when a run that names a webhook ends, in the same transaction as its end; any replica's
-- sender delivers it (at least once) and records how it went.
CREATE TABLE graphrun_webhook (
    run_id          uuid PRIMARY KEY REFERENCES graphrun_run (run_id) ON DELETE CASCADE,
    url             text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX graphrun_webhook_due ON graphrun_webhook (next_attempt_at) WHERE status = 'pending';
