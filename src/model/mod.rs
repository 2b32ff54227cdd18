//! The format-neutral handover dossier: one type per zib concept.
//!
//! Sources (`crate::source`) parse their input into a [`Dossier`]; the FHIR stage
//! (`crate::fhir`) turns a dossier into R4 nl-core resources. Nothing in here knows
//! about either format. Every [`Item`] knows its [`DataCategory`], which agreements
//! and access rules work on.
//!
//! Items refer to each other by [`Key`]: the identity the item had in its source
//! (for FHIR sources `Type/id`, for XML sources the element's id). Keys are turned
//! into deterministic resource ids by the FHIR stage.

pub mod category;
pub mod types;

pub use category::{DataCategory, DATA_CATEGORY_SYSTEM};
pub use types::*;

use crate::diagnostics::Outcome;

/// The identity of an item in its source; unique within a dossier.
pub type Key = String;

/// A reference from one item to another, or to something outside the dossier.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ref {
    /// The referenced item, if it is in the dossier (or may be: the FHIR stage checks).
    pub key: Option<Key>,
    pub identifier: Option<Identifier>,
    pub display: Option<String>,
}

impl Ref {
    pub fn to(key: impl Into<Key>) -> Self {
        Ref { key: Some(key.into()), ..Default::default() }
    }
}

/// Everything a source delivered about one patient.
#[derive(Debug, Clone, Default)]
pub struct Dossier {
    pub patient: Option<Patient>,
    pub items: Vec<Item>,
    /// The organisation that produced the record (the sender), if the source says.
    pub author_organization: Option<Identifier>,
    /// What the source could not map (information and warnings, with source paths).
    pub outcome: Outcome,
    /// How much of the source was mapped.
    pub coverage: Coverage,
    /// The message the record came in (HL7v3 message id and creation time), where the source
    /// identifies it: the output Bundle's identifier and timestamp.
    pub message: Option<SourceMessage>,
}

/// The message or document a record came in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceMessage {
    pub identifier: Option<Identifier>,
    pub created: Option<When>,
}

/// How much of a source record was mapped: its elements (primitive values, attributes,
/// texts) and how many of them were left unmapped (and reported).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    pub source_elements: usize,
    pub unmapped_elements: usize,
}

impl Coverage {
    pub fn mapped_elements(&self) -> usize {
        self.source_elements.saturating_sub(self.unmapped_elements)
    }
    /// The share of source elements mapped (1.0 for an empty record).
    pub fn share(&self) -> f64 {
        if self.source_elements == 0 {
            1.0
        } else {
            self.mapped_elements() as f64 / self.source_elements as f64
        }
    }
    pub fn add(&mut self, other: Coverage) {
        self.source_elements += other.source_elements;
        self.unmapped_elements += other.unmapped_elements;
    }
}

/// One zib concept instance from the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    /// Where the item was in the source (FHIRPath or XPath), for messages.
    pub source_path: String,
    pub concept: ItemConcept,
}

impl Item {
    pub fn category(&self) -> DataCategory {
        self.concept.category()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    Male,
    Female,
    Other,
    Unknown,
}

impl Gender {
    pub fn fhir_code(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Other => "other",
            Gender::Unknown => "unknown",
        }
    }
    pub fn from_fhir(s: &str) -> Option<Gender> {
        Some(match s {
            "male" => Gender::Male,
            "female" => Gender::Female,
            "other" => Gender::Other,
            "unknown" => Gender::Unknown,
            _ => return None,
        })
    }
}

/// zib Patient.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Patient {
    pub key: Key,
    pub source_path: String,
    pub bsn: Option<Bsn>,
    /// Other identifiers (practice patient numbers and such).
    pub identifiers: Vec<Identifier>,
    pub names: Vec<HumanName>,
    pub gender: Option<Gender>,
    /// The zib gender code (v3 AdministrativeGender M/F/UN/UNK).
    pub gender_code: Option<Coding>,
    pub birth_date: Option<When>,
    pub deceased: Option<bool>,
    pub deceased_at: Option<When>,
    pub addresses: Vec<Address>,
    pub telecoms: Vec<Telecom>,
    pub marital_status: Option<Concept>,
    pub languages: Vec<Concept>,
    pub multiple_birth: Option<bool>,
    pub general_practitioner: Vec<Ref>,
    pub managing_organization: Option<Ref>,
    /// A Patient that arrived as FHIR R4: passed on as it is (like other R4 resources), so
    /// that nothing nl-core carries is lost; the fields above still drive identity.
    pub r4: Option<serde_json::Value>,
    /// Where the patient was born (R4 extension patient-birthPlace).
    pub birth_place: Option<Address>,
    /// Whether the patient's record is in active use.
    pub active: Option<bool>,
    /// The sex to use in clinical decisions where the source distinguishes it from the
    /// administrative gender (R5 patient-sexParameterForClinicalUse, usable in R4).
    pub sex_for_clinical_use: Option<Concept>,
}

/// zib HealthProfessional, the person (Practitioner).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthProfessional {
    pub identifiers: Vec<Identifier>,
    pub names: Vec<HumanName>,
    pub gender: Option<Gender>,
    pub telecoms: Vec<Telecom>,
    pub addresses: Vec<Address>,
    pub birth_date: Option<When>,
    /// Qualifications (BIG registration, specialist registration, ...).
    pub qualifications: Vec<Qualification>,
}

/// A practitioner's qualification (Practitioner.qualification).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Qualification {
    pub identifiers: Vec<Identifier>,
    pub code: Concept,
    pub period: Period,
    pub issuer: Option<Ref>,
}

/// zib HealthProfessional, the role in an organisation (PractitionerRole).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfessionalRole {
    pub identifiers: Vec<Identifier>,
    pub practitioner: Option<Ref>,
    pub organization: Option<Ref>,
    /// Specialty (Vektis COD016) and/or UZI role code.
    pub specialties: Vec<Concept>,
    pub roles: Vec<Concept>,
    pub telecoms: Vec<Telecom>,
}

/// zib HealthcareProvider (Organization).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthcareProvider {
    pub identifiers: Vec<Identifier>,
    pub name: Option<String>,
    pub types: Vec<Concept>,
    pub telecoms: Vec<Telecom>,
    pub addresses: Vec<Address>,
    pub part_of: Option<Ref>,
}

/// zib ContactPerson (RelatedPerson).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactPerson {
    pub identifiers: Vec<Identifier>,
    pub names: Vec<HumanName>,
    /// Role (zib ContactPerson.Role, e.g. "eerste contactpersoon", "wettelijk vertegenwoordiger").
    pub roles: Vec<Concept>,
    /// Relationship (v3 RoleCode, e.g. MTH, DAU).
    pub relationships: Vec<Concept>,
    pub telecoms: Vec<Telecom>,
    pub addresses: Vec<Address>,
    pub gender: Option<Gender>,
}

/// zib Problem (Condition).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Problem {
    pub identifiers: Vec<Identifier>,
    pub code: Concept,
    /// Problem type (SNOMED: diagnosis, symptom, complaint, ...).
    pub problem_type: Option<Concept>,
    /// FHIR condition clinical status code (active, inactive, resolved, ...).
    pub clinical_status: Option<String>,
    pub verification_status: Option<String>,
    pub onset: Option<When>,
    pub abatement: Option<When>,
    pub body_site: Vec<Concept>,
    pub recorded: Option<When>,
    pub asserter: Option<Ref>,
    pub notes: Vec<String>,
    pub episode: Option<Ref>,
}

/// zib EpisodeOfCare / the GP episode (episode of care with an ICPC title).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Episode {
    pub identifiers: Vec<Identifier>,
    pub title: Option<String>,
    /// The episode's own code (ICPC) where the source codes the episode itself.
    pub code: Option<Concept>,
    /// FHIR episode status (active, finished, ...).
    pub status: Option<String>,
    pub period: Period,
    /// The GP's "attention" flag (aandachtspunt).
    pub attention: Option<bool>,
    pub diagnoses: Vec<Ref>,
    pub care_manager: Option<Ref>,
    pub organization: Option<Ref>,
    pub notes: Vec<String>,
    /// Dates of the first and last encounter in the episode (zib EpisodeOfCare).
    pub first_encounter: Option<When>,
    pub last_encounter: Option<When>,
}

/// zib Encounter (a contact).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Contact {
    pub identifiers: Vec<Identifier>,
    /// Encounter class (v3 ActCode: AMB, HH, VR, ...).
    pub class: Option<Coding>,
    /// Contact type (NHG table 14 contactwijze, ...).
    pub types: Vec<Concept>,
    pub status: Option<String>,
    pub period: Period,
    pub participants: Vec<Ref>,
    pub reasons: Vec<Concept>,
    pub episodes: Vec<Ref>,
    pub service_provider: Option<Ref>,
    /// The problems diagnosed or treated in this contact (Encounter.diagnosis).
    pub diagnoses: Vec<ContactDiagnosis>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactDiagnosis {
    pub condition: Ref,
    /// The diagnosis's role in the contact (admission, discharge, ...).
    pub use_: Option<Concept>,
    pub rank: Option<i64>,
}

/// The four kinds of SOAP line (zib SOAPReport). The codes they get in FHIR come from the
/// ConceptMap in mappings/, not from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SoapKind {
    Subjective,
    Objective,
    Evaluation,
    Plan,
}

impl SoapKind {
    /// The letter NHG and the MedMij GP profiles use (S, O, E, P).
    pub fn letter(self) -> &'static str {
        match self {
            SoapKind::Subjective => "S",
            SoapKind::Objective => "O",
            SoapKind::Evaluation => "E",
            SoapKind::Plan => "P",
        }
    }
    pub fn from_letter(s: &str) -> Option<SoapKind> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "S" => SoapKind::Subjective,
            "O" => SoapKind::Objective,
            "E" | "A" => SoapKind::Evaluation,
            "P" => SoapKind::Plan,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SoapLine {
    pub kind: SoapKind,
    /// The line's code (ICPC on an E line), if any.
    pub code: Option<Concept>,
    pub text: String,
    /// The line's own identifiers (the source's journal-line ids).
    pub identifiers: Vec<Identifier>,
}

/// zib SOAPReport: one journal entry of a contact, with its S/O/E/P lines.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JournalEntry {
    pub identifiers: Vec<Identifier>,
    pub date: Option<When>,
    pub title: Option<String>,
    pub author: Option<Ref>,
    pub encounter: Option<Ref>,
    pub episode: Option<Ref>,
    pub lines: Vec<SoapLine>,
}

/// Which zib an observation is; decides its profile and its data category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObservationKind {
    LaboratoryTestResult,
    BloodPressure,
    BodyWeight,
    BodyHeight,
    HeadCircumference,
    BodyTemperature,
    HeartRate,
    O2Saturation,
    AlcoholUse,
    TobaccoUse,
    DrugUse,
    LivingSituation,
    FunctionalOrMentalStatus,
    DevelopmentChild,
    /// zib TextResult: a result reported as text, such as an imaging report (a CT, an X-ray);
    /// nl-core puts it in a DiagnosticReport, not in an Observation.
    TextResult,
}

impl ObservationKind {
    pub const ALL: &'static [ObservationKind] = &[
        ObservationKind::LaboratoryTestResult,
        ObservationKind::BloodPressure,
        ObservationKind::BodyWeight,
        ObservationKind::BodyHeight,
        ObservationKind::HeadCircumference,
        ObservationKind::BodyTemperature,
        ObservationKind::HeartRate,
        ObservationKind::O2Saturation,
        ObservationKind::AlcoholUse,
        ObservationKind::TobaccoUse,
        ObservationKind::DrugUse,
        ObservationKind::LivingSituation,
        ObservationKind::FunctionalOrMentalStatus,
        ObservationKind::DevelopmentChild,
        ObservationKind::TextResult,
    ];

    /// The zib name, as used in nl-core profile names and in mappings/.
    pub fn zib(self) -> &'static str {
        match self {
            ObservationKind::LaboratoryTestResult => "LaboratoryTestResult",
            ObservationKind::BloodPressure => "BloodPressure",
            ObservationKind::BodyWeight => "BodyWeight",
            ObservationKind::BodyHeight => "BodyHeight",
            ObservationKind::HeadCircumference => "HeadCircumference",
            ObservationKind::BodyTemperature => "BodyTemperature",
            ObservationKind::HeartRate => "HeartRate",
            ObservationKind::O2Saturation => "O2Saturation",
            ObservationKind::AlcoholUse => "AlcoholUse",
            ObservationKind::TobaccoUse => "TobaccoUse",
            ObservationKind::DrugUse => "DrugUse",
            ObservationKind::LivingSituation => "LivingSituation",
            ObservationKind::FunctionalOrMentalStatus => "FunctionalOrMentalStatus",
            ObservationKind::DevelopmentChild => "DevelopmentChild",
            ObservationKind::TextResult => "TextResult",
        }
    }

    pub fn from_zib(s: &str) -> Option<ObservationKind> {
        ObservationKind::ALL.iter().copied().find(|k| k.zib() == s)
    }

    pub fn category(self) -> DataCategory {
        use ObservationKind::*;
        match self {
            LaboratoryTestResult | TextResult => DataCategory::LabResults,
            BloodPressure | BodyWeight | BodyHeight | HeadCircumference | BodyTemperature | HeartRate
            | O2Saturation => DataCategory::VitalSigns,
            AlcoholUse | TobaccoUse | DrugUse => DataCategory::Lifestyle,
            LivingSituation => DataCategory::LivingSituation,
            FunctionalOrMentalStatus | DevelopmentChild => DataCategory::FunctionalStatus,
        }
    }
}

/// The value of an observation or component.
#[derive(Debug, Clone, PartialEq)]
pub enum ObsValue {
    Quantity(Quantity),
    Concept(Concept),
    Text(String),
    Boolean(bool),
    Integer(i64),
    DateTime(When),
    Period(Period),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReferenceRange {
    pub low: Option<Quantity>,
    pub high: Option<Quantity>,
    pub type_: Option<Concept>,
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub code: Concept,
    pub value: Option<ObsValue>,
    pub interpretation: Vec<Concept>,
}

/// An observation: laboratory result, text result (imaging), vital sign, lifestyle, living
/// situation, functional status.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub kind: ObservationKind,
    pub identifiers: Vec<Identifier>,
    pub code: Concept,
    /// FHIR observation status (final, preliminary, ...).
    pub status: Option<String>,
    pub effective: Option<When>,
    pub effective_period: Option<Period>,
    pub issued: Option<When>,
    pub value: Option<ObsValue>,
    pub interpretation: Vec<Concept>,
    pub reference_ranges: Vec<ReferenceRange>,
    pub components: Vec<Component>,
    pub method: Option<Concept>,
    pub body_site: Option<Concept>,
    pub performers: Vec<Ref>,
    pub encounter: Option<Ref>,
    pub episode: Option<Ref>,
    pub notes: Vec<String>,
    /// Why there is no value (FHIR data-absent-reason code, e.g. from an HL7v3 nullFlavor).
    pub data_absent: Option<String>,
}

/// The FHIR data-absent-reason code for an HL7v3 nullFlavor.
pub fn data_absent_reason(null_flavor: &str) -> &'static str {
    match null_flavor {
        "ASKU" => "asked-unknown",
        "NAV" => "temp-unknown",
        "NASK" => "not-asked",
        "MSK" => "masked",
        "NA" => "not-applicable",
        "NINF" => "negative-infinity",
        "PINF" => "positive-infinity",
        "OTH" => "unsupported",
        "NAN" => "not-a-number",
        // NI, UNK, NP and anything else: no information
        _ => "unknown",
    }
}

impl Observation {
    pub fn new(kind: ObservationKind, code: Concept) -> Self {
        Observation {
            kind,
            identifiers: vec![],
            code,
            status: None,
            effective: None,
            effective_period: None,
            issued: None,
            value: None,
            interpretation: vec![],
            reference_ranges: vec![],
            components: vec![],
            method: None,
            body_site: None,
            performers: vec![],
            encounter: None,
            episode: None,
            notes: vec![],
            data_absent: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reaction {
    pub substance: Option<Concept>,
    pub manifestations: Vec<Concept>,
    pub severity: Option<String>,
    pub description: Option<String>,
    pub onset: Option<When>,
    pub route: Option<Concept>,
}

/// zib AllergyIntolerance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Allergy {
    pub identifiers: Vec<Identifier>,
    pub code: Concept,
    /// FHIR allergy categories (food, medication, environment, biologic).
    pub categories: Vec<String>,
    /// The zib category code (SNOMED) where the source gives one.
    pub category_codes: Vec<Coding>,
    pub type_: Option<String>,
    pub criticality: Option<String>,
    pub clinical_status: Option<String>,
    pub verification_status: Option<String>,
    pub onset: Option<When>,
    pub recorded: Option<When>,
    pub recorder: Option<Ref>,
    pub asserter: Option<Ref>,
    pub reactions: Vec<Reaction>,
    pub notes: Vec<String>,
}

/// zib Alert (Flag), including medication contra-indications.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Alert {
    pub identifiers: Vec<Identifier>,
    pub code: Concept,
    pub category: Option<Concept>,
    /// FHIR flag status (active, inactive, entered-in-error).
    pub status: Option<String>,
    pub period: Period,
    pub author: Option<Ref>,
    /// The condition or episode the alert is about (flag-detail).
    pub detail: Option<Ref>,
    pub notes: Vec<String>,
}

/// zib PharmaceuticalProduct (Medication).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Product {
    pub code: Concept,
    pub form: Option<Concept>,
    pub description: Option<String>,
    pub ingredients: Vec<Ingredient>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ingredient {
    pub item: Concept,
    pub strength_text: Option<String>,
}

/// What a medication agreement or use is about: a product in the dossier, or a code.
#[derive(Debug, Clone, PartialEq)]
pub enum MedicationRef {
    Product(Ref),
    Code(Concept),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dosage {
    /// The period the instruction applies to (timing.repeat.boundsPeriod), where the source
    /// gives it with the dosage rather than as the period of use.
    pub bounds: Option<Period>,
    pub sequence: Option<i64>,
    pub text: Option<String>,
    pub additional_instructions: Vec<Concept>,
    pub as_needed: Option<bool>,
    pub as_needed_for: Option<Concept>,
    pub route: Option<Concept>,
    pub dose: Option<Quantity>,
    /// Repeat pattern as the source wrote it (frequency/period/unit), when structured.
    pub frequency: Option<u32>,
    pub period: Option<Decimal>,
    pub period_unit: Option<String>,
}

/// MP9 MedicationAgreement (MedicationRequest).
#[derive(Debug, Clone, PartialEq)]
pub struct MedicationAgreement {
    pub identifiers: Vec<Identifier>,
    pub medication: MedicationRef,
    pub authored_on: Option<When>,
    pub period_of_use: Period,
    pub duration: Option<Quantity>,
    pub dosages: Vec<Dosage>,
    pub prescriber: Option<Ref>,
    /// Reasons given as text or code (MP9 reason for prescribing).
    pub reasons: Vec<Concept>,
    pub status: Option<String>,
    pub stopped: Option<bool>,
    pub encounter: Option<Ref>,
    pub notes: Vec<String>,
    /// Who recorded the agreement (when not the prescriber).
    pub recorder: Option<Ref>,
    /// The dispense request that came with the prescription.
    pub dispense: Option<Box<DispenseRequest>>,
    /// The MP9 pharmaceutical treatment (medicamenteuze behandeling) the agreement belongs to,
    /// where the source identifies it (STU3 zib-Medication-MedicationTreatment).
    pub treatment: Option<Identifier>,
}

/// MedicationRequest.dispenseRequest: how much, how often, for how long.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DispenseRequest {
    pub validity: Period,
    pub repeats: Option<i64>,
    pub quantity: Option<Quantity>,
    pub expected_duration: Option<Quantity>,
    pub performer: Option<Ref>,
}

/// MP9 MedicationUse (MedicationStatement).
#[derive(Debug, Clone, PartialEq)]
pub struct MedicationUse {
    pub identifiers: Vec<Identifier>,
    pub medication: MedicationRef,
    pub status: Option<String>,
    pub asserted: Option<When>,
    pub period_of_use: Period,
    pub duration: Option<Quantity>,
    pub use_indicator: Option<bool>,
    pub dosages: Vec<Dosage>,
    pub informant: Option<Ref>,
    pub reasons: Vec<Concept>,
    pub notes: Vec<String>,
}

/// zib Vaccination (Immunization).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Vaccination {
    pub identifiers: Vec<Identifier>,
    pub vaccine: Concept,
    /// FHIR immunization status (completed, not-done, entered-in-error).
    pub status: Option<String>,
    pub date: Option<When>,
    pub performer: Option<Ref>,
    pub dose: Option<Quantity>,
    pub lot_number: Option<String>,
    pub primary_source: Option<bool>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verification {
    pub verified: Option<bool>,
    pub with: Option<Concept>,
    pub date: Option<When>,
}

/// zib TreatmentDirective (Consent): whether a treatment is wanted (e.g. no resuscitation).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TreatmentDirective {
    pub identifiers: Vec<Identifier>,
    pub treatment: Concept,
    /// JA / NEE / JA_MAAR (zib TreatmentPermitted).
    pub permitted: Option<Concept>,
    pub restrictions: Option<String>,
    pub status: Option<String>,
    pub period: Period,
    pub date: Option<When>,
    pub verification: Option<Verification>,
    pub comment: Option<String>,
    /// Exceptions to the directive (e.g. "no resuscitation" inside a directive about
    /// admission): they change its meaning, so they are carried as nested provisions.
    pub exceptions: Vec<DirectiveException>,
}

/// An exception to a treatment directive (STU3 Consent.except → R4 Consent.provision.provision).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DirectiveException {
    /// `permit` or `deny`.
    pub type_: Option<String>,
    pub period: Period,
    pub codes: Vec<Concept>,
    pub actions: Vec<Concept>,
}

/// zib AdvanceDirective (Consent): a written living will.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdvanceDirective {
    pub identifiers: Vec<Identifier>,
    /// The type of living will (e.g. NRB: niet-reanimerenbeschikking).
    pub directive_type: Option<Concept>,
    pub status: Option<String>,
    pub date: Option<When>,
    pub disorder: Option<Ref>,
    pub representative: Option<Ref>,
    pub comment: Option<String>,
}

/// Which part of zib LegalSituation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegalKind {
    /// Legal status (e.g. a care authorisation under the Wzd/Wvggz).
    LegalStatus,
    /// Representation (mentorschap, curatele, beschermingsbewind).
    Representation,
}

/// zib LegalSituation (Condition).
#[derive(Debug, Clone, PartialEq)]
pub struct LegalSituation {
    pub kind: LegalKind,
    pub identifiers: Vec<Identifier>,
    pub code: Concept,
    pub period: Period,
    /// The representative (a ContactPerson in the dossier).
    pub representative: Option<Ref>,
    pub notes: Vec<String>,
}

/// A referral: why the patient is handed over, and to what kind of care.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Referral {
    pub identifiers: Vec<Identifier>,
    /// The referral question.
    pub question: Option<String>,
    /// Requested care (e.g. GZSP individual care by an AVG), coded or as text.
    pub requested_care: Option<Concept>,
    pub reasons: Vec<Concept>,
    pub authored_on: Option<When>,
    pub requester: Option<Ref>,
    pub performer: Option<Ref>,
    pub status: Option<String>,
    pub notes: Vec<String>,
}

/// A document (letter, report) that the source referred to or contained.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    pub identifiers: Vec<Identifier>,
    pub type_: Option<Concept>,
    pub status: Option<String>,
    pub description: Option<String>,
    pub date: Option<When>,
    pub authors: Vec<Ref>,
    pub content_type: Option<String>,
    pub url: Option<String>,
    pub title: Option<String>,
    pub language: Option<String>,
    /// Inline document content, base64 as in FHIR Attachment.data.
    pub data: Option<String>,
    pub encounter: Option<Ref>,
    pub related: Vec<Ref>,
}

/// A resource that already arrived as FHIR R4 in a profile we pass on as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct R4Resource {
    pub resource: serde_json::Value,
    pub category: DataCategory,
}

/// Every concept the model knows, one variant per zib concept. (Named `ItemConcept` so as
/// not to clash with a coded [`types::Concept`].)
#[derive(Debug, Clone, PartialEq)]
pub enum ItemConcept {
    HealthProfessional(HealthProfessional),
    ProfessionalRole(ProfessionalRole),
    HealthcareProvider(HealthcareProvider),
    ContactPerson(ContactPerson),
    Problem(Problem),
    Episode(Episode),
    Contact(Contact),
    JournalEntry(JournalEntry),
    Observation(Observation),
    Allergy(Allergy),
    Alert(Alert),
    Product(Product),
    MedicationAgreement(MedicationAgreement),
    MedicationUse(MedicationUse),
    Vaccination(Vaccination),
    TreatmentDirective(TreatmentDirective),
    AdvanceDirective(AdvanceDirective),
    LegalSituation(LegalSituation),
    Referral(Referral),
    Document(Document),
    R4(R4Resource),
}

impl ItemConcept {
    /// The data category of this concept.
    pub fn category(&self) -> DataCategory {
        use ItemConcept::*;
        match self {
            HealthProfessional(_) | ProfessionalRole(_) | HealthcareProvider(_) => DataCategory::CareProviders,
            ContactPerson(_) => DataCategory::ContactPersons,
            Problem(_) => DataCategory::Problems,
            Episode(_) => DataCategory::Episodes,
            Contact(_) | JournalEntry(_) => DataCategory::Journal,
            Observation(o) => o.kind.category(),
            Allergy(_) => DataCategory::Allergies,
            Alert(_) => DataCategory::Alerts,
            Product(_) | MedicationAgreement(_) | MedicationUse(_) => DataCategory::Medication,
            Vaccination(_) => DataCategory::Vaccinations,
            TreatmentDirective(_) | AdvanceDirective(_) => DataCategory::Directives,
            LegalSituation(_) => DataCategory::LegalSituation,
            Referral(_) => DataCategory::Referral,
            Document(_) => DataCategory::Documents,
            R4(r) => r.category,
        }
    }

    /// The zib (or other) concept name, for summaries and messages.
    pub fn name(&self) -> &'static str {
        use ItemConcept::*;
        match self {
            HealthProfessional(_) => "HealthProfessional",
            ProfessionalRole(_) => "HealthProfessionalRole",
            HealthcareProvider(_) => "HealthcareProvider",
            ContactPerson(_) => "ContactPerson",
            Problem(_) => "Problem",
            Episode(_) => "EpisodeOfCare",
            Contact(_) => "Encounter",
            JournalEntry(_) => "SOAPReport",
            Observation(o) => o.kind.zib(),
            Allergy(_) => "AllergyIntolerance",
            Alert(_) => "Alert",
            Product(_) => "PharmaceuticalProduct",
            MedicationAgreement(_) => "MedicationAgreement",
            MedicationUse(_) => "MedicationUse",
            Vaccination(_) => "Vaccination",
            TreatmentDirective(_) => "TreatmentDirective",
            AdvanceDirective(_) => "AdvanceDirective",
            LegalSituation(l) => match l.kind {
                LegalKind::LegalStatus => "LegalSituation-LegalStatus",
                LegalKind::Representation => "LegalSituation-Representation",
            },
            Referral(_) => "Referral",
            Document(_) => "Document",
            R4(_) => "R4Resource",
        }
    }
}
