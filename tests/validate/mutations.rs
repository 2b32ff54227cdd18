//! Mutation tests: for every profile overdracht emits, a valid fixture (tests/fixtures/validate/,
//! written for these tests after the nl-core examples) and mutated copies of it. Each mutation must
//! be caught at the right FHIRPath expression; the unmutated fixture must have no errors.

use std::path::PathBuf;

use overdracht::validate::{Outcome, Severity, Validator};
use serde_json::{json, Value};

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/validate").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

enum Op {
    /// Remove the element at the JSON pointer.
    Remove(&'static str),
    /// Turn a single value into an array or an array into its first value.
    Toggle(&'static str),
    /// Set (or add) a value at the JSON pointer; the parent must exist.
    Set(&'static str, Value),
}

fn apply(mut v: Value, op: &Op) -> Value {
    let (ptr, new) = match op {
        Op::Remove(p) => (*p, None),
        Op::Toggle(p) => {
            let old = v.pointer(p).cloned().unwrap_or_else(|| panic!("{p} not in fixture"));
            let new = match old {
                Value::Array(mut a) => a.remove(0),
                other => json!([other]),
            };
            (*p, Some(new))
        }
        Op::Set(p, x) => (*p, Some(x.clone())),
    };
    let (parent, key) = ptr.rsplit_once('/').expect("pointer has a parent");
    let target = v.pointer_mut(parent).unwrap_or_else(|| panic!("{parent} not in fixture"));
    match (target, new) {
        (Value::Object(o), None) => {
            o.remove(key).unwrap_or_else(|| panic!("{ptr} not in fixture"));
        }
        (Value::Object(o), Some(x)) => {
            o.insert(key.to_string(), x);
        }
        (Value::Array(a), Some(x)) => a[key.parse::<usize>().expect("index")] = x,
        (Value::Array(a), None) => {
            a.remove(key.parse::<usize>().expect("index"));
        }
        _ => panic!("{parent} is not a container"),
    }
    v
}

/// One fixture and its mutations, each with the expression where it must be reported.
struct Case {
    name: &'static str,
    required: Option<(Op, &'static str)>,
    cardinality: (Op, &'static str),
    date: (Op, &'static str),
    binding: (Op, &'static str),
    /// A wrong system/code in a slice; `Severity::Warning` where the slice is optional (the value then
    /// simply does not count as that slice, which the profile allows, so only a near-miss warning).
    slice: Option<(Op, &'static str, Severity)>,
}

fn bad(s: &str) -> Value {
    json!(s)
}

fn cases() -> Vec<Case> {
    use Op::*;
    let obs_status = |t: &'static str| (Set("/status", bad("done")), t);
    vec![
        Case {
            name: "nl-core-Patient",
            required: Some((Remove("/communication/0/language"), "Patient.communication[0].language")),
            cardinality: (Toggle("/gender"), "Patient.gender"),
            date: (Set("/birthDate", bad("1944-13-45")), "Patient.birthDate"),
            binding: (Set("/gender", bad("banana")), "Patient.gender"),
            slice: Some((
                Set("/identifier/0/system", bad("http://fhir.nl/fhir/NamingSystem/BSN")),
                "Patient.identifier[0].system",
                Severity::Warning,
            )),
        },
        Case {
            name: "nl-core-HealthProfessional-Practitioner",
            required: Some((Remove("/qualification/0/code"), "Practitioner.qualification[0].code")),
            cardinality: (Toggle("/gender"), "Practitioner.gender"),
            date: (Set("/birthDate", bad("1970-02-30")), "Practitioner.birthDate"),
            binding: (Set("/gender", bad("f")), "Practitioner.gender"),
            slice: Some((
                Set("/identifier/0/system", bad("http://fhir.nl/fhir/NamingSystem/BIG")),
                "Practitioner.identifier[0].system",
                Severity::Warning,
            )),
        },
        Case {
            name: "nl-core-HealthProfessional-PractitionerRole",
            // cpt-2: a ContactPoint with a value needs a system
            required: Some((Remove("/telecom/0/system"), "PractitionerRole.telecom[0]")),
            cardinality: (Toggle("/practitioner"), "PractitionerRole.practitioner"),
            date: (Set("/period", json!({"start": "2024-13-01"})), "PractitionerRole.period.start"),
            binding: (Set("/telecom/0/system", bad("fax-machine")), "PractitionerRole.telecom[0].system"),
            // the specialty slice is discriminated by a binding to a Nictiz value set (not shipped)
            slice: None,
        },
        Case {
            name: "nl-core-HealthcareProvider-Organization",
            required: Some((Remove("/telecom/0/system"), "Organization.telecom[0]")),
            cardinality: (Toggle("/name"), "Organization.name"),
            date: (Set("/address/0/period", json!({"start": "2020-02-30"})), "Organization.address[0].period.start"),
            binding: (Set("/address/0/use", bad("office")), "Organization.address[0].use"),
            slice: Some((
                Set("/identifier/1/system", bad("http://fhir.nl/fhir/NamingSystem/URA")),
                "Organization.identifier[1].system",
                Severity::Warning,
            )),
        },
        Case {
            name: "nl-core-ContactPerson",
            required: Some((Remove("/patient"), "RelatedPerson.patient")),
            cardinality: (Toggle("/gender"), "RelatedPerson.gender"),
            date: (Set("/birthDate", bad("1960-00-10")), "RelatedPerson.birthDate"),
            binding: (Set("/gender", bad("woman")), "RelatedPerson.gender"),
            slice: None,
        },
        Case {
            name: "nl-core-Problem",
            required: Some((Remove("/subject"), "Condition.subject")),
            cardinality: (Toggle("/clinicalStatus"), "Condition.clinicalStatus"),
            date: (Set("/onsetDateTime", bad("2015-06-31")), "Condition.onsetDateTime"),
            binding: (Set("/clinicalStatus/coding/0/code", bad("sleeping")), "Condition.clinicalStatus"),
            slice: None,
        },
        Case {
            name: "nl-core-EpisodeOfCare",
            required: Some((Remove("/patient"), "EpisodeOfCare.patient")),
            cardinality: (Toggle("/status"), "EpisodeOfCare.status"),
            date: (Set("/period/start", bad("2015-6-1")), "EpisodeOfCare.period.start"),
            binding: (Set("/status", bad("ongoing")), "EpisodeOfCare.status"),
            slice: None,
        },
        Case {
            name: "nl-core-Encounter",
            required: Some((Remove("/class"), "Encounter.class")),
            cardinality: (Toggle("/status"), "Encounter.status"),
            date: (Set("/period/start", bad("2024-03-05 10:00")), "Encounter.period.start"),
            binding: (Set("/status", bad("done")), "Encounter.status"),
            slice: None,
        },
        Case {
            name: "nl-core-SOAPReport",
            required: Some((Remove("/title"), "Composition.title")),
            cardinality: (Toggle("/date"), "Composition.date"),
            date: (Set("/date", bad("05-03-2024")), "Composition.date"),
            binding: (Set("/status", bad("ready")), "Composition.status"),
            slice: None,
        },
        Case {
            name: "nl-core-SOAPReport.SOAPLine",
            required: Some((Remove("/code"), "Observation.code")),
            cardinality: (Toggle("/status"), "Observation.status"),
            date: (Set("/effectiveDateTime", bad("2024-03-05T10:15")), "Observation.effectiveDateTime"),
            binding: obs_status("Observation.status"),
            slice: None,
        },
        Case {
            name: "nl-core-LaboratoryTestResult",
            required: Some((Remove("/code"), "Observation.code")),
            cardinality: (Toggle("/status"), "Observation.status"),
            date: (Set("/effectiveDateTime", bad("2024-02-30T08:30:00+01:00")), "Observation.effectiveDateTime"),
            binding: obs_status("Observation.status"),
            // category:laboratoryCategory is 1..1
            slice: Some((Set("/category/0/coding/0/code", bad("lab")), "Observation.category", Severity::Error)),
        },
        Case {
            name: "nl-core-BloodPressure",
            required: Some((Remove("/subject"), "Observation.subject")),
            cardinality: (Toggle("/status"), "Observation.status"),
            date: (Set("/effectiveDateTime", bad("2024-03-05T25:15:00+01:00")), "Observation.effectiveDateTime"),
            binding: obs_status("Observation.status"),
            // category:VSCat is 1..1
            slice: Some((
                Set("/category/0/coding/0/system", bad("http://hl7.org/fhir/observation-category")),
                "Observation.category",
                Severity::Error,
            )),
        },
        Case {
            name: "nl-core-BodyWeight",
            required: Some((Remove("/effectiveDateTime"), "Observation.effective")),
            cardinality: (Toggle("/status"), "Observation.status"),
            date: (Set("/effectiveDateTime", bad("2024-03-05T10:15:00")), "Observation.effectiveDateTime"),
            binding: obs_status("Observation.status"),
            slice: Some((Set("/category/0/coding/0/code", bad("vital-sign")), "Observation.category", Severity::Error)),
        },
        vital("nl-core-BodyHeight"),
        vital("nl-core-HeadCircumference"),
        vital("nl-core-BodyTemperature"),
        vital("nl-core-HeartRate"),
        vital("nl-core-O2Saturation"),
        lifestyle("nl-core-AlcoholUse"),
        lifestyle("nl-core-TobaccoUse"),
        lifestyle("nl-core-DrugUse"),
        lifestyle("nl-core-LivingSituation"),
        lifestyle("nl-core-FunctionalOrMentalStatus"),
        lifestyle("nl-core-DevelopmentChild"),
        Case {
            name: "nl-core-AllergyIntolerance",
            required: Some((Remove("/patient"), "AllergyIntolerance.patient")),
            cardinality: (Toggle("/criticality"), "AllergyIntolerance.criticality"),
            date: (Set("/recordedDate", bad("14-09-2012")), "AllergyIntolerance.recordedDate"),
            binding: (Set("/criticality", bad("very-high")), "AllergyIntolerance.criticality"),
            slice: None,
        },
        Case {
            name: "nl-core-Alert",
            required: Some((Remove("/code"), "Flag.code")),
            cardinality: (Toggle("/status"), "Flag.status"),
            date: (Set("/period/start", bad("2019-04-00")), "Flag.period.start"),
            binding: (Set("/status", bad("open")), "Flag.status"),
            slice: None,
        },
        Case {
            name: "nl-core-PharmaceuticalProduct",
            required: Some((Remove("/ingredient/0/itemCodeableConcept"), "Medication.ingredient[0].item")),
            cardinality: (Toggle("/code"), "Medication.code"),
            date: (Set("/batch", json!({"expirationDate": "2025-02-30"})), "Medication.batch.expirationDate"),
            binding: (Set("/status", bad("expired")), "Medication.status"),
            slice: None,
        },
        Case {
            name: "nl-core-Vaccination-event",
            required: Some((Remove("/vaccineCode"), "Immunization.vaccineCode")),
            cardinality: (Toggle("/status"), "Immunization.status"),
            date: (Set("/occurrenceDateTime", bad("12-10-2023")), "Immunization.occurrenceDateTime"),
            binding: (Set("/status", bad("given")), "Immunization.status"),
            slice: None,
        },
        consent("nl-core-TreatmentDirective2"),
        consent("nl-core-AdvanceDirective"),
        Case {
            name: "nl-core-LegalSituation-LegalStatus",
            required: Some((Remove("/subject"), "Condition.subject")),
            cardinality: (Toggle("/code"), "Condition.code"),
            date: (Set("/onsetDateTime", bad("2022-3-1")), "Condition.onsetDateTime"),
            binding: (
                Set(
                    "/clinicalStatus",
                    json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "gone"}]}),
                ),
                "Condition.clinicalStatus",
            ),
            slice: Some((Set("/category/0/coding/0/code", bad("303186006")), "Condition.category", Severity::Error)),
        },
        Case {
            name: "nl-core-LegalSituation-Representation",
            required: Some((Remove("/code"), "Condition.code")),
            cardinality: (Toggle("/subject"), "Condition.subject"),
            date: (Set("/onsetDateTime", bad("2022-03-01T12:00:00")), "Condition.onsetDateTime"),
            binding: (
                Set(
                    "/verificationStatus",
                    json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "sure"}]}),
                ),
                "Condition.verificationStatus",
            ),
            slice: Some((
                Set("/category/0/coding/0/system", bad("http://snomed.info/id")),
                "Condition.category",
                Severity::Error,
            )),
        },
        Case {
            name: "nl-core-CareTeam",
            // Nothing in CareTeam is required by R4 or nl-core outside slices discriminated by
            // resolve(); Annotation.text is.
            required: Some((Remove("/note/0/text"), "CareTeam.note[0].text")),
            cardinality: (Toggle("/subject"), "CareTeam.subject"),
            date: (Set("/period/start", bad("2024-01-08T09:00:00")), "CareTeam.period.start"),
            binding: (Set("/status", bad("running")), "CareTeam.status"),
            slice: None,
        },
        Case {
            name: "mp-MedicationAgreement",
            required: Some((Remove("/subject"), "MedicationRequest.subject")),
            cardinality: (Toggle("/status"), "MedicationRequest.status"),
            date: (Set("/authoredOn", bad("2024-01-32")), "MedicationRequest.authoredOn"),
            binding: (Set("/intent", bad("suggestion")), "MedicationRequest.intent"),
            slice: None,
        },
        Case {
            name: "mp-MedicationUse2",
            required: Some((Remove("/subject"), "MedicationStatement.subject")),
            cardinality: (Toggle("/status"), "MedicationStatement.status"),
            date: (Set("/dateAsserted", bad("2024-03-05T24:00:00Z")), "MedicationStatement.dateAsserted"),
            binding: (Set("/status", bad("taking")), "MedicationStatement.status"),
            slice: None,
        },
        Case {
            name: "Referral",
            required: Some((Remove("/subject"), "ServiceRequest.subject")),
            cardinality: (Toggle("/status"), "ServiceRequest.status"),
            date: (Set("/authoredOn", bad("2024-03-05T11:00:00+1:00")), "ServiceRequest.authoredOn"),
            binding: (Set("/status", bad("pending")), "ServiceRequest.status"),
            // meta.security:dataCategory is 1..1
            slice: Some((
                Set("/meta/security/0/system", bad("https://w3id.org/overdracht/fhir/CodeSystem/data-categories")),
                "ServiceRequest.meta.security",
                Severity::Error,
            )),
        },
        Case {
            name: "Document",
            required: Some((Remove("/subject"), "DocumentReference.subject")),
            cardinality: (Toggle("/status"), "DocumentReference.status"),
            // DocumentReference.date is an instant: a time and an offset are required
            date: (Set("/date", bad("2024-03-05")), "DocumentReference.date"),
            binding: (Set("/status", bad("draft")), "DocumentReference.status"),
            slice: Some((Remove("/meta/security/0/system"), "DocumentReference.meta.security", Severity::Error)),
        },
    ]
}

fn vital(name: &'static str) -> Case {
    use Op::*;
    Case {
        name,
        required: Some((Remove("/code"), "Observation.code")),
        cardinality: (Toggle("/status"), "Observation.status"),
        date: (Set("/effectiveDateTime", bad("2024-03-05T10:15:00")), "Observation.effectiveDateTime"),
        binding: (Set("/status", bad("done")), "Observation.status"),
        slice: None,
    }
}

fn lifestyle(name: &'static str) -> Case {
    use Op::*;
    Case {
        name,
        required: Some((Remove("/status"), "Observation.status")),
        cardinality: (Toggle("/code"), "Observation.code"),
        date: (Set("/effectivePeriod/start", bad("2010-01-01T00:00")), "Observation.effectivePeriod.start"),
        binding: (Set("/status", bad("current")), "Observation.status"),
        slice: None,
    }
}

fn consent(name: &'static str) -> Case {
    use Op::*;
    Case {
        name,
        required: Some((Remove("/scope"), "Consent.scope")),
        cardinality: (Toggle("/category"), "Consent.category"),
        date: (Set("/dateTime", bad("2021-11-02T10:00")), "Consent.dateTime"),
        binding: (Set("/status", bad("valid")), "Consent.status"),
        slice: None,
    }
}

fn show(o: &Outcome) -> String {
    o.issues.iter().map(|i| format!("\n  {i}")).collect()
}

fn caught(o: &Outcome, expr: &str, severity: Severity) -> bool {
    o.issues.iter().any(|i| i.expression.as_deref() == Some(expr) && i.severity == severity)
}

#[test]
fn every_emitted_profile_has_a_valid_fixture() {
    let v = Validator::embedded();
    for case in cases() {
        let r = fixture(case.name);
        let o = v.validate(&r);
        assert!(!o.has_errors(), "{}: {}", case.name, show(&o));
        assert_eq!(o.count(Severity::Warning), 0, "{}: {}", case.name, show(&o));
        // Profiles we do not ship are named, once, as information.
        let known =
            r["meta"]["profile"].as_array().into_iter().flatten().filter_map(Value::as_str).all(|p| v.knows_profile(p));
        let unknown_profile_notes = o
            .issues
            .iter()
            .filter(|i| i.severity == Severity::Information && i.diagnostics.contains("not known locally"))
            .count();
        assert_eq!(unknown_profile_notes, usize::from(!known), "{}: {}", case.name, show(&o));
    }
}

#[test]
fn every_mutation_is_caught_at_its_expression() {
    let v = Validator::embedded();
    let mut missed = Vec::new();
    let mut count = 0;
    for case in cases() {
        let r = fixture(case.name);
        let rt = r["resourceType"].as_str().expect("fixture has a resourceType").to_string();
        let mut muts: Vec<(&str, &Op, String, Severity)> = vec![
            ("cardinality", &case.cardinality.0, case.cardinality.1.to_string(), Severity::Error),
            ("date", &case.date.0, case.date.1.to_string(), Severity::Error),
            ("binding", &case.binding.0, case.binding.1.to_string(), Severity::Error),
        ];
        if let Some((op, e)) = &case.required {
            muts.push(("required", op, e.to_string(), Severity::Error));
        }
        if let Some((op, e, s)) = &case.slice {
            muts.push(("slice", op, e.to_string(), *s));
        }
        let unknown = Op::Set("/colour", json!("red"));
        muts.push(("unknown element", &unknown, format!("{rt}.colour"), Severity::Error));
        let category = Op::Set("/meta/security/0/code", json!("gossip"));
        muts.push(("data category", &category, format!("{rt}.meta.security[0].code"), Severity::Error));
        for (what, op, expr, severity) in muts {
            count += 1;
            let o = v.validate(&apply(r.clone(), op));
            if !caught(&o, &expr, severity) {
                missed.push(format!(
                    "{} / {what}: expected {} at {expr}, got:{}",
                    case.name,
                    severity.as_str(),
                    show(&o)
                ));
            }
        }
    }
    assert!(missed.is_empty(), "{} of {count} mutations missed:\n{}", missed.len(), missed.join("\n"));
}

#[test]
fn a_transaction_bundle_of_all_fixtures_is_valid_and_prefixes_expressions() {
    let v = Validator::embedded();
    let entries: Vec<Value> = cases()
        .iter()
        .map(|c| {
            let r = fixture(c.name);
            let url = format!("{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or(""));
            json!({"fullUrl": format!("urn:uuid:{}", c.name), "resource": r, "request": {"method": "PUT", "url": url}})
        })
        .collect();
    let mut bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let o = v.validate(&bundle);
    assert!(!o.has_errors(), "{}", show(&o));
    bundle["entry"][0]["resource"]["birthDate"] = json!("1944-02-30");
    bundle["entry"][1]["fullUrl"] = bundle["entry"][0]["fullUrl"].clone();
    let o = v.validate(&bundle);
    assert!(caught(&o, "Bundle.entry[0].resource.birthDate", Severity::Error), "{}", show(&o));
    assert!(caught(&o, "Bundle.entry[1].fullUrl", Severity::Error), "{}", show(&o));
}
