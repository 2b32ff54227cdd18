-- Handovers and idempotency keys.
--
-- Portable SQL: the same file must run on SQLite and PostgreSQL. So: TEXT for
-- identifiers, timestamps (RFC 3339, UTC) and JSON; the source bytes as base64 TEXT
-- (SQLite's BLOB and PostgreSQL's BYTEA have no common name); BIGINT for counts;
-- no AUTOINCREMENT/SERIAL, no SQLite-only pragmas. Later migrations add the audit trail
-- (issue 7) and the outbox (issue 8), written in the same transaction as the handover.

CREATE TABLE handovers (
    -- UUID v5 of (sender, receiver, SHA-256 of the source bytes): re-sending the same
    -- record yields the same id, so the primary key itself prevents duplicates.
    id                  TEXT PRIMARY KEY,
    created_at          TEXT NOT NULL,
    status              TEXT NOT NULL,
    sender              TEXT NOT NULL,
    receiver            TEXT NOT NULL,
    lead_practitioner   TEXT,
    referral_reason     TEXT,
    care_form           TEXT,
    patient_bsn         TEXT,
    patient_resource_id TEXT,
    source_format       TEXT NOT NULL,
    source_media_type   TEXT,
    source_sha256       TEXT NOT NULL,
    source_size         BIGINT NOT NULL,
    source_base64       TEXT NOT NULL,
    output_bundle       TEXT NOT NULL,
    resource_count      BIGINT NOT NULL,
    summary             TEXT NOT NULL,
    submitted_by_uzi    TEXT NOT NULL,
    submitted_by_role   TEXT NOT NULL,
    submitted_by_ura    TEXT NOT NULL
);

CREATE INDEX handovers_patient ON handovers (patient_bsn);
CREATE INDEX handovers_receiver ON handovers (receiver, created_at);

CREATE TABLE idempotency_keys (
    -- The caller's organisation (URA from the token): keys are scoped per client.
    client_ura       TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    -- SHA-256 over the request (path, parameters, media type, body): a key reused for a
    -- different request is refused with 422.
    request_sha256   TEXT NOT NULL,
    handover_id      TEXT NOT NULL REFERENCES handovers (id),
    created_at       TEXT NOT NULL,
    PRIMARY KEY (client_ura, idempotency_key)
);
