-- Resource identity per patient (the id scheme is described in src/fhir/ids.rs).
--
-- Organizations, Practitioners and Medications with their own identifiers are shared by
-- several patients' records, so the facade holds one copy of such a resource per patient
-- (each read is decided for that patient). Every other resource is bound to one patient:
-- the store refuses to write its id for another patient (Tx::upsert_facade_resource).
-- SQLite cannot change a primary key in place, so the table is rebuilt.
CREATE TABLE facade_resources_v2 (
    holder_ura           TEXT NOT NULL,
    resource_type        TEXT NOT NULL,
    resource_id          TEXT NOT NULL,
    patient_bsn          TEXT NOT NULL,
    patient_resource_id  TEXT,
    category             TEXT NOT NULL,
    handover_id          TEXT NOT NULL REFERENCES handovers (id),
    updated_at           TEXT NOT NULL,
    resource             TEXT NOT NULL,
    PRIMARY KEY (holder_ura, resource_type, resource_id, patient_bsn)
);

INSERT INTO facade_resources_v2 (holder_ura, resource_type, resource_id, patient_bsn, patient_resource_id,
    category, handover_id, updated_at, resource)
SELECT holder_ura, resource_type, resource_id, patient_bsn, patient_resource_id, category, handover_id,
    updated_at, resource
FROM facade_resources;

DROP TABLE facade_resources;
ALTER TABLE facade_resources_v2 RENAME TO facade_resources;

CREATE INDEX facade_resources_id ON facade_resources (resource_type, resource_id);
CREATE INDEX facade_resources_patient ON facade_resources (patient_resource_id, resource_type);
CREATE INDEX facade_resources_bsn ON facade_resources (patient_bsn, holder_ura);
