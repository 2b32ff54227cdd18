-- The audit trail guards itself (issue 7), so that appending is one statement.
--
-- 1. An entry is only accepted if it extends the chain head: its seq is the head's seq + 1
--    and its prev_hash the head's hash. A writer that computed its entry from an old head
--    gets the error 'audit chain head moved' and tries again from the new head; the chain
--    stays linear without a separate lock statement.
-- 2. The head row follows every accepted entry in the same statement.
-- 3. Entries are append-only: UPDATE and DELETE are refused.
--
-- These are guards against mistakes and against other programs that write through the
-- normal SQL interface, not tamper protection: whoever can drop a trigger can change rows.
-- The hash chain (verify) and an anchored head hash catch that.
--
-- SQLite trigger syntax; PostgreSQL gets the same rules as a PL/pgSQL trigger function.

CREATE TRIGGER audit_entries_extend_head
BEFORE INSERT ON audit_entries
WHEN NEW.seq IS NOT (SELECT seq + 1 FROM audit_chain_head WHERE id = 1)
  OR NEW.prev_hash IS NOT (SELECT hash FROM audit_chain_head WHERE id = 1)
BEGIN
    SELECT RAISE(ABORT, 'audit chain head moved');
END;

CREATE TRIGGER audit_entries_move_head
AFTER INSERT ON audit_entries
BEGIN
    UPDATE audit_chain_head SET seq = NEW.seq, hash = NEW.hash, updated_at = NEW.recorded_at WHERE id = 1;
END;

CREATE TRIGGER audit_entries_no_update
BEFORE UPDATE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;

CREATE TRIGGER audit_entries_no_delete
BEFORE DELETE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;
