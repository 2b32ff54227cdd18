-- PostgreSQL version of migrations/sqlite/0011_patient_bound_ids.sql: shared resources
-- (Organizations, Practitioners, Medications with their own identifiers) are held once per
-- patient, so the patient is part of the facade's key. PostgreSQL changes the key in place
-- (SQLite rebuilds the table). The guard that a patient-bound id is never written for
-- another patient is part of the facade insert itself (Tx::put_facade_resources).
ALTER TABLE facade_resources DROP CONSTRAINT facade_resources_pkey;
ALTER TABLE facade_resources ADD PRIMARY KEY (holder_ura, resource_type, resource_id, patient_bsn);
