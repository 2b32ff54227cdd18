-- The history line `queued` of a delivery is written by the database with the outbox row:
-- queuing a handover is one statement in its transaction instead of two.

CREATE TRIGGER outbox_queued_event
AFTER INSERT ON outbox
BEGIN
    INSERT INTO outbox_events (handover_id, at, event) VALUES (NEW.handover_id, NEW.created_at, 'queued');
END;
