-- The facade's primary key starts with the resource (type, id) instead of the holder, so
-- that it also serves the lookup of a resource id across holders and patients (the guard
-- that a patient-bound id is never written for another patient), and the separate index
-- `facade_resources_id` on (resource_type, resource_id) goes.
--
-- Why: resource ids are UUIDs, so every new resource is inserted at a random place of each
-- index that holds its id. With the key and `facade_resources_id` both led by it, a new
-- patient's 21 resources dirtied about 42 random index pages per handover, each written to
-- the WAL and copied again by the checkpoint. Measured with bench/handover_load.sh's
-- generator sending a new patient every time (README, Load): the bytes written per
-- handover fell by about 30 %.
--
-- The key's columns are the same, so what is unique is unchanged (and the upserts'
-- `ON CONFLICT (holder_ura, resource_type, resource_id, patient_bsn)` still names it).
-- SQLite cannot change a primary key in place, so the table is rebuilt (as in 0011).
CREATE TABLE facade_resources_v3 (
    holder_ura           TEXT NOT NULL,
    resource_type        TEXT NOT NULL,
    resource_id          TEXT NOT NULL,
    patient_bsn          TEXT NOT NULL,
    patient_resource_id  TEXT,
    category             TEXT NOT NULL,
    handover_id          TEXT NOT NULL REFERENCES handovers (id),
    updated_at           TEXT NOT NULL,
    resource             TEXT NOT NULL,
    PRIMARY KEY (resource_type, resource_id, holder_ura, patient_bsn)
);

INSERT INTO facade_resources_v3 (holder_ura, resource_type, resource_id, patient_bsn, patient_resource_id,
    category, handover_id, updated_at, resource)
SELECT holder_ura, resource_type, resource_id, patient_bsn, patient_resource_id, category, handover_id,
    updated_at, resource
FROM facade_resources;

DROP TABLE facade_resources;
ALTER TABLE facade_resources_v3 RENAME TO facade_resources;

CREATE INDEX facade_resources_patient ON facade_resources (patient_resource_id, resource_type);
CREATE INDEX facade_resources_bsn ON facade_resources (patient_bsn, holder_ura);
