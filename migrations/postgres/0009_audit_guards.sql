-- PostgreSQL version of migrations/sqlite/0009_audit_guards.sql: the audit trail guards
-- itself, so that appending is one statement, now across every instance sharing the
-- database.
--
-- 1. An entry is only accepted if it extends the chain head: its seq is the head's seq + 1
--    and its prev_hash the head's hash. The head row is read under its row lock (FOR
--    UPDATE), held until the inserting transaction ends: a concurrent writer (another
--    instance, another connection) waits for it and then sees the moved head, so it gets
--    'audit chain head moved' and rebuilds its entry on the new head. The chain stays
--    linear and gap-free without a separate lock statement.
-- 2. The head row follows every accepted entry in the same statement.
-- 3. Entries are append-only: UPDATE, DELETE and TRUNCATE are refused.
--
-- As on SQLite these are guards against mistakes and against other programs that write
-- through the normal SQL interface, not tamper protection (whoever can drop a trigger can
-- change rows): the hash chain (verify) and an anchored head hash catch that. Grant the
-- service's role INSERT and SELECT only on audit_entries.

CREATE FUNCTION audit_entries_extend_head() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head_seq  BIGINT;
    head_hash TEXT;
BEGIN
    SELECT seq, hash INTO head_seq, head_hash FROM audit_chain_head WHERE id = 1 FOR UPDATE;
    IF NEW.seq IS DISTINCT FROM head_seq + 1 OR NEW.prev_hash IS DISTINCT FROM head_hash THEN
        RAISE EXCEPTION 'audit chain head moved';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_entries_extend_head
BEFORE INSERT ON audit_entries
FOR EACH ROW EXECUTE FUNCTION audit_entries_extend_head();

CREATE FUNCTION audit_entries_move_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE audit_chain_head SET seq = NEW.seq, hash = NEW.hash, updated_at = NEW.recorded_at WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_entries_move_head
AFTER INSERT ON audit_entries
FOR EACH ROW EXECUTE FUNCTION audit_entries_move_head();

CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only';
END
$$;

CREATE TRIGGER audit_entries_no_update
BEFORE UPDATE ON audit_entries
FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only();

CREATE TRIGGER audit_entries_no_delete
BEFORE DELETE ON audit_entries
FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only();

CREATE TRIGGER audit_entries_no_truncate
BEFORE TRUNCATE ON audit_entries
FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only();
