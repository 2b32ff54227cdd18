-- PostgreSQL version of migrations/sqlite/0003_access.sql: the same tables; every TEXT column
-- collates "C" (byte order, as SQLite compares: RFC 3339 times, ids and codes sort as text).

-- Issue 6: agreements recorded with handovers, the FHIR read facade's index, care teams and
-- patient consents. Portable SQL (SQLite and PostgreSQL), as 0001.

-- The agreements (id@version) under which a handover was accepted. Access decisions for a
-- patient use the agreements under which *this patient's* data arrived, not every agreement
-- the provider has signed.
CREATE TABLE handover_agreements (
    handover_id        TEXT COLLATE "C" NOT NULL REFERENCES handovers (id),
    agreement_id       TEXT COLLATE "C" NOT NULL,
    agreement_version  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (handover_id, agreement_id, agreement_version)
);

-- Every resource a handover stored, as the read facade serves it (references rewritten to
-- Type/id), with what the policy needs to filter without parsing it: the holder (the
-- receiving GZSP provider), the patient and the data category. The same record sent again
-- overwrites its resources (deterministic ids); the same record sent to another provider is
-- held separately.
CREATE TABLE facade_resources (
    holder_ura           TEXT COLLATE "C" NOT NULL,
    resource_type        TEXT COLLATE "C" NOT NULL,
    resource_id          TEXT COLLATE "C" NOT NULL,
    patient_bsn          TEXT COLLATE "C" NOT NULL,
    patient_resource_id  TEXT COLLATE "C",
    category             TEXT COLLATE "C" NOT NULL,
    handover_id          TEXT COLLATE "C" NOT NULL REFERENCES handovers (id),
    updated_at           TEXT COLLATE "C" NOT NULL,
    resource             TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (holder_ura, resource_type, resource_id)
);

CREATE INDEX facade_resources_id ON facade_resources (resource_type, resource_id);
CREATE INDEX facade_resources_patient ON facade_resources (patient_resource_id, resource_type);
CREATE INDEX facade_resources_bsn ON facade_resources (patient_bsn, holder_ura);

-- Care teams (nl-core-CareTeam), stored only after the GZSP rules accepted them.
CREATE TABLE care_teams (
    id                TEXT COLLATE "C" PRIMARY KEY,
    patient_bsn       TEXT COLLATE "C" NOT NULL,
    organisation_ura  TEXT COLLATE "C" NOT NULL,
    version           BIGINT NOT NULL,
    updated_at        TEXT COLLATE "C" NOT NULL,
    updated_by_uzi    TEXT COLLATE "C" NOT NULL,
    updated_by_ura    TEXT COLLATE "C" NOT NULL,
    resource          TEXT COLLATE "C" NOT NULL
);

CREATE INDEX care_teams_patient ON care_teams (patient_bsn);

-- The patient's objections and explicit consents (FHIR Consent).
CREATE TABLE patient_consents (
    id                TEXT COLLATE "C" PRIMARY KEY,
    patient_bsn       TEXT COLLATE "C" NOT NULL,
    version           BIGINT NOT NULL,
    updated_at        TEXT COLLATE "C" NOT NULL,
    updated_by_uzi    TEXT COLLATE "C" NOT NULL,
    updated_by_ura    TEXT COLLATE "C" NOT NULL,
    resource          TEXT COLLATE "C" NOT NULL
);

CREATE INDEX patient_consents_patient ON patient_consents (patient_bsn);
