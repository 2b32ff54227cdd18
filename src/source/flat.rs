//! The flat JSON dossier (for systems without FHIR) → model.
//!
//! The format is described by `profiles/flat-dossier.schema.json`, which is the
//! contract: input is checked against it first (with the `jsonschema` crate) and every
//! violation is reported with its JSON pointer. Unknown members are violations, so the
//! flat format is lossless by construction: what passes the schema is mapped.

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use super::SourceError;
use crate::diagnostics::{Issue, IssueCode, Outcome};
use crate::model::*;
use crate::terminology::{uri, Terminology};

/// The JSON Schema of the flat dossier, as published in profiles/.
pub const SCHEMA: &str = include_str!("../../profiles/flat-dossier.schema.json");

pub(crate) fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value = serde_json::from_str(SCHEMA).expect("the flat-dossier schema is valid JSON (tested)");
        jsonschema::validator_for(&schema).expect("the flat-dossier schema compiles (tested)")
    })
}

/// Checks a document against the flat-dossier schema; every violation with its pointer.
pub fn check_schema(v: &Value) -> Outcome {
    let mut out = Outcome::new();
    for e in validator().iter_errors(v) {
        let pointer = e.instance_path().to_string();
        // `masked` leaves the offending value out of the message (it may be patient data).
        out.push(Issue::error(IssueCode::Structure, e.masked().to_string()).at(if pointer.is_empty() {
            "/".to_owned()
        } else {
            pointer
        }));
    }
    out
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FConcept {
    Code { system: String, code: String, display: Option<String> },
    Text(String),
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct FName {
    #[serde(default)]
    given: Vec<String>,
    initials: Option<String>,
    call_name: Option<String>,
    prefix: Option<String>,
    family: Option<String>,
    partner_prefix: Option<String>,
    partner_family: Option<String>,
    assembly_order: Option<String>,
    #[serde(default)]
    titles: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct FAddress {
    street: Option<String>,
    house_number: Option<String>,
    house_letter: Option<String>,
    house_number_addition: Option<String>,
    postal_code: Option<String>,
    city: Option<String>,
    country: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
}

#[derive(Deserialize, Default)]
struct FContact {
    phone: Option<String>,
    mobile: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FPatient {
    bsn: String,
    name: Option<FName>,
    birth_date: Option<When>,
    gender: Option<String>,
    address: Option<FAddress>,
    contact: Option<FContact>,
    deceased: Option<bool>,
}

#[derive(Deserialize)]
struct FOrganization {
    name: String,
    agb: Option<String>,
    ura: Option<String>,
    department: Option<String>,
    address: Option<FAddress>,
    contact: Option<FContact>,
}

#[derive(Deserialize)]
struct FProfessional {
    name: FName,
    uzi: Option<String>,
    big: Option<String>,
    agb: Option<String>,
    role: Option<String>,
    specialty: Option<String>,
    contact: Option<FContact>,
}

#[derive(Deserialize)]
struct FContactPerson {
    id: String,
    name: FName,
    role: Option<FConcept>,
    relationship: Option<FConcept>,
    contact: Option<FContact>,
    address: Option<FAddress>,
}

#[derive(Deserialize)]
struct FLegal {
    id: String,
    kind: String,
    #[serde(rename = "type")]
    type_: FConcept,
    start: Option<When>,
    end: Option<When>,
    representative: Option<String>,
    note: Option<String>,
}

#[derive(Deserialize)]
struct FProblem {
    id: String,
    code: FConcept,
    #[serde(rename = "type")]
    type_: Option<String>,
    status: Option<String>,
    verification: Option<String>,
    onset: Option<When>,
    end: Option<When>,
    note: Option<String>,
}

#[derive(Deserialize)]
struct FEpisode {
    id: String,
    title: Option<String>,
    code: Option<FConcept>,
    start: Option<When>,
    end: Option<When>,
    attention: Option<bool>,
    #[serde(default)]
    problems: Vec<String>,
    note: Option<String>,
}

#[derive(Deserialize)]
struct FLine {
    #[serde(rename = "type")]
    type_: String,
    text: String,
    code: Option<FConcept>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FJournal {
    id: String,
    date: When,
    title: Option<String>,
    episode: Option<String>,
    contact_type: Option<FConcept>,
    lines: Vec<FLine>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FMedication {
    id: String,
    product: FConcept,
    kind: Option<String>,
    status: Option<String>,
    start: Option<When>,
    end: Option<When>,
    dosage: Option<String>,
    route: Option<FConcept>,
    as_needed: Option<bool>,
    reason: Option<String>,
    date: Option<When>,
    note: Option<String>,
}

#[derive(Deserialize)]
struct FAllergy {
    id: String,
    substance: FConcept,
    category: Option<String>,
    criticality: Option<String>,
    status: Option<String>,
    reaction: Option<String>,
    severity: Option<String>,
    onset: Option<When>,
    note: Option<String>,
}

#[derive(Deserialize)]
struct FAlert {
    id: String,
    code: FConcept,
    start: Option<When>,
    end: Option<When>,
    note: Option<String>,
    problem: Option<String>,
}

#[derive(Deserialize)]
struct FLab {
    id: String,
    code: FConcept,
    date: When,
    value: Option<Value>,
    unit: Option<String>,
    low: Option<serde_json::Number>,
    high: Option<serde_json::Number>,
    interpretation: Option<String>,
    episode: Option<String>,
    note: Option<String>,
}

#[derive(Deserialize)]
struct FVital {
    id: String,
    #[serde(rename = "type")]
    type_: String,
    date: When,
    value: Option<serde_json::Number>,
    unit: Option<String>,
    systolic: Option<serde_json::Number>,
    diastolic: Option<serde_json::Number>,
    note: Option<String>,
}

#[derive(Deserialize)]
struct FFinding {
    id: String,
    code: FConcept,
    date: Option<When>,
    value: Option<FConcept>,
    note: Option<String>,
}

#[derive(Deserialize)]
struct FVaccination {
    id: String,
    vaccine: FConcept,
    date: When,
    lot: Option<String>,
    note: Option<String>,
}

#[derive(Deserialize)]
struct FDirective {
    id: String,
    kind: String,
    treatment: Option<FConcept>,
    permitted: Option<String>,
    #[serde(rename = "type")]
    type_: Option<FConcept>,
    date: Option<When>,
    comment: Option<String>,
    representative: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FReferral {
    question: String,
    requested_care: Option<FConcept>,
    #[serde(default)]
    reasons: Vec<FConcept>,
    date: Option<When>,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Flat {
    patient: FPatient,
    sender: Option<FOrganization>,
    author: Option<FProfessional>,
    #[serde(default)]
    contact_persons: Vec<FContactPerson>,
    #[serde(default)]
    legal_situation: Vec<FLegal>,
    #[serde(default)]
    problems: Vec<FProblem>,
    #[serde(default)]
    episodes: Vec<FEpisode>,
    #[serde(default)]
    journal: Vec<FJournal>,
    #[serde(default)]
    medication: Vec<FMedication>,
    #[serde(default)]
    allergies: Vec<FAllergy>,
    #[serde(default)]
    alerts: Vec<FAlert>,
    #[serde(default)]
    lab: Vec<FLab>,
    #[serde(default)]
    vitals: Vec<FVital>,
    #[serde(default)]
    functional_status: Vec<FFinding>,
    #[serde(default)]
    development: Vec<FFinding>,
    #[serde(default)]
    vaccinations: Vec<FVaccination>,
    #[serde(default)]
    directives: Vec<FDirective>,
    living_situation: Option<FFinding>,
    referral: Option<FReferral>,
}

fn concept(c: &FConcept) -> Concept {
    match c {
        FConcept::Code { system, code, display } => Concept::coded(Coding {
            system: Some(Terminology::embedded().system_uri(system)),
            code: Some(code.clone()),
            display: display.clone(),
        }),
        FConcept::Text(t) => Concept::text(t),
    }
}

fn name(n: &FName) -> HumanName {
    let mut given: Vec<GivenName> =
        n.given.iter().map(|g| GivenName { value: g.clone(), kind: GivenKind::Given }).collect();
    if let Some(c) = &n.call_name {
        given.push(GivenName { value: c.clone(), kind: GivenKind::Call });
    }
    if let Some(i) = &n.initials {
        given.extend(
            i.split_inclusive('.')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| GivenName { value: s.to_owned(), kind: GivenKind::Initial }),
        );
    }
    HumanName {
        use_: Some("official".into()),
        given,
        own_prefix: n.prefix.clone(),
        own_name: n.family.clone(),
        partner_prefix: n.partner_prefix.clone(),
        partner_name: n.partner_family.clone(),
        prefix: n.titles.clone(),
        assembly_order: n.assembly_order.clone(),
        ..Default::default()
    }
}

fn address(a: &FAddress) -> Address {
    Address {
        use_: a.use_.clone().or(Some("home".into())),
        street: a.street.clone(),
        house_number: a.house_number.clone(),
        house_number_letter: a.house_letter.clone(),
        house_number_addition: a.house_number_addition.clone(),
        postal_code: a.postal_code.clone(),
        city: a.city.clone(),
        country: a.country.clone(),
        ..Default::default()
    }
}

fn telecoms(c: &Option<FContact>) -> Vec<Telecom> {
    let Some(c) = c else { return vec![] };
    let mut t = vec![];
    if let Some(p) = &c.phone {
        t.push(Telecom { system: "phone".into(), value: p.clone(), use_: Some("home".into()), zib_type: None });
    }
    if let Some(p) = &c.mobile {
        t.push(Telecom { system: "phone".into(), value: p.clone(), use_: Some("mobile".into()), zib_type: None });
    }
    if let Some(p) = &c.email {
        t.push(Telecom { system: "email".into(), value: p.clone(), use_: None, zib_type: None });
    }
    t
}

fn quantity(value: &serde_json::Number, unit: &Option<String>) -> Quantity {
    Quantity {
        value: Decimal::parse(&value.to_string()),
        unit: unit.clone(),
        system: unit.as_ref().map(|_| uri::UCUM.to_owned()),
        code: unit.clone(),
        comparator: None,
    }
}

fn notes(n: &Option<String>) -> Vec<String> {
    n.iter().cloned().collect()
}

/// Reads a flat dossier.
pub fn read(v: Value) -> Result<Dossier, SourceError> {
    let schema_outcome = check_schema(&v);
    if schema_outcome.has_errors() {
        return Err(SourceError::Invalid(schema_outcome));
    }
    // The schema admits no element the flat reader does not map (additionalProperties: false).
    let coverage = Coverage { source_elements: super::consume::count_elements(&v), unmapped_elements: 0 };
    let f: Flat = serde_json::from_value(v)
        .map_err(|e| SourceError::invalid("/", format!("the dossier does not fit the flat format: {e}")))?;
    let bsn =
        Bsn::parse(&f.patient.bsn).map_err(|e| SourceError::invalid("/patient/bsn", format!("invalid BSN: {e}")))?;
    let mut d = Dossier { coverage, ..Dossier::default() };
    let item = |d: &mut Dossier, key: String, path: String, concept: ItemConcept| {
        d.items.push(Item { key, source_path: path, concept })
    };
    let k = |section: &str, id: &str| format!("{section}/{id}");

    d.patient = Some(Patient {
        key: "patient".into(),
        source_path: "/patient".into(),
        bsn: Some(bsn),
        names: f.patient.name.as_ref().map(name).into_iter().collect(),
        gender: f.patient.gender.as_deref().and_then(Gender::from_fhir),
        birth_date: f.patient.birth_date,
        deceased: f.patient.deceased,
        addresses: f.patient.address.as_ref().map(address).into_iter().collect(),
        telecoms: telecoms(&f.patient.contact),
        ..Default::default()
    });
    let mut sender_ref = None;
    if let Some(s) = &f.sender {
        let mut ids = vec![];
        if let Some(a) = &s.agb {
            ids.push(Identifier::new(uri::AGB, a));
        }
        if let Some(u) = &s.ura {
            ids.push(Identifier::new(uri::URA, u));
        }
        d.author_organization = ids.first().cloned();
        let org_name = match &s.department {
            Some(dep) => format!("{}, {dep}", s.name),
            None => s.name.clone(),
        };
        item(
            &mut d,
            "sender".into(),
            "/sender".into(),
            ItemConcept::HealthcareProvider(HealthcareProvider {
                identifiers: ids,
                name: Some(org_name),
                telecoms: telecoms(&s.contact),
                addresses: s.address.as_ref().map(address).into_iter().collect(),
                ..Default::default()
            }),
        );
        sender_ref = Some(Ref::to("sender"));
    }
    let mut author_ref = None;
    if let Some(a) = &f.author {
        let mut ids = vec![];
        if let Some(x) = &a.uzi {
            ids.push(Identifier::new(uri::UZI_PERSON, x));
        }
        if let Some(x) = &a.big {
            ids.push(Identifier::new(uri::BIG, x));
        }
        if let Some(x) = &a.agb {
            ids.push(Identifier::new(uri::AGB, x));
        }
        item(
            &mut d,
            "author".into(),
            "/author".into(),
            ItemConcept::HealthProfessional(HealthProfessional {
                identifiers: ids,
                names: vec![name(&a.name)],
                telecoms: telecoms(&a.contact),
                ..Default::default()
            }),
        );
        let mut specialties = vec![];
        if let Some(s) = &a.specialty {
            specialties.push(Concept::coded(Coding::new(uri::COD016, s, None)));
        }
        let roles = a.role.iter().map(|r| Concept::coded(Coding::new(uri::UZI_ROLE, r, None))).collect();
        item(
            &mut d,
            "author-role".into(),
            "/author".into(),
            ItemConcept::ProfessionalRole(ProfessionalRole {
                practitioner: Some(Ref::to("author")),
                organization: sender_ref.clone(),
                specialties,
                roles,
                ..Default::default()
            }),
        );
        author_ref = Some(Ref::to("author-role"));
    }
    for (i, c) in f.contact_persons.iter().enumerate() {
        item(
            &mut d,
            k("contactPersons", &c.id),
            format!("/contactPersons/{i}"),
            ItemConcept::ContactPerson(ContactPerson {
                names: vec![name(&c.name)],
                roles: c.role.iter().map(concept).collect(),
                relationships: c.relationship.iter().map(concept).collect(),
                telecoms: telecoms(&c.contact),
                addresses: c.address.iter().map(address).collect(),
                ..Default::default()
            }),
        );
    }
    for (i, l) in f.legal_situation.iter().enumerate() {
        item(
            &mut d,
            k("legalSituation", &l.id),
            format!("/legalSituation/{i}"),
            ItemConcept::LegalSituation(LegalSituation {
                kind: if l.kind == "legalStatus" { LegalKind::LegalStatus } else { LegalKind::Representation },
                identifiers: vec![],
                code: concept(&l.type_),
                period: Period { start: l.start, end: l.end },
                representative: l.representative.as_ref().map(|r| Ref::to(k("contactPersons", r))),
                notes: notes(&l.note),
            }),
        );
    }
    for (i, p) in f.problems.iter().enumerate() {
        let problem_type = p.type_.as_deref().map(|t| {
            let (code, display) = match t {
                "diagnosis" => ("282291009", "Diagnose"),
                "symptom" => ("418799008", "Symptoom"),
                "complaint" => ("409586006", "Klacht"),
                "functional-limitation" => ("248536006", "Functionele beperking"),
                _ => ("404684003", "Klinische bevinding"),
            };
            Concept::coded(Coding::new(uri::SNOMED, code, Some(display)))
        });
        item(
            &mut d,
            k("problems", &p.id),
            format!("/problems/{i}"),
            ItemConcept::Problem(Problem {
                code: concept(&p.code),
                problem_type,
                clinical_status: p.status.clone(),
                verification_status: p.verification.clone(),
                onset: p.onset,
                abatement: p.end,
                asserter: author_ref.clone(),
                notes: notes(&p.note),
                ..Default::default()
            }),
        );
    }
    for (i, e) in f.episodes.iter().enumerate() {
        item(
            &mut d,
            k("episodes", &e.id),
            format!("/episodes/{i}"),
            ItemConcept::Episode(Episode {
                title: e.title.clone(),
                code: e.code.as_ref().map(concept),
                period: Period { start: e.start, end: e.end },
                attention: e.attention,
                diagnoses: e.problems.iter().map(|p| Ref::to(k("problems", p))).collect(),
                organization: sender_ref.clone(),
                notes: notes(&e.note),
                ..Default::default()
            }),
        );
    }
    for (i, j) in f.journal.iter().enumerate() {
        let key = k("journal", &j.id);
        let encounter_key = format!("{key}/contact");
        item(
            &mut d,
            encounter_key.clone(),
            format!("/journal/{i}"),
            ItemConcept::Contact(Contact {
                status: Some("finished".into()),
                types: j.contact_type.iter().map(concept).collect(),
                period: Period { start: Some(j.date), end: None },
                participants: author_ref.iter().cloned().collect(),
                episodes: j.episode.iter().map(|e| Ref::to(k("episodes", e))).collect(),
                service_provider: sender_ref.clone(),
                ..Default::default()
            }),
        );
        let lines = j
            .lines
            .iter()
            .map(|l| SoapLine {
                kind: SoapKind::from_letter(&l.type_).unwrap_or(SoapKind::Evaluation),
                code: l.code.as_ref().map(concept),
                text: l.text.clone(),
                identifiers: vec![],
            })
            .collect();
        item(
            &mut d,
            key,
            format!("/journal/{i}"),
            ItemConcept::JournalEntry(JournalEntry {
                date: Some(j.date),
                title: j.title.clone(),
                author: author_ref.clone(),
                encounter: Some(Ref::to(encounter_key)),
                episode: j.episode.as_ref().map(|e| Ref::to(k("episodes", e))),
                lines,
                ..Default::default()
            }),
        );
    }
    for (i, m) in f.medication.iter().enumerate() {
        let dosage = Dosage {
            text: m.dosage.clone(),
            route: m.route.as_ref().map(concept),
            as_needed: m.as_needed,
            ..Default::default()
        };
        let has_dosage = dosage.text.is_some() || dosage.route.is_some() || dosage.as_needed.is_some();
        let product_key = format!("{}/product", k("medication", &m.id));
        item(
            &mut d,
            product_key.clone(),
            format!("/medication/{i}/product"),
            ItemConcept::Product(Product { code: concept(&m.product), ..Default::default() }),
        );
        let period = Period { start: m.start, end: m.end };
        let reasons = m.reason.iter().map(|r| Concept::text(r)).collect();
        let concept_item = if m.kind.as_deref() == Some("use") {
            ItemConcept::MedicationUse(MedicationUse {
                identifiers: vec![],
                medication: MedicationRef::Product(Ref::to(product_key)),
                status: m.status.clone(),
                asserted: m.date,
                period_of_use: period,
                duration: None,
                use_indicator: Some(true),
                dosages: if has_dosage { vec![dosage] } else { vec![] },
                informant: author_ref.clone(),
                reasons,
                notes: notes(&m.note),
            })
        } else {
            ItemConcept::MedicationAgreement(MedicationAgreement {
                identifiers: vec![],
                medication: MedicationRef::Product(Ref::to(product_key)),
                authored_on: m.date,
                period_of_use: period,
                duration: None,
                dosages: if has_dosage { vec![dosage] } else { vec![] },
                prescriber: author_ref.clone(),
                reasons,
                status: m.status.clone(),
                stopped: None,
                encounter: None,
                notes: notes(&m.note),
                recorder: None,
                dispense: None,
                treatment: None,
            })
        };
        item(&mut d, k("medication", &m.id), format!("/medication/{i}"), concept_item);
    }
    for (i, a) in f.allergies.iter().enumerate() {
        item(
            &mut d,
            k("allergies", &a.id),
            format!("/allergies/{i}"),
            ItemConcept::Allergy(Allergy {
                code: concept(&a.substance),
                categories: a.category.iter().cloned().collect(),
                criticality: a.criticality.clone(),
                clinical_status: a.status.clone(),
                onset: a.onset,
                recorder: author_ref.clone(),
                reactions: a
                    .reaction
                    .iter()
                    .map(|r| Reaction {
                        description: Some(r.clone()),
                        manifestations: vec![Concept::text(r)],
                        severity: a.severity.clone(),
                        ..Default::default()
                    })
                    .collect(),
                notes: notes(&a.note),
                ..Default::default()
            }),
        );
    }
    for (i, a) in f.alerts.iter().enumerate() {
        item(
            &mut d,
            k("alerts", &a.id),
            format!("/alerts/{i}"),
            ItemConcept::Alert(Alert {
                code: concept(&a.code),
                status: Some(if a.end.is_some() { "inactive" } else { "active" }.into()),
                period: Period { start: a.start, end: a.end },
                author: author_ref.clone(),
                detail: a.problem.as_ref().map(|p| Ref::to(k("problems", p))),
                notes: notes(&a.note),
                ..Default::default()
            }),
        );
    }
    for (i, l) in f.lab.iter().enumerate() {
        let code = concept(&l.code);
        let kind = Terminology::embedded()
            .translate_any(crate::terminology::maps::DIAGNOSTIC_RESULT_TO_ZIB, &code.codings)
            .and_then(|c| c.code.as_deref())
            .and_then(ObservationKind::from_zib)
            .unwrap_or(ObservationKind::LaboratoryTestResult);
        let mut o = Observation::new(kind, code);
        o.status = Some("final".into());
        o.effective = Some(l.date);
        o.value = match &l.value {
            Some(Value::Number(n)) => Some(ObsValue::Quantity(quantity(n, &l.unit))),
            Some(Value::String(s)) => Some(ObsValue::Text(s.clone())),
            _ => None,
        };
        if l.low.is_some() || l.high.is_some() {
            o.reference_ranges.push(ReferenceRange {
                low: l.low.as_ref().map(|n| quantity(n, &l.unit)),
                high: l.high.as_ref().map(|n| quantity(n, &l.unit)),
                ..Default::default()
            });
        }
        o.interpretation = l
            .interpretation
            .iter()
            .map(|c| {
                Concept::coded(Coding::new(
                    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    c,
                    None,
                ))
            })
            .collect();
        o.episode = l.episode.as_ref().map(|e| Ref::to(k("episodes", e)));
        o.performers = author_ref.iter().cloned().collect();
        o.notes = notes(&l.note);
        item(&mut d, k("lab", &l.id), format!("/lab/{i}"), ItemConcept::Observation(o));
    }
    for (i, v) in f.vitals.iter().enumerate() {
        let kind = ObservationKind::from_zib(&v.type_).unwrap_or(ObservationKind::BodyWeight);
        let mut o = Observation::new(kind, Concept::default());
        o.status = Some("final".into());
        o.effective = Some(v.date);
        if kind == ObservationKind::BloodPressure {
            let mmhg = Some("mm[Hg]".to_owned());
            for (code, display, value) in [
                ("8480-6", "Systolic blood pressure", &v.systolic),
                ("8462-4", "Diastolic blood pressure", &v.diastolic),
            ] {
                if let Some(n) = value {
                    o.components.push(Component {
                        code: Concept::coded(Coding::new(uri::LOINC, code, Some(display))),
                        value: Some(ObsValue::Quantity(quantity(n, &mmhg))),
                        interpretation: vec![],
                    });
                }
            }
        } else if let Some(n) = &v.value {
            o.value = Some(ObsValue::Quantity(quantity(n, &v.unit)));
        }
        o.performers = author_ref.iter().cloned().collect();
        o.notes = notes(&v.note);
        item(&mut d, k("vitals", &v.id), format!("/vitals/{i}"), ItemConcept::Observation(o));
    }
    let finding = |f: &FFinding, kind: ObservationKind| {
        let mut o = Observation::new(kind, concept(&f.code));
        o.status = Some("final".into());
        o.effective = f.date;
        o.value = f.value.as_ref().map(|v| ObsValue::Concept(concept(v)));
        o.notes = notes(&f.note);
        o
    };
    for (i, x) in f.functional_status.iter().enumerate() {
        item(
            &mut d,
            k("functionalStatus", &x.id),
            format!("/functionalStatus/{i}"),
            ItemConcept::Observation(finding(x, ObservationKind::FunctionalOrMentalStatus)),
        );
    }
    for (i, x) in f.development.iter().enumerate() {
        item(
            &mut d,
            k("development", &x.id),
            format!("/development/{i}"),
            ItemConcept::Observation(finding(x, ObservationKind::DevelopmentChild)),
        );
    }
    if let Some(x) = &f.living_situation {
        item(
            &mut d,
            k("livingSituation", &x.id),
            "/livingSituation".into(),
            ItemConcept::Observation(finding(x, ObservationKind::LivingSituation)),
        );
    }
    for (i, v) in f.vaccinations.iter().enumerate() {
        item(
            &mut d,
            k("vaccinations", &v.id),
            format!("/vaccinations/{i}"),
            ItemConcept::Vaccination(Vaccination {
                vaccine: concept(&v.vaccine),
                status: Some("completed".into()),
                date: Some(v.date),
                lot_number: v.lot.clone(),
                notes: notes(&v.note),
                ..Default::default()
            }),
        );
    }
    for (i, x) in f.directives.iter().enumerate() {
        let key = k("directives", &x.id);
        let path = format!("/directives/{i}");
        if x.kind == "treatment" {
            item(
                &mut d,
                key,
                path,
                ItemConcept::TreatmentDirective(TreatmentDirective {
                    treatment: x.treatment.as_ref().map(concept).unwrap_or_default(),
                    permitted: x
                        .permitted
                        .as_ref()
                        .map(|p| Concept::coded(Coding::new("urn:oid:2.16.840.1.113883.2.4.3.11.60.40.4", p, None))),
                    status: Some("active".into()),
                    date: x.date,
                    comment: x.comment.clone(),
                    ..Default::default()
                }),
            );
        } else {
            item(
                &mut d,
                key,
                path,
                ItemConcept::AdvanceDirective(AdvanceDirective {
                    directive_type: x.type_.as_ref().map(concept),
                    status: Some("active".into()),
                    date: x.date,
                    comment: x.comment.clone(),
                    representative: x.representative.as_ref().map(|r| Ref::to(k("contactPersons", r))),
                    ..Default::default()
                }),
            );
        }
    }
    if let Some(r) = &f.referral {
        item(
            &mut d,
            "referral".into(),
            "/referral".into(),
            ItemConcept::Referral(Referral {
                question: Some(r.question.clone()),
                requested_care: r.requested_care.as_ref().map(concept),
                reasons: r.reasons.iter().map(concept).collect(),
                authored_on: r.date,
                requester: author_ref.clone(),
                status: Some("active".into()),
                notes: notes(&r.note),
                ..Default::default()
            }),
        );
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_compiles_and_reports_pointers() {
        let out = check_schema(
            &json!({"format": "overdracht-flat/1", "patient": {"bsn": "999911120", "colour": "blue"}, "problems": [{"id": "p1"}]}),
        );
        let pointers: Vec<&str> = out.issues.iter().filter_map(|i| i.expression.as_deref()).collect();
        assert!(pointers.contains(&"/patient"), "{pointers:?}");
        assert!(pointers.contains(&"/problems/0"), "{pointers:?}");
        assert!(!out.issues.iter().any(|i| i.diagnostics.contains("blue")), "values are masked");
    }

    #[test]
    fn minimal_dossier_reads() {
        let d = read(json!({"format": "overdracht-flat/1", "patient": {"bsn": "999911120"},
            "problems": [{"id": "p1", "code": {"system": "icpc", "code": "P85"}}]}))
        .expect("reads");
        assert_eq!(d.items.len(), 1);
        match &d.items[0].concept {
            ItemConcept::Problem(p) => {
                assert_eq!(p.code.codings[0].system.as_deref(), Some(uri::ICPC))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_bsn_is_refused() {
        let e = read(json!({"format": "overdracht-flat/1", "patient": {"bsn": "123456789"}})).expect_err("11-proef");
        assert_eq!(e.to_outcome().issues[0].expression.as_deref(), Some("/patient/bsn"));
    }
}
