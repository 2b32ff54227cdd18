//! FHIR STU3 JSON as Dutch GP systems deliver it → model.
//!
//! Covers the MedMij "Huisartsgegevens" profiles (`gp-Encounter`, `gp-EncounterReport`,
//! `gp-JournalEntry`, `gp-LaboratoryResult`, `gp-DiagnosticResult`) and the zib2017 /
//! BgZ 2017 profiles, as single resources or in collection, searchset, transaction and
//! document Bundles. Every element is either mapped or reported (see [`super::consume`]).

use std::collections::BTreeMap;

use serde_json::Value;

use super::consume::*;
use super::fhir_types::*;
use super::{Keys, SourceError};
use crate::diagnostics::{Issue, IssueCode, Outcome};
use crate::model::*;
use crate::terminology::{maps, uri};

const EXT_FLAG_DETAIL: &str = "http://hl7.org/fhir/StructureDefinition/flag-detail";
const EXT_CONTEXT_EPISODE: &str = "http://nictiz.nl/fhir/StructureDefinition/extension-context-nl-core-episodeofcare";
const EXT_PERIOD_OF_USE: &str = "http://nictiz.nl/fhir/StructureDefinition/zib-Medication-PeriodOfUse";
const EXT_USE_DURATION: &str = "http://nictiz.nl/fhir/StructureDefinition/zib-MedicationUse-Duration";
const EXT_MEDICATION_TREATMENT: &str = "http://nictiz.nl/fhir/StructureDefinition/zib-Medication-MedicationTreatment";
const EXT_STOP_TYPE: &str = "http://nictiz.nl/fhir/StructureDefinition/zib-Medication-StopType";
const EXT_COMMENT: &str = "http://nictiz.nl/fhir/StructureDefinition/Comment";
const EXT_TD_VERIFICATION: &str = "http://nictiz.nl/fhir/StructureDefinition/zib-TreatmentDirective-Verification";
const EXT_TD_TREATMENT: &str = "http://nictiz.nl/fhir/StructureDefinition/zib-TreatmentDirective-Treatment";
const EXT_TD_PERMITTED: &str = "http://nictiz.nl/fhir/StructureDefinition/zib-TreatmentDirective-TreatmentPermitted";
const EXT_AD_DISORDER: &str = "http://nictiz.nl/fhir/StructureDefinition/zib-AdvanceDirective-Disorder";
const EXT_EPISODE_TITLE: &str = "http://nictiz.nl/fhir/StructureDefinition/EpisodeOfCare-Title";
const EXT_EPISODE_ATTENTION: &str = "http://nictiz.nl/fhir/StructureDefinition/EpisodeOfCare-Attention";
const EXT_EPISODE_CODE: &str = "http://nictiz.nl/fhir/StructureDefinition/EpisodeOfCare-DiagnosisCode";
const EXT_EPISODE_FIRST: &str = "http://nictiz.nl/fhir/StructureDefinition/EpisodeOfCare-DateFirstEncounter";
const EXT_EPISODE_LAST: &str = "http://nictiz.nl/fhir/StructureDefinition/EpisodeOfCare-DateLastEncounter";
const EXT_EPIC_LEGAL_SEX: &str = "http://open.epic.com/FHIR/StructureDefinition/extension/legal-sex";
const EXT_EPIC_CLINICAL_SEX: &str = "http://open.epic.com/FHIR/StructureDefinition/extension/sex-for-clinical-use";
const PROFILE_JOURNAL_ENTRY: &str = "http://nictiz.nl/fhir/StructureDefinition/gp-JournalEntry";
const PROFILE_ENCOUNTER_REPORT: &str = "http://nictiz.nl/fhir/StructureDefinition/gp-EncounterReport";

/// Reads an STU3 resource or Bundle.
pub fn read(v: Value) -> Result<Dossier, SourceError> {
    let mut reader = Reader::default();
    reader.dossier.coverage.source_elements = count_elements(&v);
    let (resources, bundle_left) = collect(v, &mut reader.dossier.outcome)?;
    reader.dossier.coverage.unmapped_elements += bundle_left;
    // Find the patient first, so that subjects can be checked against it.
    for (path, res) in &resources {
        if res.get("resourceType").and_then(Value::as_str) == Some("Patient") {
            let key = key_of(res);
            if let Some(existing) = &reader.patient_key {
                if *existing != key {
                    return Err(SourceError::invalid(
                        path.clone(),
                        "the input holds more than one Patient; send one dossier per patient",
                    ));
                }
            }
            reader.patient_key = Some(key);
        }
    }
    for (path, res) in resources {
        reader.resource(path, res, None)?;
    }
    reader.finish()
}

/// Unwraps Bundles into (path, resource) pairs, with the number of Bundle-level elements
/// left unmapped.
fn collect(mut v: Value, out: &mut Outcome) -> Result<(Vec<(String, Value)>, usize), SourceError> {
    let Some(rt) = v.get("resourceType").and_then(Value::as_str).map(str::to_owned) else {
        return Err(SourceError::invalid("$", "not a FHIR resource: 'resourceType' is missing"));
    };
    if rt != "Bundle" {
        return Ok((vec![(rt, v)], 0));
    }
    let mut left = 0;
    let mut found = vec![];
    // fullUrl → `Type/id`: references by fullUrl (urn:uuid:, urn:oid:, absolute URLs, as
    // transaction and document Bundles write them) resolve like `Type/id` references.
    let mut full_urls: BTreeMap<String, String> = BTreeMap::new();
    for (i, e) in elements(&mut v, "entry") {
        let path = format!("Bundle.entry[{i}].resource");
        let full_url = take_str(e, "fullUrl");
        consume(e, "search");
        consume(e, "request");
        consume(e, "response");
        if let Some(mut r) = take(e, "resource") {
            if r.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome") {
                left += count_elements(&r);
                out.push(
                    Issue::leftover(
                        super::leftover::resource_type("OperationOutcome"),
                        "an OperationOutcome in the Bundle (search outcome) is not part of the dossier",
                    )
                    .at(path),
                );
                continue;
            }
            if r.get("id").is_none() {
                if let (Some(u), Some(o)) = (&full_url, r.as_object_mut()) {
                    // keep the fullUrl as identity for id-less entries
                    o.insert("id".into(), Value::String(u.rsplit('/').next().unwrap_or(u).to_owned()));
                }
            }
            if let (Some(u), Some(ty), Some(id)) =
                (full_url, r.get("resourceType").and_then(Value::as_str), r.get("id").and_then(Value::as_str))
            {
                full_urls.insert(u, format!("{ty}/{id}"));
            }
            found.push((path, r));
        }
    }
    for k in ["resourceType", "id", "meta", "type", "total", "link", "timestamp", "identifier"] {
        consume(&mut v, k);
    }
    left += count_elements(&v);
    leftovers("Bundle", &v, out);
    if !full_urls.is_empty() {
        for (_, r) in found.iter_mut() {
            resolve_full_urls(r, &full_urls);
        }
    }
    Ok((found, left))
}

/// Rewrites `reference` values that name an entry by its fullUrl to that entry's `Type/id`.
fn resolve_full_urls(v: &mut Value, full_urls: &BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("reference") {
                if let Some(local) = full_urls.get(r.as_str()) {
                    *r = local.clone();
                }
            }
            for (_, child) in m.iter_mut() {
                resolve_full_urls(child, full_urls);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| resolve_full_urls(c, full_urls)),
        _ => {}
    }
}

/// The source key of a resource: its id, or its content (see [`Keys`]); never its position.
fn key_of(res: &Value) -> Key {
    let rt = res.get("resourceType").and_then(Value::as_str).unwrap_or("Resource");
    match res.get("id").and_then(Value::as_str) {
        Some(id) => format!("{rt}/{id}"),
        None => Keys::of_json(rt, res),
    }
}

fn profiles(res: &Value) -> Vec<String> {
    res.get("meta")
        .and_then(|m| m.get("profile"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

#[derive(Default)]
struct Reader {
    dossier: Dossier,
    patient_key: Option<Key>,
    /// Journal lines by the journal entry (Composition or Encounter) they belong to.
    journal: BTreeMap<Key, JournalDraft>,
    /// Observation keys that a gp-EncounterReport lists, with the report's key.
    report_of_line: BTreeMap<Key, Key>,
    /// Content keys of id-less resources, kept unique.
    keys: Keys,
}

#[derive(Default)]
struct JournalDraft {
    entry: JournalEntry,
    source_path: String,
    lines: Vec<(String, SoapLine)>,
}

impl Reader {
    /// Maps one resource. `key` is given for contained resources (`Container/id#local`).
    fn resource(&mut self, path: String, mut res: Value, key: Option<Key>) -> Result<(), SourceError> {
        let rt = res.get("resourceType").and_then(Value::as_str).unwrap_or("").to_owned();
        let key = match key {
            Some(k) => k,
            None => {
                let k = key_of(&res);
                if Keys::is_content_key(&k) {
                    self.keys.claim(k)
                } else {
                    k
                }
            }
        };
        let profiles = profiles(&res);
        consume(&mut res, "resourceType");
        consume(&mut res, "id");
        consume(&mut res, "implicitRules");
        consume(&mut res, "language");
        if let Some(m) = member(&mut res, "meta") {
            for k in ["profile", "versionId", "lastUpdated", "source"] {
                consume(m, k);
            }
        }
        self.dossier.coverage.unmapped_elements += narrative(&mut res, &rt, &mut self.dossier.outcome);
        // Contained resources become items of their own, keyed under their container.
        let contained: Vec<Value> = match take(&mut res, "contained") {
            Some(Value::Array(a)) => a,
            _ => vec![],
        };
        for (i, c) in contained.into_iter().enumerate() {
            let local = c.get("id").and_then(Value::as_str).map(|id| format!("{key}#{id}"));
            self.resource(format!("{path}.contained[{i}]"), c, local)?;
        }
        self.check_subject(&mut res, &path, &["subject", "patient"])?;

        let mut out = std::mem::take(&mut self.dossier.outcome);
        let cx = Cx { key: &key, path: &path };
        let concept = match rt.as_str() {
            "Patient" => {
                // Patient.contact entries are zib ContactPersons of their own.
                for (i, c) in elements(&mut res, "contact") {
                    let person = contact_person(c);
                    let key = format!("{}/contact/{i}", cx.key);
                    self.dossier.items.push(Item {
                        key,
                        source_path: format!("{}.contact[{i}]", cx.path),
                        concept: ItemConcept::ContactPerson(person),
                    });
                }
                let p = patient(&mut res, &cx, &mut out)?;
                if self.dossier.author_organization.is_none() {
                    self.dossier.author_organization =
                        p.managing_organization.as_ref().and_then(|r| r.identifier.clone());
                }
                self.dossier.patient = Some(p);
                None
            }
            "Practitioner" => Some(ItemConcept::HealthProfessional(practitioner(&mut res, &cx, &mut out))),
            "PractitionerRole" => Some(ItemConcept::ProfessionalRole(practitioner_role(&mut res, &cx))),
            "Organization" => Some(ItemConcept::HealthcareProvider(organization(&mut res, &cx))),
            "RelatedPerson" => Some(ItemConcept::ContactPerson(related_person(&mut res))),
            "Condition" => Some(ItemConcept::Problem(condition(&mut res, &cx, &mut out))),
            "EpisodeOfCare" => Some(ItemConcept::Episode(episode(&mut res, &cx, &mut out))),
            "Encounter" => Some(ItemConcept::Contact(encounter(&mut res, &cx, &mut out))),
            "Composition" if profiles.iter().any(|p| p == PROFILE_ENCOUNTER_REPORT) || is_journal_composition(&res) => {
                self.encounter_report(&mut res, &cx, &mut out);
                None
            }
            "Observation" if profiles.iter().any(|p| p == PROFILE_JOURNAL_ENTRY) || is_journal_line(&res) => {
                self.journal_line(&mut res, &cx, &mut out);
                None
            }
            "Observation" => Some(ItemConcept::Observation(observation(&mut res, &cx, &mut out))),
            "AllergyIntolerance" => Some(ItemConcept::Allergy(allergy(&mut res, &cx, &mut out))),
            "Flag" => Some(ItemConcept::Alert(flag(&mut res, &cx, &mut out))),
            "Medication" => Some(ItemConcept::Product(medication(&mut res))),
            "MedicationRequest" => Some(ItemConcept::MedicationAgreement(medication_request(&mut res, &cx, &mut out))),
            "MedicationStatement" => Some(ItemConcept::MedicationUse(medication_statement(&mut res, &cx, &mut out))),
            "Immunization" => Some(ItemConcept::Vaccination(immunization(&mut res, &cx, &mut out))),
            "Consent" if is_treatment_directive(&res, &profiles) => {
                Some(ItemConcept::TreatmentDirective(treatment_directive(&mut res, &cx, &mut out)))
            }
            "Consent" => Some(ItemConcept::AdvanceDirective(advance_directive(&mut res, &cx, &mut out))),
            "DocumentReference" => Some(ItemConcept::Document(document_reference(&mut res, &cx, &mut out))),
            "ReferralRequest" | "ServiceRequest" => Some(ItemConcept::Referral(referral(&mut res, &cx, &mut out))),
            other => {
                let why = match other {
                    "Appointment" => "appointments are not part of a medical-data handover",
                    "AuditEvent" => "audit events of the sending system are not part of a handover",
                    _ => "this resource type is not mapped",
                };
                out.push(
                    Issue::leftover(super::leftover::resource_type(other), format!("{other} not converted: {why}"))
                        .at(path.clone()),
                );
                self.dossier.coverage.unmapped_elements += count_elements(&res);
                self.dossier.outcome = out;
                return Ok(());
            }
        };
        self.dossier.coverage.unmapped_elements += count_elements(&res);
        leftovers(&rt, &res, &mut out);
        // Leftover paths are rooted at the resource type; prefix the Bundle path.
        if path != rt {
            for issue in out.issues.iter_mut() {
                if let Some(e) = &issue.expression {
                    if e == &rt || e.starts_with(&format!("{rt}.")) || e.starts_with(&format!("{rt}[")) {
                        issue.expression = Some(format!("{path}{}", &e[rt.len()..]));
                    }
                }
            }
        }
        self.dossier.outcome = out;
        if let Some(concept) = concept {
            self.dossier.items.push(Item { key, source_path: path, concept });
        }
        Ok(())
    }

    /// Takes `subject`/`patient` when it points at the dossier's patient (or there is no
    /// Patient in the input); a reference to another patient is an error.
    fn check_subject(&mut self, res: &mut Value, path: &str, keys: &[&str]) -> Result<(), SourceError> {
        for k in keys {
            let Some(s) = res.get(*k) else { continue };
            let reference = s.get("reference").and_then(Value::as_str).and_then(|r| reference_key(r, ""));
            if let (Some(r), Some(p)) = (&reference, &self.patient_key) {
                if r.starts_with("Patient/") && r != p {
                    return Err(SourceError::invalid(
                        format!("{path}.{k}"),
                        "refers to a different patient than the Patient in the input; send one dossier per patient",
                    ));
                }
            }
            if reference.as_deref().is_none_or(|r| r.starts_with("Patient/")) {
                consume(res, k);
            }
        }
        Ok(())
    }

    fn encounter_report(&mut self, res: &mut Value, cx: &Cx, out: &mut Outcome) {
        let mut draft = JournalDraft { source_path: cx.path.to_owned(), ..Default::default() };
        let e = &mut draft.entry;
        e.identifiers = identifiers(res, "identifier");
        e.date = when(res, "date", cx.path, out);
        e.title = take_str(res, "title");
        e.author = take_references(res, "author", cx.key).into_iter().next();
        e.encounter = take_reference(res, "encounter", cx.key).or_else(|| take_reference(res, "context", cx.key));
        e.episode =
            take_extension(res, EXT_CONTEXT_EPISODE).and_then(|mut x| take_reference(&mut x, "valueReference", cx.key));
        consume(res, "status");
        consume(res, "type");
        for (_, s) in elements(res, "section") {
            // A section per journal line type. Its lines are the gp-JournalEntry Observations
            // it lists; a section that lists none (Nictiz's conversion of a Professional
            // Summary) holds its line only as text: that text is the line.
            let kind = section_line_kind(s);
            let lists_lines = s
                .get("entry")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|en| en.get("reference").and_then(Value::as_str))
                .filter_map(|r| reference_key(r, cx.key))
                .any(|k| k.starts_with("Observation/"));
            let text = s.pointer("/text/div").and_then(Value::as_str).map(div_text).filter(|t| !t.is_empty());
            if let (Some(kind), Some(text), false) = (kind, text, lists_lines) {
                let line = SoapLine { kind, code: None, text, identifiers: vec![] };
                draft.lines.push((format!("{}/section/{kind:?}", cx.key), line));
            }
            consume(s, "code");
            consume(s, "title");
            consume(s, "text");
            for (_, en) in elements(s, "entry") {
                if let Some(k) = en.get("reference").and_then(Value::as_str).and_then(|r| reference_key(r, cx.key)) {
                    // An entry that is the episode the lines are about.
                    if k.starts_with("EpisodeOfCare/") {
                        let r = reference(en, cx.key);
                        draft.entry.episode.get_or_insert(r);
                        continue;
                    }
                    self.report_of_line.insert(k, cx.key.to_owned());
                    take(en, "reference");
                    consume(en, "display");
                }
            }
        }
        let mut lines = std::mem::take(&mut draft.lines);
        if let Some(existing) = self.journal.remove(cx.key) {
            lines.extend(existing.lines);
        }
        draft.lines = lines;
        self.journal.insert(cx.key.to_owned(), draft);
    }

    fn journal_line(&mut self, res: &mut Value, cx: &Cx, out: &mut Outcome) {
        let code = member(res, "code").map(concept).unwrap_or_default();
        let kind = code
            .coding_in(uri::JOURNAL_LINE_TYPE)
            .and_then(|c| c.code.as_deref())
            .and_then(SoapKind::from_letter)
            .or_else(|| code.codings.iter().filter_map(|c| c.code.as_deref()).find_map(SoapKind::from_letter));
        let icpc = code.coding_in(uri::ICPC).cloned().map(Concept::coded).or_else(|| {
            take_extension(res, "http://nictiz.nl/fhir/StructureDefinition/gp-JournalEntry-ICPC")
                .and_then(|mut e| take_concept(&mut e, "valueCodeableConcept"))
        });
        // gp-JournalEntry: the ICPC code of the line may also come as a component.
        let mut icpc = icpc;
        for (_, c) in elements(res, "component") {
            for key in ["code", "valueCodeableConcept"] {
                let is_icpc = c.get(key).and_then(|x| x.get("coding")).and_then(Value::as_array).is_some_and(|cs| {
                    cs.iter().any(|x| {
                        x.get("system").and_then(Value::as_str).map(|s| term().system_uri(s)).as_deref()
                            == Some(uri::ICPC)
                    })
                });
                if is_icpc {
                    if let Some(code) = take_concept(c, key) {
                        icpc.get_or_insert(code);
                    }
                }
            }
        }
        let text = take_str(res, "valueString").or_else(|| take_str(res, "comment")).unwrap_or_default();
        let Some(kind) = kind else {
            out.push(
                Issue::warning(
                    IssueCode::CodeInvalid,
                    "journal line without an S/O/E/P line type; converted as an evaluation (E) line",
                )
                .at(format!("{}.code", cx.path)),
            );
            return self.add_line(res, cx, out, SoapKind::Evaluation, icpc, text);
        };
        self.add_line(res, cx, out, kind, icpc, text)
    }

    fn add_line(
        &mut self,
        res: &mut Value,
        cx: &Cx,
        out: &mut Outcome,
        kind: SoapKind,
        code: Option<Concept>,
        text: String,
    ) {
        consume(res, "status");
        consume(res, "category");
        let identifiers = identifiers(res, "identifier");
        let encounter = take_reference(res, "context", cx.key).or_else(|| take_reference(res, "encounter", cx.key));
        let episode =
            take_extension(res, EXT_CONTEXT_EPISODE).and_then(|mut x| take_reference(&mut x, "valueReference", cx.key));
        let date = when(res, "effectiveDateTime", cx.path, out).or_else(|| when(res, "issued", cx.path, out));
        let author = take_references(res, "performer", cx.key).into_iter().next();
        // A line belongs to the report that lists it, else to its encounter, else stands alone.
        let entry_key = self
            .report_of_line
            .get(cx.key)
            .cloned()
            .or_else(|| encounter.as_ref().and_then(|e| e.key.as_ref()).map(|k| format!("{k}/journal")))
            .unwrap_or_else(|| cx.key.to_owned());
        let draft = self
            .journal
            .entry(entry_key)
            .or_insert_with(|| JournalDraft { source_path: cx.path.to_owned(), ..Default::default() });
        let e = &mut draft.entry;
        if e.encounter.is_none() {
            e.encounter = encounter;
        }
        if e.episode.is_none() {
            e.episode = episode;
        }
        if e.date.is_none() {
            e.date = date;
        }
        if e.author.is_none() {
            e.author = author;
        }
        draft.lines.push((cx.key.to_owned(), SoapLine { kind, code, text, identifiers }));
    }

    fn finish(mut self) -> Result<Dossier, SourceError> {
        // Lines that a report listed but that arrived before it were filed under their
        // encounter: move them to the report.
        let mut moves = vec![];
        for (k, draft) in &self.journal {
            for (line_key, _) in &draft.lines {
                if let Some(report) = self.report_of_line.get(line_key) {
                    if report != k {
                        moves.push((k.clone(), line_key.clone(), report.clone()));
                    }
                }
            }
        }
        for (from, line_key, to) in moves {
            let line = self.journal.get_mut(&from).and_then(|d| {
                let i = d.lines.iter().position(|(k, _)| *k == line_key)?;
                Some(d.lines.remove(i))
            });
            if let (Some(line), Some(d)) = (line, self.journal.get_mut(&to)) {
                d.lines.push(line);
            }
        }
        for (key, mut draft) in std::mem::take(&mut self.journal) {
            if draft.lines.is_empty() {
                continue;
            }
            // S, O, E, P order; stable within a kind.
            draft.lines.sort_by_key(|(_, l)| l.kind);
            draft.entry.lines = draft.lines.into_iter().map(|(_, l)| l).collect();
            self.dossier.items.push(Item {
                key,
                source_path: draft.source_path,
                concept: ItemConcept::JournalEntry(draft.entry),
            });
        }
        Ok(self.dossier)
    }
}

pub(crate) struct Cx<'a> {
    pub key: &'a str,
    pub path: &'a str,
}

/// Takes the narrative; one not generated from the structured data is reported (and its
/// elements counted as unmapped, the number returned).
fn narrative(res: &mut Value, rt: &str, out: &mut Outcome) -> usize {
    let Some(text) = res.get("text") else { return 0 };
    let status = text.get("status").and_then(Value::as_str).unwrap_or("");
    let mut unmapped = 0;
    if status != "generated" && text.get("div").is_some() {
        unmapped = count_elements(text);
        out.push(
            Issue::leftover(
                super::leftover::fhir(&format!("{rt}.text"), None),
                format!("the narrative (text.status '{status}') is not carried over; the output is generated from the structured data"),
            )
            .at(format!("{rt}.text")),
        );
    }
    consume(res, "text");
    unmapped
}

/// The journal line type a Composition section is coded with (S/O/E/P), if any.
fn section_line_kind(section: &Value) -> Option<SoapKind> {
    let codings = section.pointer("/code/coding").and_then(Value::as_array)?;
    codings.iter().find_map(|c| {
        let system = c.get("system").and_then(Value::as_str).map(|s| term().system_uri(s)).unwrap_or_default();
        let journal = system == uri::JOURNAL_LINE_TYPE || system.contains("journaalregel");
        journal.then(|| c.get("code").and_then(Value::as_str).and_then(SoapKind::from_letter)).flatten()
    })
}

/// The text of an XHTML div: tags removed, the five XML entities resolved, blanks collapsed.
fn div_text(div: &str) -> String {
    let mut out = String::with_capacity(div.len());
    let mut in_tag = false;
    for c in div.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_journal_line(res: &Value) -> bool {
    let codings = res.pointer("/code/coding").and_then(Value::as_array);
    codings.is_some_and(|cs| {
        cs.iter().any(|c| {
            c.get("system").and_then(Value::as_str).map(|s| term().system_uri(s)).as_deref()
                == Some(uri::JOURNAL_LINE_TYPE)
        })
    })
}

fn is_journal_composition(res: &Value) -> bool {
    // zib2017 SOAP report: Composition type SNOMED 11591000146107 (patiëntcontactverslag)
    res.pointer("/type/coding")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c.get("code").and_then(Value::as_str) == Some("11591000146107")))
}

fn is_treatment_directive(res: &Value, profiles: &[String]) -> bool {
    profiles.iter().any(|p| p.contains("TreatmentDirective"))
        || res
            .get("modifierExtension")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|e| e.get("url").and_then(Value::as_str) == Some(EXT_TD_PERMITTED)))
        || res.pointer("/category/0/coding/0/code").and_then(Value::as_str) == Some("11291000146105")
}

fn gender(v: &mut Value) -> Option<Gender> {
    let g = v.get("gender").and_then(Value::as_str).and_then(Gender::from_fhir)?;
    take(v, "gender");
    Some(g)
}

pub(crate) fn patient(res: &mut Value, cx: &Cx, out: &mut Outcome) -> Result<Patient, SourceError> {
    let mut p = Patient { key: cx.key.to_owned(), source_path: cx.path.to_owned(), ..Default::default() };
    for (i, id) in elements(res, "identifier") {
        let system = id.get("system").and_then(Value::as_str).map(|s| term().system_uri(s));
        if system.as_deref() == Some(uri::BSN) {
            let value = id.get("value").and_then(Value::as_str).unwrap_or("");
            let bsn = Bsn::parse(value).map_err(|e| {
                SourceError::invalid(format!("{}.identifier[{i}].value", cx.path), format!("invalid BSN: {e}"))
            })?;
            if let Some(ext) = take_extension(id, "http://hl7.org/fhir/StructureDefinition/rendered-value") {
                drop(ext);
            }
            identifier(id);
            p.bsn = Some(bsn);
        } else if let Some(ident) = identifier(id) {
            p.identifiers.push(ident);
        }
    }
    p.names = names(res, "name");
    p.gender = gender(res);
    p.gender_code = code_specification(res, "gender").and_then(|c| c.codings.into_iter().next());
    // Epic's legal sex is the administrative gender: taken when it says the same.
    let gender_code = p.gender.map(Gender::fhir_code);
    let legal_sex_matches = res.get("extension").and_then(Value::as_array).is_some_and(|a| {
        a.iter().any(|x| {
            x.get("url").and_then(Value::as_str) == Some(EXT_EPIC_LEGAL_SEX)
                && x.pointer("/valueCodeableConcept/coding/0/code").and_then(Value::as_str) == gender_code
        })
    });
    if legal_sex_matches {
        take_extension(res, EXT_EPIC_LEGAL_SEX);
    }
    p.sex_for_clinical_use =
        take_extension(res, EXT_EPIC_CLINICAL_SEX).and_then(|mut x| take_concept(&mut x, "valueCodeableConcept"));
    p.birth_date = when(res, "birthDate", cx.path, out);
    p.deceased = take_bool(res, "deceasedBoolean");
    p.deceased_at = when(res, "deceasedDateTime", cx.path, out);
    p.addresses = addresses(res, "address");
    p.telecoms = telecoms(res, "telecom");
    p.marital_status = take_concept(res, "maritalStatus");
    p.multiple_birth = take_bool(res, "multipleBirthBoolean");
    consume(res, "active");
    for (_, c) in elements(res, "communication") {
        if let Some(l) = take_concept(c, "language") {
            p.languages.push(l);
        }
        consume(c, "preferred");
    }
    p.general_practitioner = take_references(res, "generalPractitioner", cx.key);
    p.managing_organization = take_reference(res, "managingOrganization", cx.key);
    Ok(p)
}

fn contact_person(c: &mut Value) -> ContactPerson {
    let mut p = ContactPerson {
        names: elements(c, "name").into_iter().map(|(_, n)| human_name(n)).collect(),
        telecoms: telecoms(c, "telecom"),
        addresses: addresses(c, "address"),
        gender: gender(c),
        ..Default::default()
    };
    p.relationships = take_concepts(c, "relationship");
    p
}

fn practitioner(res: &mut Value, cx: &Cx, out: &mut Outcome) -> HealthProfessional {
    consume(res, "active");
    let mut h = HealthProfessional {
        identifiers: identifiers(res, "identifier"),
        names: names(res, "name"),
        gender: gender(res),
        telecoms: telecoms(res, "telecom"),
        addresses: addresses(res, "address"),
        birth_date: when(res, "birthDate", cx.path, out),
        qualifications: vec![],
    };
    for (i, q) in elements(res, "qualification") {
        let path = format!("{}.qualification[{i}]", cx.path);
        h.qualifications.push(Qualification {
            identifiers: identifiers(q, "identifier"),
            code: take_concept(q, "code").unwrap_or_default(),
            period: period(q, "period", &path, out),
            issuer: take_reference(q, "issuer", cx.key),
        });
    }
    h
}

fn practitioner_role(res: &mut Value, cx: &Cx) -> ProfessionalRole {
    consume(res, "active");
    ProfessionalRole {
        identifiers: identifiers(res, "identifier"),
        practitioner: take_reference(res, "practitioner", cx.key),
        organization: take_reference(res, "organization", cx.key),
        specialties: take_concepts(res, "specialty"),
        roles: take_concepts(res, "code"),
        telecoms: telecoms(res, "telecom"),
    }
}

fn organization(res: &mut Value, cx: &Cx) -> HealthcareProvider {
    consume(res, "active");
    HealthcareProvider {
        identifiers: identifiers(res, "identifier"),
        name: take_str(res, "name"),
        types: take_concepts(res, "type"),
        telecoms: telecoms(res, "telecom"),
        addresses: addresses(res, "address"),
        part_of: take_reference(res, "partOf", cx.key),
    }
}

fn related_person(res: &mut Value) -> ContactPerson {
    consume(res, "active");
    let mut c = ContactPerson {
        identifiers: identifiers(res, "identifier"),
        names: names(res, "name"),
        telecoms: telecoms(res, "telecom"),
        addresses: addresses(res, "address"),
        gender: gender(res),
        ..Default::default()
    };
    c.relationships = take_concept(res, "relationship").into_iter().collect();
    for e in take_extensions(res, "http://nictiz.nl/fhir/StructureDefinition/zib-ContactPerson-Role") {
        let mut e = e;
        if let Some(r) = take_concept(&mut e, "valueCodeableConcept") {
            c.roles.push(r);
        }
    }
    c
}

/// STU3 status codes are plain codes; a code-specification extension may add the zib code.
/// A status that is absent with a data-absent reason is "not known", which R4 says by
/// leaving the status out.
fn status_with_spec(res: &mut Value, key: &str) -> Option<String> {
    code_specification(res, key);
    if let Some(u) = member(res, &format!("_{key}")) {
        take_extension(u, "http://hl7.org/fhir/StructureDefinition/data-absent-reason");
    }
    take_str(res, key)
}

fn condition(res: &mut Value, cx: &Cx, out: &mut Outcome) -> Problem {
    let mut p = Problem {
        identifiers: identifiers(res, "identifier"),
        code: take_concept(res, "code").unwrap_or_default(),
        clinical_status: status_with_spec(res, "clinicalStatus"),
        verification_status: status_with_spec(res, "verificationStatus"),
        body_site: take_concepts(res, "bodySite"),
        asserter: take_reference(res, "asserter", cx.key),
        ..Default::default()
    };
    // category: the zib problem type (SNOMED) is kept; the generic FHIR category is implied.
    for c in take_concepts(res, "category") {
        if c.coding_in(uri::SNOMED).is_some() && p.problem_type.is_none() {
            p.problem_type = Some(Concept {
                codings: c.codings.into_iter().filter(|x| x.system.as_deref() == Some(uri::SNOMED)).collect(),
                text: None,
            });
        }
    }
    p.onset = when(res, "onsetDateTime", cx.path, out).or_else(|| period(res, "onsetPeriod", cx.path, out).start);
    p.abatement =
        when(res, "abatementDateTime", cx.path, out).or_else(|| period(res, "abatementPeriod", cx.path, out).end);
    if let Some(b) = take_bool(res, "abatementBoolean") {
        if b && p.clinical_status.is_none() {
            p.clinical_status = Some("resolved".into());
        }
    }
    p.recorded = when(res, "assertedDate", cx.path, out);
    p.notes = notes(res, "note");
    p.episode =
        take_extension(res, EXT_CONTEXT_EPISODE).and_then(|mut x| take_reference(&mut x, "valueReference", cx.key));
    consume(res, "context");
    p
}

fn episode(res: &mut Value, cx: &Cx, out: &mut Outcome) -> Episode {
    let mut e = Episode {
        identifiers: identifiers(res, "identifier"),
        status: take_str(res, "status"),
        period: period(res, "period", cx.path, out),
        care_manager: take_reference(res, "careManager", cx.key),
        organization: take_reference(res, "managingOrganization", cx.key),
        ..Default::default()
    };
    e.title = take_extension(res, EXT_EPISODE_TITLE).and_then(|mut x| take_str(&mut x, "valueString"));
    e.attention = take_extension(res, EXT_EPISODE_ATTENTION).and_then(|mut x| take_bool(&mut x, "valueBoolean"));
    e.code = take_extension(res, EXT_EPISODE_CODE).and_then(|mut x| take_concept(&mut x, "valueCodeableConcept"));
    e.first_encounter =
        take_extension(res, EXT_EPISODE_FIRST).and_then(|mut x| when(&mut x, "valueDateTime", cx.path, out));
    e.last_encounter =
        take_extension(res, EXT_EPISODE_LAST).and_then(|mut x| when(&mut x, "valueDateTime", cx.path, out));
    for (_, d) in elements(res, "diagnosis") {
        if let Some(r) = take_reference(d, "condition", cx.key) {
            e.diagnoses.push(r);
        }
        consume(d, "role");
        consume(d, "rank");
    }
    consume(res, "type");
    e
}

fn encounter(res: &mut Value, cx: &Cx, out: &mut Outcome) -> Contact {
    let mut c = Contact {
        identifiers: identifiers(res, "identifier"),
        status: take_str(res, "status"),
        types: take_concepts(res, "type"),
        period: period(res, "period", cx.path, out),
        reasons: take_concepts(res, "reason"),
        service_provider: take_reference(res, "serviceProvider", cx.key),
        episodes: take_references(res, "episodeOfCare", cx.key),
        ..Default::default()
    };
    if let Some(m) = member(res, "class") {
        let coding = coding(m);
        if coding.code.is_some() {
            c.class = Some(coding);
        }
    }
    for (_, p) in elements(res, "participant") {
        if let Some(r) = take_reference(p, "individual", cx.key) {
            c.participants.push(r);
        }
        consume(p, "type");
    }
    for (_, d) in elements(res, "diagnosis") {
        if let Some(condition) = take_reference(d, "condition", cx.key) {
            c.diagnoses.push(ContactDiagnosis { condition, use_: take_concept(d, "role"), rank: take_i64(d, "rank") });
        }
    }
    c
}

/// The zib observation concept a result is, by its codes (ConceptMap in mappings/).
fn observation_kind(code: &Concept) -> ObservationKind {
    term()
        .translate_any(maps::DIAGNOSTIC_RESULT_TO_ZIB, &code.codings)
        .and_then(|c| c.code.as_deref())
        .and_then(ObservationKind::from_zib)
        .unwrap_or(ObservationKind::LaboratoryTestResult)
}

fn observation(res: &mut Value, cx: &Cx, out: &mut Outcome) -> Observation {
    let code = take_concept(res, "code").unwrap_or_default();
    let mut o = Observation::new(observation_kind(&code), code);
    o.identifiers = identifiers(res, "identifier");
    o.status = take_str(res, "status");
    consume(res, "category"); // implied by the kind's profile
    o.effective = when(res, "effectiveDateTime", cx.path, out);
    if res.get("effectivePeriod").is_some() {
        o.effective_period = Some(period(res, "effectivePeriod", cx.path, out));
    }
    o.issued = when(res, "issued", cx.path, out);
    o.value = obs_value(res, cx.path, out);
    o.interpretation = take_concepts(res, "interpretation");
    for (_, rr) in elements(res, "referenceRange") {
        o.reference_ranges.push(ReferenceRange {
            low: take_quantity(rr, "low"),
            high: take_quantity(rr, "high"),
            type_: take_concept(rr, "type"),
            text: take_str(rr, "text"),
        });
    }
    for (i, c) in elements(res, "component") {
        let code = take_concept(c, "code").unwrap_or_default();
        let value = obs_value(c, &format!("{}.component[{i}]", cx.path), out);
        let interpretation = take_concepts(c, "interpretation");
        o.components.push(Component { code, value, interpretation });
    }
    o.method = take_concept(res, "method");
    o.body_site = take_concept(res, "bodySite");
    o.performers = take_references(res, "performer", cx.key);
    o.encounter = take_reference(res, "context", cx.key).or_else(|| take_reference(res, "encounter", cx.key));
    o.episode =
        take_extension(res, EXT_CONTEXT_EPISODE).and_then(|mut x| take_reference(&mut x, "valueReference", cx.key));
    o.notes = notes(res, "comment");
    o.notes.extend(notes(res, "note"));
    o
}

fn allergy(res: &mut Value, cx: &Cx, out: &mut Outcome) -> Allergy {
    let mut a = Allergy {
        identifiers: identifiers(res, "identifier"),
        code: take_concept(res, "code").unwrap_or_default(),
        type_: take_str(res, "type"),
        criticality: take_str(res, "criticality"),
        clinical_status: status_with_spec(res, "clinicalStatus"),
        verification_status: status_with_spec(res, "verificationStatus"),
        recorder: take_reference(res, "recorder", cx.key),
        asserter: take_reference(res, "asserter", cx.key),
        ..Default::default()
    };
    // STU3 category is a list of codes, each with an optional zib code-specification
    if let Some(specs) = res.get_mut("_category").and_then(Value::as_array_mut) {
        for s in specs.iter_mut() {
            if let Some(mut e) = take_extension(s, "http://nictiz.nl/fhir/StructureDefinition/code-specification") {
                if let Some(c) = take_concept(&mut e, "valueCodeableConcept") {
                    a.category_codes.extend(c.codings);
                }
            }
        }
    }
    a.categories = take_strings(res, "category");
    a.onset = when(res, "onsetDateTime", cx.path, out).or_else(|| period(res, "onsetPeriod", cx.path, out).start);
    a.recorded = when(res, "assertedDate", cx.path, out);
    consume(res, "lastOccurrence");
    for (i, r) in elements(res, "reaction") {
        let path = format!("{}.reaction[{i}]", cx.path);
        a.reactions.push(Reaction {
            substance: take_concept(r, "substance"),
            manifestations: take_concepts(r, "manifestation"),
            severity: take_str(r, "severity"),
            description: take_str(r, "description"),
            onset: when(r, "onset", &path, out),
            route: take_concept(r, "exposureRoute"),
        });
    }
    a.notes = notes(res, "note");
    a
}

fn flag(res: &mut Value, cx: &Cx, out: &mut Outcome) -> Alert {
    Alert {
        identifiers: identifiers(res, "identifier"),
        code: take_concept(res, "code").unwrap_or_default(),
        category: take_concept(res, "category"),
        status: take_str(res, "status"),
        period: period(res, "period", cx.path, out),
        author: take_reference(res, "author", cx.key),
        detail: take_extension(res, EXT_FLAG_DETAIL).and_then(|mut x| take_reference(&mut x, "valueReference", cx.key)),
        notes: take_extension(res, EXT_COMMENT).and_then(|mut x| take_str(&mut x, "valueString")).into_iter().collect(),
    }
}

fn medication(res: &mut Value) -> Product {
    let mut p = Product {
        code: take_concept(res, "code").unwrap_or_default(),
        form: take_concept(res, "form"),
        ..Default::default()
    };
    for (_, i) in elements(res, "ingredient") {
        if let Some(item) = take_concept(i, "itemCodeableConcept") {
            p.ingredients.push(Ingredient { item, strength_text: None });
        }
    }
    consume(res, "isBrand");
    p
}

fn medication_ref(res: &mut Value, cx: &Cx) -> MedicationRef {
    if let Some(r) = take_reference(res, "medicationReference", cx.key) {
        return MedicationRef::Product(r);
    }
    MedicationRef::Code(take_concept(res, "medicationCodeableConcept").unwrap_or_default())
}

fn medication_request(res: &mut Value, cx: &Cx, out: &mut Outcome) -> MedicationAgreement {
    let medication = medication_ref(res, cx);
    let mut m = MedicationAgreement {
        identifiers: identifiers(res, "identifier"),
        medication,
        authored_on: when(res, "authoredOn", cx.path, out),
        period_of_use: Period::default(),
        duration: None,
        dosages: elements(res, "dosageInstruction").into_iter().map(|(_, d)| dosage(d)).collect(),
        prescriber: None,
        reasons: take_concepts(res, "reasonCode"),
        status: take_str(res, "status"),
        stopped: None,
        encounter: take_reference(res, "context", cx.key),
        notes: notes(res, "note"),
        recorder: take_reference(res, "recorder", cx.key),
        dispense: None,
        treatment: None,
    };
    if let Some(dr) = member(res, "dispenseRequest") {
        let path = format!("{}.dispenseRequest", cx.path);
        let d = DispenseRequest {
            validity: period(dr, "validityPeriod", &path, out),
            repeats: take_i64(dr, "numberOfRepeatsAllowed"),
            quantity: take_quantity(dr, "quantity"),
            expected_duration: take_quantity(dr, "expectedSupplyDuration"),
            performer: take_reference(dr, "performer", cx.key),
        };
        m.dispense = Some(Box::new(d));
    }
    if let Some(mut e) = take_extension(res, EXT_PERIOD_OF_USE) {
        m.period_of_use = period(&mut e, "valuePeriod", cx.path, out);
    }
    // The period of use may come as the dosage's timing bounds (Nictiz's own conversion).
    if m.period_of_use.is_empty() {
        if let Some(b) = m.dosages.iter().find_map(|d| d.bounds) {
            m.period_of_use = b;
        }
    }
    if let Some(mut e) = take_extension(res, EXT_USE_DURATION) {
        m.duration = take_quantity(&mut e, "valueDuration");
    }
    // MP 9.0.7's MedicationTreatment is R4's ext-PharmaceuticalTreatment.Identifier.
    if let Some(mut e) = take_extension(res, EXT_MEDICATION_TREATMENT) {
        m.treatment = member(&mut e, "valueIdentifier").and_then(identifier);
    }
    if let Some(mut e) = take_extension(res, EXT_STOP_TYPE) {
        m.stopped = take_concept(&mut e, "valueCodeableConcept").map(|_| true);
    }
    if let Some(r) = member(res, "requester") {
        m.prescriber = take_reference(r, "agent", cx.key);
        consume(r, "onBehalfOf");
    }
    for r in take_references(res, "reasonReference", cx.key) {
        if let Some(d) = r.display {
            m.reasons.push(Concept::text(&d));
        }
    }
    consume(res, "intent");
    consume(res, "category");
    m
}

fn medication_statement(res: &mut Value, cx: &Cx, out: &mut Outcome) -> MedicationUse {
    let medication = medication_ref(res, cx);
    let mut m = MedicationUse {
        identifiers: identifiers(res, "identifier"),
        medication,
        status: take_str(res, "status"),
        asserted: when(res, "dateAsserted", cx.path, out),
        period_of_use: period(res, "effectivePeriod", cx.path, out),
        duration: None,
        use_indicator: None,
        dosages: elements(res, "dosage").into_iter().map(|(_, d)| dosage(d)).collect(),
        informant: take_reference(res, "informationSource", cx.key),
        reasons: take_concepts(res, "reasonCode"),
        notes: notes(res, "note"),
    };
    if let Some(t) = take_str(res, "taken") {
        m.use_indicator = match t.as_str() {
            "y" => Some(true),
            "n" => Some(false),
            _ => None,
        };
    }
    if let Some(mut e) = take_extension(res, EXT_USE_DURATION) {
        m.duration = take_quantity(&mut e, "valueDuration");
    }
    consume(res, "category");
    m
}

fn immunization(res: &mut Value, cx: &Cx, out: &mut Outcome) -> Vaccination {
    let mut v = Vaccination {
        identifiers: identifiers(res, "identifier"),
        vaccine: take_concept(res, "vaccineCode").unwrap_or_default(),
        status: take_str(res, "status"),
        date: when(res, "date", cx.path, out).or_else(|| when(res, "occurrenceDateTime", cx.path, out)),
        dose: take_quantity(res, "doseQuantity"),
        lot_number: take_str(res, "lotNumber"),
        primary_source: take_bool(res, "primarySource"),
        notes: notes(res, "note"),
        ..Default::default()
    };
    if take_bool(res, "notGiven") == Some(true) {
        v.status = Some("not-done".into());
    }
    for (_, p) in elements(res, "practitioner") {
        if let Some(r) = take_reference(p, "actor", cx.key) {
            v.performer.get_or_insert(r);
        }
        consume(p, "role");
    }
    v
}

fn treatment_directive(res: &mut Value, cx: &Cx, out: &mut Outcome) -> TreatmentDirective {
    let mut t = TreatmentDirective {
        identifiers: identifiers(res, "identifier"),
        status: take_str(res, "status"),
        period: period(res, "period", cx.path, out),
        date: when(res, "dateTime", cx.path, out),
        ..Default::default()
    };
    t.treatment = take_extension(res, EXT_TD_TREATMENT)
        .and_then(|mut e| take_concept(&mut e, "valueCodeableConcept"))
        .unwrap_or_default();
    t.permitted =
        take_modifier_extension(res, EXT_TD_PERMITTED).and_then(|mut e| take_concept(&mut e, "valueCodeableConcept"));
    t.comment = take_extension(res, EXT_COMMENT).and_then(|mut e| take_str(&mut e, "valueString"));
    if let Some(mut v) = take_extension(res, EXT_TD_VERIFICATION) {
        let mut ver = Verification::default();
        if let Some(mut e) = take_extension(&mut v, "Verified") {
            ver.verified = take_bool(&mut e, "valueBoolean");
        }
        if let Some(mut e) = take_extension(&mut v, "VerifiedWith") {
            ver.with = take_concept(&mut e, "valueCodeableConcept");
        }
        if let Some(mut e) = take_extension(&mut v, "VerificationDate") {
            ver.date = when(&mut e, "valueDateTime", cx.path, out);
        }
        t.verification = Some(ver);
    }
    // Exceptions change the directive's meaning: each becomes a nested provision.
    for (i, x) in elements(res, "except") {
        let path = format!("{}.except[{i}]", cx.path);
        let mut ex = DirectiveException {
            type_: take_str(x, "type"),
            period: period(x, "period", &path, out),
            actions: take_concepts(x, "action"),
            ..Default::default()
        };
        for (_, c) in elements(x, "code") {
            let coding = coding(c);
            if coding.code.is_some() || coding.display.is_some() {
                ex.codes.push(Concept::coded(coding));
            }
        }
        t.exceptions.push(ex);
    }
    consume(res, "category");
    consume(res, "policy");
    consume(res, "policyRule");
    t
}

fn advance_directive(res: &mut Value, cx: &Cx, out: &mut Outcome) -> AdvanceDirective {
    let mut a = AdvanceDirective {
        identifiers: identifiers(res, "identifier"),
        status: take_str(res, "status"),
        date: when(res, "dateTime", cx.path, out),
        ..Default::default()
    };
    // category: the generic "advance directive" code plus the zib living-will type
    for c in take_concepts(res, "category") {
        let generic = c.has(uri::SNOMED, "11341000146107");
        if !generic && a.directive_type.is_none() {
            a.directive_type = Some(c);
        }
    }
    a.comment = take_extension(res, EXT_COMMENT).and_then(|mut e| take_str(&mut e, "valueString"));
    a.disorder =
        take_extension(res, EXT_AD_DISORDER).and_then(|mut e| take_reference(&mut e, "valueReference", cx.key));
    a.representative = take_references(res, "consentingParty", cx.key).into_iter().next();
    consume(res, "policy");
    consume(res, "policyRule");
    a
}

fn document_reference(res: &mut Value, cx: &Cx, out: &mut Outcome) -> Document {
    let mut d = Document {
        identifiers: member(res, "masterIdentifier").and_then(identifier).into_iter().collect(),
        type_: take_concept(res, "type"),
        status: take_str(res, "status"),
        description: take_str(res, "description"),
        date: when(res, "indexed", cx.path, out).or_else(|| when(res, "date", cx.path, out)),
        authors: take_references(res, "author", cx.key),
        ..Default::default()
    };
    d.identifiers.extend(identifiers(res, "identifier"));
    for (_, c) in elements(res, "content") {
        if let Some(a) = member(c, "attachment") {
            d.content_type = take_str(a, "contentType");
            d.url = take_str(a, "url");
            d.title = take_str(a, "title");
            d.language = take_str(a, "language");
            d.data = take_str(a, "data");
            consume(a, "size");
            consume(a, "hash");
            consume(a, "creation");
        }
        consume(c, "format");
    }
    if let Some(c) = member(res, "context") {
        d.encounter = take_reference(c, "encounter", cx.key);
        for (_, r) in elements(c, "related") {
            if let Some(x) = take_reference(r, "ref", cx.key) {
                d.related.push(x);
            }
        }
    }
    // The confidentiality label is replaced by our data-category label in the output.
    consume(res, "securityLabel");
    consume(res, "docStatus");
    d
}

fn referral(res: &mut Value, cx: &Cx, out: &mut Outcome) -> Referral {
    let mut r = Referral {
        identifiers: identifiers(res, "identifier"),
        status: take_str(res, "status"),
        question: take_str(res, "description"),
        requested_care: take_concepts(res, "serviceRequested").into_iter().next().or_else(|| take_concept(res, "code")),
        reasons: take_concepts(res, "reasonCode"),
        authored_on: when(res, "authoredOn", cx.path, out),
        performer: take_references(res, "recipient", cx.key).into_iter().next(),
        notes: notes(res, "note"),
        ..Default::default()
    };
    if let Some(q) = member(res, "requester") {
        r.requester = take_reference(q, "agent", cx.key);
    }
    consume(res, "intent");
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn invalid_bsn_is_an_error_with_a_path() {
        let v = json!({"resourceType": "Patient", "id": "p", "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "123456789"}]});
        let e = read(v).expect_err("eleven test fails");
        let o = e.to_outcome();
        assert_eq!(o.issues[0].expression.as_deref(), Some("Patient.identifier[0].value"));
    }

    #[test]
    fn two_patients_are_refused() {
        let v = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient", "id": "a"}},
            {"resource": {"resourceType": "Patient", "id": "b"}}]});
        assert!(read(v).is_err());
    }

    #[test]
    fn journal_lines_group_per_encounter_in_soep_order() {
        let line = |id: &str, letter: &str, text: &str| {
            json!({"resource": {"resourceType": "Observation", "id": id,
            "meta": {"profile": [PROFILE_JOURNAL_ENTRY]}, "status": "final",
            "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.4.32.2", "code": letter}]},
            "context": {"reference": "Encounter/e1"}, "valueString": text}})
        };
        let v = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            line("l2", "P", "plan"), line("l1", "S", "klacht"),
            {"resource": {"resourceType": "Encounter", "id": "e1", "status": "finished"}}]});
        let d = read(v).expect("reads");
        let entries: Vec<&JournalEntry> = d
            .items
            .iter()
            .filter_map(|i| match &i.concept {
                ItemConcept::JournalEntry(j) => Some(j),
                _ => None,
            })
            .collect();
        assert_eq!(entries.len(), 1);
        let kinds: Vec<SoapKind> = entries[0].lines.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, vec![SoapKind::Subjective, SoapKind::Plan]);
        assert!(d.outcome.is_empty(), "{:?}", d.outcome);
    }

    #[test]
    fn unknown_types_and_extensions_are_reported() {
        let v = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Basic", "id": "x"}},
            {"resource": {"resourceType": "Flag", "id": "f", "status": "active", "code": {"text": "CAVE"},
             "extension": [{"url": "http://example.org/odd", "valueString": "?"}]}}]});
        let d = read(v).expect("reads");
        let paths: Vec<&str> = d.outcome.issues.iter().filter_map(|i| i.expression.as_deref()).collect();
        assert!(paths.contains(&"Bundle.entry[0].resource"), "{paths:?}");
        assert!(paths.contains(&"Bundle.entry[1].resource.extension[0]"), "{paths:?}");
    }
}
