-- PostgreSQL version of migrations/sqlite/0019_outbox_queued_event.sql: the history line
-- `queued` of a delivery is written by the database with the outbox row, so queuing a
-- handover is one statement in its transaction instead of two.

CREATE FUNCTION outbox_queued_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox_events (handover_id, at, event) VALUES (NEW.handover_id, NEW.created_at, 'queued');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_queued_event
AFTER INSERT ON outbox
FOR EACH ROW EXECUTE FUNCTION outbox_queued_event();
