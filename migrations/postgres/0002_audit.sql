-- PostgreSQL version of migrations/sqlite/0002_audit.sql: the same tables; every TEXT column
-- collates "C" (byte order, as SQLite compares: RFC 3339 times, ids and codes sort as text).

-- The audit trail (NEN 7513), append-only and hash-chained.
--
-- Portable SQL (SQLite now, PostgreSQL later), as in 0001. Every entry is one row of
-- `audit_entries`; `content` holds the entry's canonical JSON exactly as hashed, the other
-- columns are copies of some of its fields for searching (verify checks that they agree).
--
-- The chain: hash(n) = SHA-256("overdracht-audit-v1" 0x00 seq 0x00 prev_hash 0x00 content),
-- prev_hash(1) = 64 zeros. `audit_chain_head` is a single row holding the last seq and hash.
-- A writer first updates that row (seq = seq + 1), which serialises writers: in SQLite
-- the update takes the database's write lock, in PostgreSQL the row lock; both are held
-- until the action's transaction commits, so the chain stays linear and gap-free.
--
-- Nothing in overdracht updates or deletes rows of audit_entries. On PostgreSQL grant the
-- service role INSERT and SELECT only on audit_entries (REVOKE UPDATE, DELETE).

CREATE TABLE audit_entries (
    seq          BIGINT PRIMARY KEY,
    -- Random (UUID form), the AuditEvent id; not declared UNIQUE to keep the write to two
    -- b-trees (table and patient index), as every read of patient data writes an entry.
    id           TEXT COLLATE "C" NOT NULL,
    recorded_at  TEXT COLLATE "C" NOT NULL,
    action       TEXT COLLATE "C" NOT NULL,
    outcome      TEXT COLLATE "C" NOT NULL,
    patient_bsn  TEXT COLLATE "C",
    user_uzi     TEXT COLLATE "C",
    user_ura     TEXT COLLATE "C",
    -- The resource types of the entry's objects, space-separated and space-framed
    -- (" Patient Condition "), for entity-type searches with LIKE.
    entity_types TEXT COLLATE "C" NOT NULL,
    content      TEXT COLLATE "C" NOT NULL,
    prev_hash    TEXT COLLATE "C" NOT NULL,
    hash         TEXT COLLATE "C" NOT NULL
);

-- The one secondary index: a patient's entries (access log, AuditEvent?patient=). Searches
-- without a patient (privacy officers) and exports scan in seq order.
CREATE INDEX audit_entries_patient ON audit_entries (patient_bsn, recorded_at);

CREATE TABLE audit_chain_head (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    seq         BIGINT NOT NULL,
    hash        TEXT COLLATE "C" NOT NULL,
    updated_at  TEXT COLLATE "C"
);

INSERT INTO audit_chain_head (id, seq, hash, updated_at)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', NULL);
