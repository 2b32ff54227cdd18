-- The delivery outbox (issue 8): one row per handover to deliver, inserted in the same
-- transaction as the handover, and the history of every delivery.
--
-- Portable SQL, as in 0001: TEXT timestamps (RFC 3339, UTC, milliseconds: text order is
-- time order), BIGINT counts. The number 0008 is the issue's, to stay clear of the
-- numbers other stages take.

CREATE TABLE outbox (
    handover_id      TEXT PRIMARY KEY REFERENCES handovers (id),
    -- The receiving provider as the handover names it (`ura|<number>`); selects the target.
    receiver         TEXT NOT NULL,
    -- queued | in-flight | retrying | delivered | dead-letter
    state            TEXT NOT NULL,
    -- Attempts made (an attempt counts when it starts, so a crash during one counts).
    attempts         BIGINT NOT NULL,
    next_attempt_at  TEXT,
    -- While in flight: when the claim lapses if the process died during the attempt.
    lease_until      TEXT,
    last_status      BIGINT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    delivered_at     TEXT
);

CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- What happened to each delivery, including operators' retries and drops (who and why).
-- Kept when a row is dropped. Until the audit trail (issue 7) is in place, this table is
-- the record of `overdracht outbox drop`.
CREATE TABLE outbox_events (
    handover_id  TEXT NOT NULL,
    at           TEXT NOT NULL,
    event        TEXT NOT NULL,
    attempt      BIGINT,
    status       BIGINT,
    detail       TEXT,
    actor        TEXT
);

CREATE INDEX outbox_events_handover ON outbox_events (handover_id, at);
