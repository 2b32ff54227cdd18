-- PostgreSQL version of migrations/sqlite/0014_handover_source_not_kept.sql: the same tables; every TEXT column
-- collates "C" (byte order, as SQLite compares: RFC 3339 times, ids and codes sort as text).

-- Issue 14: only what was passed on is kept. The original record (source_base64) held the
-- categories an agreement or an objection removed, contrary to "removed before storage".
-- A handover keeps its output Bundle (what was passed on), the SHA-256 and size of the
-- original (the handover id and idempotency rest on the hash) and its format; the bytes
-- of old rows go with the column. (Numbered 0014 to stay clear of parallel migrations.)
--
-- Portable: ALTER TABLE ... DROP COLUMN runs on SQLite >= 3.35 and PostgreSQL. On SQLite
-- the freed pages may keep old bytes until they are reused or the file is vacuumed
-- (`VACUUM` once after upgrading, with the service stopped; see docs/deployment.md).
ALTER TABLE handovers DROP COLUMN source_base64;
