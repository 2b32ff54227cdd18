-- Issue 6: agreements recorded with handovers, the FHIR read facade's index, care teams and
-- patient consents. Portable SQL (SQLite and PostgreSQL), as 0001.

-- The agreements (id@version) under which a handover was accepted. Access decisions for a
-- patient use the agreements under which *this patient's* data arrived, not every agreement
-- the provider has signed.
CREATE TABLE handover_agreements (
    handover_id        TEXT NOT NULL REFERENCES handovers (id),
    agreement_id       TEXT NOT NULL,
    agreement_version  TEXT NOT NULL,
    PRIMARY KEY (handover_id, agreement_id, agreement_version)
);

-- Every resource a handover stored, as the read facade serves it (references rewritten to
-- Type/id), with what the policy needs to filter without parsing it: the holder (the
-- receiving GZSP provider), the patient and the data category. The same record sent again
-- overwrites its resources (deterministic ids); the same record sent to another provider is
-- held separately.
CREATE TABLE facade_resources (
    holder_ura           TEXT NOT NULL,
    resource_type        TEXT NOT NULL,
    resource_id          TEXT NOT NULL,
    patient_bsn          TEXT NOT NULL,
    patient_resource_id  TEXT,
    category             TEXT NOT NULL,
    handover_id          TEXT NOT NULL REFERENCES handovers (id),
    updated_at           TEXT NOT NULL,
    resource             TEXT NOT NULL,
    PRIMARY KEY (holder_ura, resource_type, resource_id)
);

CREATE INDEX facade_resources_id ON facade_resources (resource_type, resource_id);
CREATE INDEX facade_resources_patient ON facade_resources (patient_resource_id, resource_type);
CREATE INDEX facade_resources_bsn ON facade_resources (patient_bsn, holder_ura);

-- Care teams (nl-core-CareTeam), stored only after the GZSP rules accepted them.
CREATE TABLE care_teams (
    id                TEXT PRIMARY KEY,
    patient_bsn       TEXT NOT NULL,
    organisation_ura  TEXT NOT NULL,
    version           BIGINT NOT NULL,
    updated_at        TEXT NOT NULL,
    updated_by_uzi    TEXT NOT NULL,
    updated_by_ura    TEXT NOT NULL,
    resource          TEXT NOT NULL
);

CREATE INDEX care_teams_patient ON care_teams (patient_bsn);

-- The patient's objections and explicit consents (FHIR Consent).
CREATE TABLE patient_consents (
    id                TEXT PRIMARY KEY,
    patient_bsn       TEXT NOT NULL,
    version           BIGINT NOT NULL,
    updated_at        TEXT NOT NULL,
    updated_by_uzi    TEXT NOT NULL,
    updated_by_ura    TEXT NOT NULL,
    resource          TEXT NOT NULL
);

CREATE INDEX patient_consents_patient ON patient_consents (patient_bsn);
