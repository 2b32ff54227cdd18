-- PostgreSQL version of migrations/sqlite/0010_agreements_loaded.sql: the same tables; every TEXT column
-- collates "C" (byte order, as SQLite compares: RFC 3339 times, ids and codes sort as text).

-- The data-transfer agreements the service last ran with (issue 7): at every start the
-- loaded agreements are compared with these rows, and each agreement that came into use,
-- changed or was no longer loaded gets an `agreement-change` audit entry, in the same
-- transaction as the update of this table.

CREATE TABLE agreements_loaded (
    agreement_id  TEXT COLLATE "C" NOT NULL,
    version       TEXT COLLATE "C" NOT NULL,
    -- SHA-256 of the agreement as read (canonical JSON).
    sha256        TEXT COLLATE "C" NOT NULL,
    loaded_at     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (agreement_id, version)
);
