//! Model → FHIR R4 resources claiming the nl-core (zib2020) and MP9 profiles.
//!
//! Every resource gets a deterministic id (see [`ids`]: the sender, the patient, the
//! resource type and the item's stable source key), `meta.profile`, and exactly one
//! data-category label in `meta.security`. References between items resolve inside the output; a reference to
//! something that is not in the input keeps its display text and identifier, and is
//! reported once.

pub mod bundle;
pub mod datatypes;
pub mod ids;
pub mod narrative;
mod resources;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::diagnostics::{Issue, IssueCode, Outcome};
use crate::model::*;
use crate::terminology::Terminology;

pub use ids::{resource_id, ID_NAMESPACE};

/// Canonical base of our own conformance resources.
pub const OVERDRACHT_BASE: &str = "https://w3id.org/overdracht/fhir";

/// How references are written: inside a transaction Bundle (`urn:uuid:`), or as relative
/// `Type/id` references (NDJSON, where each resource stands alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefStyle {
    Urn,
    Relative,
}

#[derive(Debug, Clone)]
pub struct FhirOptions {
    /// Identifies the sender in resource ids (e.g. `agb-z|01990140`).
    pub sender: String,
    pub ref_style: RefStyle,
}

/// One emitted resource, with what the later stages need to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    pub resource_type: String,
    pub id: String,
    pub category: DataCategory,
    /// The model concept (mapping) that produced it, for error messages.
    pub mapping: &'static str,
    pub source_path: String,
    pub resource: Value,
}

/// The result of the FHIR stage.
#[derive(Debug, Clone, Default)]
pub struct FhirOutput {
    pub resources: Vec<Emitted>,
    pub outcome: Outcome,
}

pub(crate) struct Emitter<'a> {
    pub opts: &'a FhirOptions,
    pub term: &'a Terminology,
    /// item key → (resource type, id)
    targets: BTreeMap<Key, (String, String)>,
    patient: Option<(String, Option<String>)>,
    /// Whose data this is (see [`ids`]).
    scope: String,
    unresolved: BTreeSet<Key>,
    pub outcome: Outcome,
    current_path: String,
}

impl<'a> Emitter<'a> {
    /// The R4 reference for a model reference.
    pub fn reference(&mut self, r: &Ref) -> Value {
        let mut o = datatypes::Obj::new();
        if let Some(key) = &r.key {
            match self.targets.get(key) {
                Some((ty, id)) => {
                    o.set("reference", json!(self.ref_string(ty, id)));
                    o.set("type", json!(ty));
                }
                None => {
                    if self.unresolved.insert(key.clone()) {
                        self.outcome.push(
                            Issue::warning(
                                IssueCode::NotFound,
                                format!("reference to {key}, which is not in the input: kept as display text and identifier only"),
                            )
                            .at(self.current_path.clone()),
                        );
                    }
                }
            }
        }
        if let Some(i) = &r.identifier {
            o.set("identifier", datatypes::identifier(i));
        }
        o.str("display", r.display.as_deref());
        o.build()
    }

    pub fn opt_reference(&mut self, r: &Option<Ref>) -> Option<Value> {
        r.as_ref().map(|r| self.reference(r)).filter(|v| !datatypes::is_empty(v))
    }

    pub fn references(&mut self, rs: &[Ref]) -> Value {
        datatypes::array(rs.iter().map(|r| self.reference(r)).collect::<Vec<_>>())
    }

    fn ref_string(&self, ty: &str, id: &str) -> String {
        match self.opts.ref_style {
            RefStyle::Urn => format!("urn:uuid:{id}"),
            RefStyle::Relative => format!("{ty}/{id}"),
        }
    }

    /// The reference to the dossier's patient (display-only when the input had none).
    pub fn subject(&self) -> Value {
        match &self.patient {
            Some((id, display)) => {
                let mut o = datatypes::Obj::new();
                o.set("reference", json!(self.ref_string("Patient", id)));
                o.set("type", json!("Patient"));
                o.str("display", display.as_deref());
                o.build()
            }
            None => json!({"display": "patient not included in this record"}),
        }
    }

    /// The id of a resource of the patient's that has no item of its own (a journal line).
    pub fn id_for(&self, resource_type: &str, key: &str) -> String {
        resource_id(&self.opts.sender, &self.scope, resource_type, key)
    }
}

/// The FHIR resource type an item becomes.
pub(crate) fn resource_type_of(c: &ItemConcept) -> &str {
    use ItemConcept::*;
    match c {
        HealthProfessional(_) => "Practitioner",
        ProfessionalRole(_) => "PractitionerRole",
        HealthcareProvider(_) => "Organization",
        ContactPerson(_) => "RelatedPerson",
        Problem(_) | LegalSituation(_) => "Condition",
        Episode(_) => "EpisodeOfCare",
        Contact(_) => "Encounter",
        JournalEntry(_) => "Composition",
        Observation(o) if o.kind == ObservationKind::TextResult => "DiagnosticReport",
        Observation(_) => "Observation",
        Allergy(_) => "AllergyIntolerance",
        Alert(_) => "Flag",
        Product(_) => "Medication",
        MedicationAgreement(_) => "MedicationRequest",
        MedicationUse(_) => "MedicationStatement",
        Vaccination(_) => "Immunization",
        TreatmentDirective(_) | AdvanceDirective(_) => "Consent",
        Referral(_) => "ServiceRequest",
        Document(_) => "DocumentReference",
        R4(r) => r.resource.get("resourceType").and_then(Value::as_str).unwrap_or("Basic"),
    }
}

/// Converts a dossier to R4 resources.
pub fn emit(dossier: &Dossier, opts: &FhirOptions) -> FhirOutput {
    let term = Terminology::embedded();
    let scope = ids::patient_scope(dossier);
    let mut targets = BTreeMap::new();
    let patient = dossier.patient.as_ref().map(|p| {
        let id = resource_id(&opts.sender, &scope, "Patient", &p.key);
        targets.insert(p.key.clone(), ("Patient".to_owned(), id.clone()));
        (id, p.names.first().and_then(|n| n.text.clone().or_else(|| n.family_name())))
    });
    // Each item's id, computed once: the patient's scope, or a shared identity.
    let item_ids: Vec<(String, String)> = dossier
        .items
        .iter()
        .map(|item| {
            let ty = resource_type_of(&item.concept).to_owned();
            let id = match ids::shared_key(&ty, &item.concept) {
                Some(key) => resource_id(&opts.sender, "shared", &ty, &key),
                None => resource_id(&opts.sender, &scope, &ty, &item.key),
            };
            (ty, id)
        })
        .collect();
    for (item, (ty, id)) in dossier.items.iter().zip(&item_ids) {
        targets.entry(item.key.clone()).or_insert((ty.clone(), id.clone()));
    }
    // An R4 input refers to its own ids: make those resolve too.
    for item in &dossier.items {
        if let ItemConcept::R4(r) = &item.concept {
            if let (Some(ty), Some(id)) =
                (r.resource.get("resourceType").and_then(Value::as_str), r.resource.get("id").and_then(Value::as_str))
            {
                if let Some(t) = targets.get(&item.key).cloned() {
                    targets.entry(format!("{ty}/{id}")).or_insert(t);
                }
            }
        }
    }
    let mut e = Emitter {
        opts,
        term,
        targets,
        patient,
        scope,
        unresolved: BTreeSet::new(),
        outcome: Outcome::new(),
        current_path: String::new(),
    };
    let mut out = FhirOutput::default();
    if dossier.patient.is_none() && !dossier.items.is_empty() {
        e.outcome.push(Issue::warning(
            IssueCode::Incomplete,
            "the input has no Patient: resources refer to the patient by display text only; send the Patient with the record",
        ));
    }
    if let (Some(p), Some((id, _))) = (&dossier.patient, e.patient.clone()) {
        e.current_path = p.source_path.clone();
        let mut r = resources::patient(&mut e, p, &id);
        narrative::add(&mut r);
        out.resources.push(finish(r, "Patient", id, DataCategory::Identification, "Patient", &p.source_path));
    }
    // Two items of one record may be the same shared resource (one practice named twice):
    // it is emitted once.
    let mut emitted = BTreeSet::new();
    for (item, (ty, id)) in dossier.items.iter().zip(item_ids) {
        if !emitted.insert(id.clone()) {
            continue;
        }
        e.current_path = item.source_path.clone();
        for (mut resource, rid, profile_name) in resources::item(&mut e, item, &ty, &id) {
            narrative::add(&mut resource);
            let rty = resource.get("resourceType").and_then(Value::as_str).unwrap_or(&ty).to_owned();
            out.resources.push(finish(resource, &rty, rid, item.category(), profile_name, &item.source_path));
        }
    }
    out.outcome = e.outcome;
    out
}

fn finish(
    resource: Value,
    ty: &str,
    id: String,
    category: DataCategory,
    mapping: &'static str,
    source_path: &str,
) -> Emitted {
    Emitted { resource_type: ty.to_owned(), id, category, mapping, source_path: source_path.to_owned(), resource }
}

/// `meta` with the profile and our data-category label.
pub(crate) fn meta(profile: &str, category: DataCategory) -> Value {
    json!({
        "profile": [profile],
        "security": [{
            "system": DATA_CATEGORY_SYSTEM,
            "code": category.code(),
            "display": category.display(),
        }]
    })
}

/// The nl-core canonical of a zib profile.
pub(crate) fn nl_core(name: &str) -> String {
    format!("http://nictiz.nl/fhir/StructureDefinition/nl-core-{name}")
}
