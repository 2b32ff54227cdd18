-- PostgreSQL version of migrations/sqlite/0001_handovers.sql: the same tables; every TEXT column
-- collates "C" (byte order, as SQLite compares: RFC 3339 times, ids and codes sort as text).

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
    id                  TEXT COLLATE "C" PRIMARY KEY,
    created_at          TEXT COLLATE "C" NOT NULL,
    status              TEXT COLLATE "C" NOT NULL,
    sender              TEXT COLLATE "C" NOT NULL,
    receiver            TEXT COLLATE "C" NOT NULL,
    lead_practitioner   TEXT COLLATE "C",
    referral_reason     TEXT COLLATE "C",
    care_form           TEXT COLLATE "C",
    patient_bsn         TEXT COLLATE "C",
    patient_resource_id TEXT COLLATE "C",
    source_format       TEXT COLLATE "C" NOT NULL,
    source_media_type   TEXT COLLATE "C",
    source_sha256       TEXT COLLATE "C" NOT NULL,
    source_size         BIGINT NOT NULL,
    source_base64       TEXT COLLATE "C" NOT NULL,
    output_bundle       TEXT COLLATE "C" NOT NULL,
    resource_count      BIGINT NOT NULL,
    summary             TEXT COLLATE "C" NOT NULL,
    submitted_by_uzi    TEXT COLLATE "C" NOT NULL,
    submitted_by_role   TEXT COLLATE "C" NOT NULL,
    submitted_by_ura    TEXT COLLATE "C" NOT NULL
);

CREATE INDEX handovers_patient ON handovers (patient_bsn);
CREATE INDEX handovers_receiver ON handovers (receiver, created_at);

CREATE TABLE idempotency_keys (
    -- The caller's organisation (URA from the token): keys are scoped per client.
    client_ura       TEXT COLLATE "C" NOT NULL,
    idempotency_key  TEXT COLLATE "C" NOT NULL,
    -- SHA-256 over the request (path, parameters, media type, body): a key reused for a
    -- different request is refused with 422.
    request_sha256   TEXT COLLATE "C" NOT NULL,
    handover_id      TEXT COLLATE "C" NOT NULL REFERENCES handovers (id),
    created_at       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (client_ura, idempotency_key)
);
