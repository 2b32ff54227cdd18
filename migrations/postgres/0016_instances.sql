-- PostgreSQL only: what several instances sharing the database need.

-- The access generation: moved by the database in the same transaction as every change to
-- what access decisions read (care teams, consents, the agreements a handover arrived
-- under). An instance reads it (one indexed row) before it uses its cached access facts,
-- so a change made through one instance takes effect on every instance at once. The bump
-- runs at commit (deferred), so concurrent handovers hold the row's lock only while they
-- commit.
CREATE TABLE access_generation (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    generation  BIGINT NOT NULL
);

INSERT INTO access_generation (id, generation) VALUES (1, 0);

CREATE FUNCTION access_generation_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE access_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER care_teams_access_generation
AFTER INSERT OR UPDATE OR DELETE ON care_teams DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION access_generation_bump();

CREATE CONSTRAINT TRIGGER patient_consents_access_generation
AFTER INSERT OR UPDATE OR DELETE ON patient_consents DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION access_generation_bump();

CREATE CONSTRAINT TRIGGER handover_agreements_access_generation
AFTER INSERT OR UPDATE OR DELETE ON handover_agreements DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION access_generation_bump();

-- A text as JSON, or NULL when it is not JSON (the report and the audit search read fields
-- of the canonical entry content; one malformed, tampered row must not fail the query).
CREATE FUNCTION overdracht_jsonb(t TEXT) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    RETURN t::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;
