//! FHIR R4 JSON (hospital BgZ, nl-core) → model.
//!
//! Resources that already claim an nl-core or MP9 profile are passed on as they are
//! (new deterministic ids, references rewritten, our data-category label added).
//! Resources without such a profile get the nl-core profile of their zib where one
//! applies; the rest are reported and not passed on. The Patient is read into the
//! model like any other source's, so that the BSN rule and identity handling are shared.

use serde_json::Value;

use super::consume::count_elements;
use super::stu3::{patient, Cx};
use super::{Keys, SourceError};
use crate::diagnostics::{Issue, IssueCode, Outcome};
use crate::model::*;
use crate::terminology::{maps, Terminology};

const NICTIZ: &str = "http://nictiz.nl/fhir/StructureDefinition/";

/// True if a JSON resource is R4 rather than STU3: by its profiles (nl-core R4 and MP9
/// live under `http://nictiz.nl/fhir/StructureDefinition/nl-core-` / `mp-`; the STU3
/// GP profiles are `gp-`, `zib-` and `http://fhir.nl/...nl-core-*` in lower case), or by
/// shapes only R4 has.
pub fn looks_like_r4(v: &Value) -> bool {
    let resources: Vec<&Value> = match v.get("entry").and_then(Value::as_array) {
        Some(entries) if v.get("resourceType").and_then(Value::as_str) == Some("Bundle") => {
            entries.iter().filter_map(|e| e.get("resource")).collect()
        }
        _ => vec![v],
    };
    let mut r4 = 0;
    let mut stu3 = 0;
    for r in resources {
        for p in r.pointer("/meta/profile").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            match p.strip_prefix(NICTIZ) {
                Some(name) if name.starts_with("nl-core-") || name.starts_with("mp-") => r4 += 1,
                Some(name) if name.starts_with("gp-") || name.starts_with("zib-") => stu3 += 1,
                _ if p.starts_with("http://fhir.nl/fhir/StructureDefinition/nl-core-") => stu3 += 1,
                _ => {}
            }
        }
        // R4-only shapes: CodeableConcept statuses, Observation.encounter, Immunization.occurrence
        if r.get("clinicalStatus").is_some_and(Value::is_object) || r.get("occurrenceDateTime").is_some() {
            r4 += 1;
        }
        if r.get("clinicalStatus").is_some_and(Value::is_string)
            || r.pointer("/requester/agent").is_some()
            || r.get("context").is_some_and(|c| c.get("reference").is_some())
        {
            stu3 += 1;
        }
    }
    r4 > stu3
}

/// The data category of an R4 resource, from its nl-core profile or its type.
fn category_of(resource_type: &str, profile: Option<&str>) -> Option<DataCategory> {
    use DataCategory::*;
    let name = profile.and_then(|p| p.strip_prefix(NICTIZ)).unwrap_or("");
    let zib = name.strip_prefix("nl-core-").unwrap_or(name);
    let by_profile = match zib {
        "Problem" | "Procedure-event" => Some(Problems),
        "EpisodeOfCare" => Some(Episodes),
        z if z == "Encounter" || z.starts_with("SOAPReport") => Some(Journal),
        z if z.starts_with("LaboratoryTestResult") || z.starts_with("TextResult") => Some(LabResults),
        "BloodPressure" | "BodyWeight" | "BodyHeight" | "HeadCircumference" | "BodyTemperature" | "HeartRate"
        | "PulseRate" | "O2Saturation" | "RespiratoryRate" => Some(VitalSigns),
        "AlcoholUse" | "TobaccoUse" | "DrugUse" => Some(Lifestyle),
        "LivingSituation" | "HelpFromOthers" | "ParticipationInSociety" => Some(LivingSituation),
        z if z.starts_with("FunctionalOrMentalStatus")
            || z.starts_with("DevelopmentChild")
            || z.starts_with("BarthelADLIndex")
            || z.starts_with("Mobility")
            || z.starts_with("Ability") =>
        {
            Some(FunctionalStatus)
        }
        "AllergyIntolerance" => Some(Allergies),
        "Alert" | "MedicationContraIndication" => Some(Alerts),
        "PharmaceuticalProduct" => Some(Medication),
        z if z.starts_with("mp-") => Some(Medication),
        z if z.starts_with("Vaccination") => Some(Vaccinations),
        "TreatmentDirective2" | "AdvanceDirective" => Some(Directives),
        "ContactPerson" => Some(ContactPersons),
        z if z.starts_with("LegalSituation") => Some(LegalSituation),
        z if z.starts_with("HealthProfessional") || z.starts_with("HealthcareProvider") => Some(CareProviders),
        "CareTeam" => Some(CarePlan),
        // zib MedicalDevice (aids the patient depends on) goes with functional status.
        z if z.starts_with("MedicalDevice") => Some(FunctionalStatus),
        // Wzd/Wvggz measures belong with the legal situation that authorises them.
        "FreedomRestrictingIntervention" => Some(LegalSituation),
        // zib Payer: the patient's insurance, part of identification data.
        z if z.starts_with("Payer") => Some(Identification),
        _ => None,
    };
    by_profile.or(match resource_type {
        "Condition" => Some(Problems),
        "EpisodeOfCare" => Some(Episodes),
        "Encounter" | "Composition" => Some(Journal),
        "AllergyIntolerance" => Some(Allergies),
        "Flag" => Some(Alerts),
        "Medication"
        | "MedicationRequest"
        | "MedicationStatement"
        | "MedicationDispense"
        | "MedicationAdministration" => Some(Medication),
        "Immunization" | "ImmunizationRecommendation" => Some(Vaccinations),
        "RelatedPerson" => Some(ContactPersons),
        "Practitioner" | "PractitionerRole" | "Organization" | "Location" => Some(CareProviders),
        "DocumentReference" => Some(Documents),
        "ServiceRequest" => Some(Referral),
        "CarePlan" | "Goal" | "CareTeam" => Some(CarePlan),
        _ => None,
    })
}

/// The nl-core profile a resource without one gets, where a zib applies.
fn default_profile(resource_type: &str, v: &Value) -> Option<String> {
    let zib = match resource_type {
        "Practitioner" => "nl-core-HealthProfessional-Practitioner",
        "PractitionerRole" => "nl-core-HealthProfessional-PractitionerRole",
        "Organization" => "nl-core-HealthcareProvider-Organization",
        "RelatedPerson" => "nl-core-ContactPerson",
        "Condition" => "nl-core-Problem",
        "EpisodeOfCare" => "nl-core-EpisodeOfCare",
        "Encounter" => "nl-core-Encounter",
        "AllergyIntolerance" => "nl-core-AllergyIntolerance",
        "Flag" => "nl-core-Alert",
        "Immunization" => "nl-core-Vaccination-event",
        "Medication" => "nl-core-PharmaceuticalProduct",
        "MedicationRequest" => "mp-MedicationAgreement",
        "MedicationStatement" => "mp-MedicationUse2",
        "Observation" => {
            let codings: Vec<Coding> = v
                .pointer("/code/coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| Coding {
                    system: c.get("system").and_then(Value::as_str).map(str::to_owned),
                    code: c.get("code").and_then(Value::as_str).map(str::to_owned),
                    display: None,
                })
                .collect();
            let kind = Terminology::embedded()
                .translate_any(maps::DIAGNOSTIC_RESULT_TO_ZIB, &codings)
                .and_then(|c| c.code.as_deref())
                .and_then(ObservationKind::from_zib)
                .unwrap_or(ObservationKind::LaboratoryTestResult);
            // nl-core-TextResult is a DiagnosticReport profile: an R4 Observation of an imaging
            // code keeps the profile it claims rather than getting a wrong one.
            if kind == ObservationKind::TextResult {
                return None;
            }
            return Some(format!("{NICTIZ}nl-core-{}", kind.zib()));
        }
        _ => return None,
    };
    Some(format!("{NICTIZ}{zib}"))
}

/// Reads an R4 resource or Bundle.
pub fn read(v: Value) -> Result<Dossier, SourceError> {
    let mut d = Dossier::default();
    let resources: Vec<(String, Value)> = match v.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") => v
            .get("entry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, e)| e.get("resource").map(|r| (format!("Bundle.entry[{i}].resource"), r.clone())))
            .collect(),
        Some(rt) => vec![(rt.to_owned(), v.clone())],
        None => return Err(SourceError::invalid("$", "not a FHIR resource: 'resourceType' is missing")),
    };
    d.coverage.source_elements = resources.iter().map(|(_, r)| count_elements(r)).sum();
    let mut keys = Keys::default();
    for (path, mut r) in resources {
        let rt = r.get("resourceType").and_then(Value::as_str).unwrap_or("").to_owned();
        // Its id, or its content (never its position in the Bundle).
        let key = match r.get("id").and_then(Value::as_str) {
            Some(id) => format!("{rt}/{id}"),
            None => keys.claim(Keys::of_json(&rt, &r)),
        };
        if rt == "Patient" {
            if d.patient.is_some() {
                return Err(SourceError::invalid(
                    path,
                    "the input holds more than one Patient; send one dossier per patient",
                ));
            }
            // The Patient is read into the model (BSN rule, identity) and passed on as it is,
            // with the nl-core-Patient profile: nothing it carries is lost.
            let mut original = r.clone();
            let mut out = Outcome::new();
            for k in ["resourceType", "id", "meta", "text"] {
                super::consume::consume(&mut r, k);
            }
            let mut p = patient(&mut r, &Cx { key: &key, path: &path }, &mut out)?;
            if let Some(m) = original.as_object_mut() {
                let meta = m.entry("meta").or_insert_with(|| serde_json::json!({}));
                if let Some(mm) = meta.as_object_mut() {
                    mm.insert("profile".into(), serde_json::json!([format!("{NICTIZ}nl-core-Patient")]));
                }
            }
            p.r4 = Some(original);
            d.outcome.extend(out);
            d.patient = Some(p);
            continue;
        }
        if rt == "OperationOutcome" {
            d.coverage.unmapped_elements += count_elements(&r);
            continue;
        }
        let claimed = r
            .pointer("/meta/profile")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|p| p.starts_with(&format!("{NICTIZ}nl-core-")) || p.starts_with(&format!("{NICTIZ}mp-")))
            .map(str::to_owned);
        let profile = match claimed {
            Some(p) => p,
            None => match default_profile(&rt, &r) {
                Some(p) => {
                    d.outcome.push(
                        Issue::information(IssueCode::Informational, format!("no nl-core profile claimed: given {p}"))
                            .at(path.clone()),
                    );
                    if let Some(m) = r.as_object_mut() {
                        m.insert("meta".into(), serde_json::json!({"profile": [p]}));
                    }
                    p
                }
                None => {
                    d.coverage.unmapped_elements += count_elements(&r);
                    d.outcome.push(
                        Issue::leftover(
                            super::leftover::resource_type(&rt),
                            format!("{rt} has no nl-core profile to carry it and is not passed on"),
                        )
                        .at(path.clone()),
                    );
                    continue;
                }
            },
        };
        let Some(category) = category_of(&rt, Some(&profile)) else {
            d.coverage.unmapped_elements += count_elements(&r);
            d.outcome.push(
                Issue::leftover(
                    super::leftover::resource_type(&rt),
                    format!("{rt} ({profile}) has no data category and is not passed on"),
                )
                .at(path.clone()),
            );
            continue;
        };
        // keep only the nl-core/MP9 profile: other claims are not validated here
        if let Some(m) = r.pointer_mut("/meta").and_then(Value::as_object_mut) {
            m.insert("profile".into(), serde_json::json!([profile]));
        }
        d.items.push(Item { key, source_path: path, concept: ItemConcept::R4(R4Resource { resource: r, category }) });
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_r4_by_profile_and_shape() {
        assert!(looks_like_r4(
            &json!({"resourceType": "Condition", "meta": {"profile": ["http://nictiz.nl/fhir/StructureDefinition/nl-core-Problem"]}})
        ));
        assert!(!looks_like_r4(
            &json!({"resourceType": "Condition", "meta": {"profile": ["http://nictiz.nl/fhir/StructureDefinition/zib-Problem"]}})
        ));
        assert!(looks_like_r4(&json!({"resourceType": "Condition", "clinicalStatus": {"coding": []}})));
        assert!(!looks_like_r4(&json!({"resourceType": "Condition", "clinicalStatus": "active"})));
    }

    #[test]
    fn unprofiled_resources_are_reprofiled_or_reported() {
        let d = read(json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Condition", "id": "c", "code": {"text": "x"}, "subject": {"reference": "Patient/p"}}},
            {"resource": {"resourceType": "Basic", "id": "b"}}]}))
        .expect("reads");
        assert_eq!(d.items.len(), 1);
        match &d.items[0].concept {
            ItemConcept::R4(r) => assert_eq!(
                r.resource["meta"]["profile"][0],
                "http://nictiz.nl/fhir/StructureDefinition/nl-core-Problem"
            ),
            other => panic!("{other:?}"),
        }
        assert!(d.outcome.issues.iter().any(|i| i.expression.as_deref() == Some("Bundle.entry[1].resource")));
    }
}
