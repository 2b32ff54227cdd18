//! Two routes, one truth: Nictiz's own STU3 conversion of the NHG Professional Summary sample,
//! read through our STU3-XML route, against our direct HL7v3 route of the same message.
//!
//! The clinical content must agree (codes, dates, links, identifiers), except where Nictiz's
//! conversion is known to be wrong or lossy; each such difference is asserted here as what it
//! is, so that a change on either side shows:
//! 1. Nictiz writes every time with a fixed +01:00 offset; summer times are +02:00 (ours).
//! 2. Nictiz drops the S and O journal lines; its E and P lines are all in ours.
//! 3. Nictiz files the contra-indications as AllergyIntolerance; ours are Flags (nl-core-Alert).
//! 4. Nictiz's Patient has no BSN, gender or birth date (and telecom the message does not have).
//! 5. Nictiz gives the prescriptions status `completed`; the message says `active`.
//! 6. Nictiz leaves the unknown result (nullFlavor UNK) without a value or data-absent reason.
//! 7. Nictiz makes each encounter ObservationDx a Condition; ours keeps those ids on the E line
//!    the ObservationDx codes (so every Nictiz Condition identifier is in our output).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use crate::oracle::convert;
use common::*;
use overdracht::convert::ConvertOptions;
use overdracht::source::Format;
use serde_json::Value;

fn resources<'a>(b: &'a Value, ty: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    b["entry"].as_array().into_iter().flatten().map(|e| &e["resource"]).filter(move |r| r["resourceType"] == ty)
}

fn is_soap_line(r: &Value) -> bool {
    r["meta"]["profile"][0].as_str().is_some_and(|p| p.ends_with("SOAPReport.SOAPLine"))
}

fn first_id(r: &Value) -> String {
    r["identifier"][0]["value"].as_str().unwrap_or_default().to_owned()
}

/// A date-time without its offset, and the offset.
fn split_offset(s: &str) -> (String, String) {
    if s.len() > 19 {
        (s[..19].to_owned(), s[19..].to_owned())
    } else {
        (s.to_owned(), String::new())
    }
}

/// Same local time; Nictiz's offset is +01:00 where ours is +01:00 or +02:00 (difference 1).
fn same_time(ours: &str, nictiz: &str) {
    let (a, ao) = split_offset(ours);
    let (b, bo) = split_offset(nictiz);
    assert_eq!(a, b, "local time");
    if !bo.is_empty() {
        assert_eq!(bo, "+01:00", "Nictiz's offset is fixed");
        assert!(ao == "+01:00" || ao == "+02:00", "ours is Dutch time: {ours}");
    }
}

#[test]
#[ignore = "reads ../shared/reference; run with --ignored"]
fn reference_two_routes_one_truth() {
    let dir = require_reference().join("professionele-samenvatting");
    let opts = ConvertOptions::default();
    let direct = convert(&std::fs::read(dir.join("QUPC_IN990002NL_01.xml")).expect("message"), &opts).expect("hl7v3");
    let nictiz_c =
        convert(&std::fs::read(dir.join("nictiz-stu3-conversion.xml")).expect("nictiz"), &opts).expect("stu3 xml");
    assert_eq!(nictiz_c.format, Format::FhirStu3Xml);
    assert_eq!(nictiz_c.clinical_leftovers(), 0, "{:?}", nictiz_c.outcome);
    let (ours, nictiz) = (direct.bundle(), nictiz_c.bundle());

    // Episodes: same identifiers and statuses.
    let eps = |b: &Value| -> BTreeMap<String, Value> {
        resources(b, "EpisodeOfCare").map(|r| (first_id(r), r["status"].clone())).collect()
    };
    assert_eq!(eps(&ours), eps(&nictiz));
    assert_eq!(eps(&ours).len(), 6);

    // Problems: every Nictiz Condition identifier is in our output (difference 7), and the
    // episode concerns have the same ICPC codes.
    let mut our_ids = BTreeSet::new();
    for ty in ["Condition", "Observation"] {
        for r in resources(&ours, ty) {
            for i in r["identifier"].as_array().into_iter().flatten() {
                our_ids.insert(i.to_string());
            }
        }
    }
    let codes = |b: &Value| -> BTreeMap<String, String> {
        resources(b, "Condition")
            .filter(|r| r["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icpc-1-nl")
            .map(|r| (first_id(r), r["code"]["coding"][0]["code"].as_str().unwrap_or_default().to_owned()))
            .collect()
    };
    let nictiz_codes = codes(&nictiz);
    for (id, code) in codes(&ours) {
        if let Some(n) = nictiz_codes.get(&id) {
            assert_eq!(&code, n, "problem {id}");
        }
    }
    let mut n_conditions = 0;
    for r in resources(&nictiz, "Condition") {
        for i in r["identifier"].as_array().into_iter().flatten() {
            assert!(our_ids.contains(&i.to_string()), "Nictiz Condition {i} not in ours");
        }
        n_conditions += 1;
    }
    assert_eq!(n_conditions, 18);

    // Results: same identifiers, codes, values and local times (differences 1 and 6).
    let results = |b: &Value| -> BTreeMap<String, Value> {
        resources(b, "Observation").filter(|r| !is_soap_line(r)).map(|r| (first_id(r), r.clone())).collect()
    };
    let (ro, rn) = (results(&ours), results(&nictiz));
    assert_eq!(ro.keys().collect::<Vec<_>>(), rn.keys().collect::<Vec<_>>());
    for (id, o) in &ro {
        let n = &rn[id];
        assert_eq!(o["code"]["coding"], n["code"]["coding"], "result {id} code");
        for k in ["value", "system", "code"] {
            assert_eq!(o["valueQuantity"][k], n["valueQuantity"][k], "result {id} valueQuantity.{k}");
        }
        for v in ["valueString", "valueCodeableConcept"] {
            assert_eq!(o[v], n[v], "result {id} {v}");
        }
        if let (Some(a), Some(b)) = (o["effectiveDateTime"].as_str(), n["effectiveDateTime"].as_str()) {
            same_time(a, b);
        }
        if o["dataAbsentReason"].is_object() {
            assert!(n["dataAbsentReason"].is_null() && n["valueQuantity"].is_null(), "difference 6 for {id}");
        }
    }

    // Contacts: 13 on both routes, at the same local times (difference 1).
    let starts = |b: &Value| -> Vec<String> {
        let mut v: Vec<String> =
            resources(b, "Encounter").filter_map(|r| r["period"]["start"].as_str().map(str::to_owned)).collect();
        v.sort();
        v
    };
    let (so, sn) = (starts(&ours), starts(&nictiz));
    assert_eq!(so.len(), 13);
    assert_eq!(so.len(), sn.len());
    for (a, b) in so.iter().zip(&sn) {
        same_time(a, b);
    }

    // Journal lines: Nictiz's E and P lines are all ours; ours also has the S and O lines (difference 2).
    let lines = |b: &Value| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = resources(b, "Observation")
            .filter(|r| is_soap_line(r))
            .map(|r| {
                (
                    r["code"]["coding"][0]["code"].as_str().unwrap_or_default().to_owned(),
                    r["valueString"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let (lo, ln) = (lines(&ours), lines(&nictiz));
    let mut rest = lo.clone();
    for l in &ln {
        let at = rest.iter().position(|x| x == l).unwrap_or_else(|| panic!("Nictiz line {l:?} not in ours"));
        rest.remove(at);
    }
    // What only we have are the S and O lines (their SNOMED codes from the ConceptMap).
    let only_ours: BTreeSet<&str> = rest.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(only_ours.len(), 2, "only two line types are missing from Nictiz's conversion: {only_ours:?}");
    assert_eq!(lo.len(), 42);

    // Medication: same agreements, dates and periods; status differs (difference 5).
    let meds = |b: &Value| -> BTreeMap<String, Value> {
        resources(b, "MedicationRequest").map(|r| (first_id(r), r.clone())).collect()
    };
    let (mo, mn) = (meds(&ours), meds(&nictiz));
    let mut periods_compared = 0;
    for (id, n) in &mn {
        let o = mo.get(id).unwrap_or_else(|| panic!("agreement {id} not in ours"));
        assert_eq!(o["authoredOn"], n["authoredOn"]);
        assert_eq!(o["status"], "active");
        assert_eq!(n["status"], "completed", "difference 5");
        // the MP9 period of use (ext-TimeInterval.Period) on both routes
        let period_of_use = |r: &Value| {
            r["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|x| x["url"] == "http://nictiz.nl/fhir/StructureDefinition/ext-TimeInterval.Period")
                .map(|x| x["valuePeriod"].clone())
                .unwrap_or_else(|| panic!("agreement {id} has no period of use: {r}"))
        };
        for k in ["start", "end"] {
            if let (Some(a), Some(b)) = (period_of_use(o)[k].as_str(), period_of_use(n)[k].as_str()) {
                same_time(a, b);
                periods_compared += 1;
            }
        }
    }
    assert_eq!(mn.len(), 2);
    assert!(periods_compared >= 2, "the periods of use were compared ({periods_compared} dates)");

    // Allergies and alerts: every code or text Nictiz has is in ours; Nictiz files the
    // contra-indications (219, 1347) as allergies (difference 3).
    let facts = |b: &Value| -> BTreeSet<String> {
        ["AllergyIntolerance", "Flag"]
            .iter()
            .flat_map(|t| resources(b, t))
            .flat_map(|r| {
                let mut v: Vec<String> = r["code"]["coding"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["code"].as_str())
                    .filter(|c| *c != "not-applicable")
                    .map(str::to_owned)
                    .collect();
                v.extend(r["code"]["text"].as_str().map(str::to_owned));
                v
            })
            .collect()
    };
    let (fo, fn_) = (facts(&ours), facts(&nictiz));
    assert!(fn_.is_subset(&fo), "Nictiz's {:?} not in ours", fn_.difference(&fo).collect::<Vec<_>>());
    let nictiz_allergies: BTreeSet<String> = resources(&nictiz, "AllergyIntolerance")
        .filter_map(|r| r["code"]["coding"][0]["code"].as_str().map(str::to_owned))
        .collect();
    let our_allergies: BTreeSet<String> = resources(&ours, "AllergyIntolerance")
        .filter_map(|r| r["code"]["coding"][0]["code"].as_str().map(str::to_owned))
        .collect();
    let filed_as_allergy: Vec<&String> = nictiz_allergies.difference(&our_allergies).collect();
    assert_eq!(filed_as_allergy, vec!["1347", "219"], "difference 3");

    // The patient: ours has BSN, gender and birth date; Nictiz's has none of them (difference 4).
    let po = resources(&ours, "Patient").next().expect("patient");
    let pn = resources(&nictiz, "Patient").next().expect("patient");
    assert_eq!(po["identifier"][0]["value"], "555555914");
    assert!(po["gender"].is_string() && po["birthDate"].is_string());
    assert!(pn["identifier"].is_null() && pn["gender"].is_null() && pn["birthDate"].is_null(), "difference 4");
    assert_eq!(po["name"][0]["family"], pn["name"][0]["family"]);
}
