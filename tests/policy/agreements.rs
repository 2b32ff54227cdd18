//! Data-transfer agreements: the file format, its errors, and the transfer decision.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::NaiveDate;
use overdracht::model::{Bsn, DataCategory};
use overdracht::policy::agreement::{Retention, AGREEMENT_FORMAT};
use overdracht::policy::{
    decide_transfer, Agreement, AgreementError, PartyId, PatientConsent, TransferDecision, TransferRequest,
};
use serde_json::Value;

/// A named change to a JSON document, for tables of bad inputs.
type Mutation = Box<dyn Fn(&mut Value)>;

const GP_AGB: &str = "01234567";
const GP_URA: &str = "87654321";
const HOSPITAL_AGB: &str = "06010101";
const PROVIDER_URA: &str = "11112222";

fn d(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn examples() -> Vec<Agreement> {
    Agreement::load_dir(Path::new("examples/agreements")).expect("example agreements load")
}

fn consent(file: &str) -> PatientConsent {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(format!("examples/consents/{file}")).expect("read"))
        .expect("json");
    PatientConsent::from_fhir(&v).expect("example consent")
}

fn cats(codes: &[&str]) -> BTreeSet<DataCategory> {
    codes.iter().map(|c| c.parse().expect("category")).collect()
}

/// The categories the converter emits for an example record (the real pipeline, not a list).
fn categories_of(example: &str) -> BTreeSet<DataCategory> {
    let bytes = std::fs::read(example).expect("example");
    let conversion = overdracht::convert::convert(&bytes, &Default::default()).expect("converts");
    conversion.resources.iter().map(|r| r.category).collect()
}

#[test]
fn example_agreements_load_and_match_the_schema() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string("profiles/agreement.schema.json").expect("schema"))
            .expect("schema json");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let mut n = 0;
    for entry in std::fs::read_dir("examples/agreements").expect("dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "json") {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
            let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
            n += 1;
        }
    }
    assert_eq!(n, 2);
    let agreements = examples();
    assert!(agreements.iter().all(|a| a.format == AGREEMENT_FORMAT));
    // The loaded value serialises back to a document the schema accepts.
    for a in &agreements {
        let v = serde_json::to_value(a).expect("serialise");
        assert!(validator.is_valid(&v), "{}", a.id);
        let back = Agreement::from_json(&v.to_string(), "round trip").expect("reload");
        assert_eq!(&back, a);
    }
}

#[test]
fn the_schema_and_the_loader_reject_the_same_mistakes() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string("profiles/agreement.schema.json").expect("schema"))
            .expect("schema json");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let good: Value = serde_json::from_str(
        &std::fs::read_to_string("examples/agreements/de-linde-to-zorggroep-zuid.json").expect("read"),
    )
    .expect("json");
    let mutations: Vec<(&str, Mutation)> = vec![
        ("categories[16]", Box::new(|v| v["categories"][16] = "care-plans".into())),
        ("format", Box::new(|v| v["format"] = "overdracht-agreement/2".into())),
        ("sender.agb", Box::new(|v| v["sender"]["agb"] = "1234567".into())),
        ("valid", Box::new(|v| v["valid"] = serde_json::json!({"from": "2025-01-01"}))),
        ("retention", Box::new(|v| v["retention"] = "20 years".into())),
        ("legal_basis", Box::new(|v| v["legal_basis"] = "consent".into())),
        (
            "receiver.ura",
            Box::new(|v| {
                v["receiver"].as_object_mut().expect("object").remove("ura");
            }),
        ),
        ("sender.kind", Box::new(|v| v["sender"]["kind"] = "gzsp-provider".into())),
        ("categories", Box::new(|v| v["categories"] = serde_json::json!([]))),
        ("(document)", Box::new(|v| v["signed_by"] = "nobody".into())),
    ];
    for (field, mutate) in mutations {
        let mut v = good.clone();
        mutate(&mut v);
        assert!(!validator.is_valid(&v), "schema accepts a bad {field}");
        match Agreement::from_json(&v.to_string(), "x.json") {
            Err(AgreementError::Invalid { field: f, message, .. }) => {
                assert!(
                    f.starts_with(field.split('[').next().unwrap_or(field)) || field == "(document)",
                    "mutating {field} was reported at {f}: {message}"
                );
            }
            other => panic!("mutating {field}: expected an error naming the field, got {other:?}"),
        }
    }
}

#[test]
fn loader_errors_are_readable() {
    let text = std::fs::read_to_string("examples/agreements/de-linde-to-zorggroep-zuid.json")
        .expect("read")
        .replace("\"end\": \"2027-12-31\"", "\"end\": \"2024-12-31\"");
    let e = Agreement::from_json(&text, "linde.json").expect_err("end before start");
    assert_eq!(
        e.to_string(),
        "agreement linde.json: field `valid.end`: ends (2024-12-31) before it starts (2025-01-01)"
    );
    let text = std::fs::read_to_string("examples/agreements/de-linde-to-zorggroep-zuid.json")
        .expect("read")
        .replace("\"journal\"", "\"jornal\"");
    let e = Agreement::from_json(&text, "linde.json").expect_err("typo");
    let msg = e.to_string();
    assert!(msg.contains("categories[4]") && msg.contains("jornal"), "{msg}");
}

/// The parties' identifiers are typed where the file is read: a code with spaces around it
/// is refused there (as the JSON Schema does), naming the field, and nothing later parses them.
#[test]
fn party_identifiers_are_read_exactly_once() {
    let text = std::fs::read_to_string("examples/agreements/de-linde-to-zorggroep-zuid.json").expect("read");
    let a = Agreement::from_json(&text, "linde.json").expect("valid");
    let receiver = a.receiver.ura.clone().expect("receiver URA");
    assert!(a.is_party(&receiver));
    assert!(!a.is_party(&"55556666".parse().expect("ura")));
    let ura = receiver.as_str();
    let spaced = text.replacen(&format!("\"{ura}\""), &format!("\" {ura}\""), 1);
    assert_ne!(spaced, text, "the example names the receiver's URA");
    let e = Agreement::from_json(&spaced, "linde.json").expect_err("spaces");
    let msg = e.to_string();
    assert!(msg.contains("field `receiver.ura`") && msg.contains("no spaces"), "{msg}");
}

#[test]
fn a_duplicate_id_and_version_in_a_directory_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string("examples/agreements/de-linde-to-zorggroep-zuid.json").expect("read");
    std::fs::write(dir.path().join("a.json"), &text).expect("write");
    std::fs::write(dir.path().join("b.json"), &text).expect("write");
    let e = Agreement::load_dir(dir.path()).expect_err("duplicate");
    assert!(matches!(e, AgreementError::Duplicate { .. }), "{e}");
    assert!(e.to_string().contains("new version"));
}

#[test]
fn retention_periods_parse_strictly() {
    assert_eq!(Retention::parse("P20Y"), Ok(Retention::Years(20)));
    assert_eq!(Retention::parse("P6M"), Ok(Retention::Months(6)));
    assert_eq!(Retention::parse("P90D"), Ok(Retention::Days(90)));
    for bad in ["", "P", "P0Y", "20Y", "P1W", "PY", "P-1Y", "P1.5Y"] {
        assert!(Retention::parse(bad).is_err(), "{bad}");
    }
}

fn request<'a>(
    senders: &'a [PartyId],
    receiver: &'a [PartyId],
    patient: &'a Bsn,
    day: NaiveDate,
    categories: &'a BTreeSet<DataCategory>,
    consents: &'a [PatientConsent],
) -> TransferRequest<'a> {
    TransferRequest { senders, receiver, patient, day, categories, consents }
}

#[test]
fn the_gp_example_is_transferred_whole() {
    let handover = categories_of("examples/records/gp-frail-elderly.stu3.json");
    assert!(handover.len() >= 10, "{handover:?}");
    let patient = Bsn::parse("999911120").expect("bsn");
    // The sender may be named by AGB or URA.
    for sender in [PartyId::Agb(GP_AGB.parse().expect("id")), PartyId::Ura(GP_URA.parse().expect("id"))] {
        let decision = decide_transfer(
            &examples(),
            &request(
                &[sender],
                &[PartyId::Ura(PROVIDER_URA.parse().expect("id"))],
                &patient,
                d("2026-11-23"),
                &handover,
                &[],
            ),
        );
        match decision {
            TransferDecision::Permitted { agreements, kept, removed } => {
                assert_eq!(agreements, vec!["de-linde-to-zorggroep-zuid@1.0"]);
                assert_eq!(kept, handover);
                assert!(removed.is_empty(), "{removed:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_paediatric_example_loses_its_growth_measurements() {
    let handover = categories_of("examples/records/paediatrician-young-adult.flat.json");
    assert!(handover.contains(&DataCategory::VitalSigns));
    let patient = Bsn::parse("999911132").expect("bsn");
    let consents = [consent("consent-amalia-agreement.json")];
    let decision = decide_transfer(
        &examples(),
        &request(
            &[PartyId::Agb(HOSPITAL_AGB.parse().expect("id"))],
            &[PartyId::Ura(PROVIDER_URA.parse().expect("id"))],
            &patient,
            d("2026-12-01"),
            &handover,
            &consents,
        ),
    );
    let TransferDecision::Permitted { kept, removed, .. } = &decision else { panic!("{decision:?}") };
    assert_eq!(removed.keys().copied().collect::<Vec<_>>(), vec![DataCategory::VitalSigns]);
    assert!(removed[&DataCategory::VitalSigns].contains("amalia-paediatrics-to-zorggroep-zuid@2.1"));
    assert_eq!(kept.len(), handover.len() - 1);
    let outcome = decision.to_outcome();
    assert_eq!(outcome.issues.len(), 1);
    assert_eq!(outcome.to_fhir()["issue"][0]["code"], "suppressed");
}

#[test]
fn an_agreement_on_consent_needs_the_patients_consent() {
    let patient = Bsn::parse("999911132").expect("bsn");
    let handover = cats(&["identification", "problems"]);
    let senders = [PartyId::Agb(HOSPITAL_AGB.parse().expect("id"))];
    let receiver = [PartyId::Ura(PROVIDER_URA.parse().expect("id"))];
    let decision =
        decide_transfer(&examples(), &request(&senders, &receiver, &patient, d("2026-12-01"), &handover, &[]));
    assert!(matches!(decision, TransferDecision::Refused { rule: "transfer.no-consent", .. }), "{decision:?}");
    // The consent starts on 2026-11-15: not yet in force the day before.
    let consents = [consent("consent-amalia-agreement.json")];
    let decision =
        decide_transfer(&examples(), &request(&senders, &receiver, &patient, d("2026-11-14"), &handover, &consents));
    assert!(!decision.is_permitted());
    // Another patient's consent does not count.
    let other = Bsn::parse("999911120").expect("bsn");
    let decision =
        decide_transfer(&examples(), &request(&senders, &receiver, &other, d("2026-12-01"), &handover, &consents));
    assert!(!decision.is_permitted());
}

#[test]
fn no_agreement_or_an_expired_one_refuses() {
    let patient = Bsn::parse("999911120").expect("bsn");
    let handover = cats(&["identification", "problems"]);
    let receiver = [PartyId::Ura(PROVIDER_URA.parse().expect("id"))];
    let unknown = [PartyId::Agb("99999999".parse().expect("id"))];
    let d1 = decide_transfer(&examples(), &request(&unknown, &receiver, &patient, d("2026-11-23"), &handover, &[]));
    let TransferDecision::Refused { rule, reason } = &d1 else { panic!("{d1:?}") };
    assert_eq!(*rule, "transfer.no-agreement");
    assert!(reason.contains("AGB 99999999") && reason.contains("URA 11112222"), "{reason}");
    assert_eq!(d1.to_outcome().to_fhir()["issue"][0]["code"], "forbidden");

    let gp = [PartyId::Agb(GP_AGB.parse().expect("id"))];
    let d2 = decide_transfer(&examples(), &request(&gp, &receiver, &patient, d("2028-01-01"), &handover, &[]));
    let TransferDecision::Refused { rule, reason } = &d2 else { panic!("{d2:?}") };
    assert_eq!(*rule, "transfer.not-in-force");
    assert!(reason.contains("2025-01-01 to 2027-12-31"), "{reason}");
    // The last day is still in force.
    let d3 = decide_transfer(&examples(), &request(&gp, &receiver, &patient, d("2027-12-31"), &handover, &[]));
    assert!(d3.is_permitted());
    // The right sender to the wrong receiver.
    let elsewhere = [PartyId::Ura("55556666".parse().expect("id"))];
    let d4 = decide_transfer(&examples(), &request(&gp, &elsewhere, &patient, d("2026-11-23"), &handover, &[]));
    assert!(!d4.is_permitted());
}

#[test]
fn categories_outside_the_agreement_or_objected_to_are_removed() {
    let patient = Bsn::parse("999911120").expect("bsn");
    let handover = cats(&["identification", "lifestyle", "appointments"]);
    let gp = [PartyId::Agb(GP_AGB.parse().expect("id"))];
    let receiver = [PartyId::Ura(PROVIDER_URA.parse().expect("id"))];
    // The member-specific objection does not affect the transfer; the general one does.
    let consents = [consent("objection-lifestyle.json"), consent("objection-member.json")];
    let decision =
        decide_transfer(&examples(), &request(&gp, &receiver, &patient, d("2026-11-23"), &handover, &consents));
    let TransferDecision::Permitted { kept, removed, .. } = &decision else { panic!("{decision:?}") };
    assert_eq!(kept, &cats(&["identification"]));
    assert!(removed[&DataCategory::Appointments].starts_with("not covered by agreement"));
    assert!(removed[&DataCategory::Lifestyle].contains("Consent/objection-999911120-lifestyle"));
    // A handover of nothing but removed categories is refused.
    let only = cats(&["appointments"]);
    let decision = decide_transfer(&examples(), &request(&gp, &receiver, &patient, d("2026-11-23"), &only, &consents));
    assert!(matches!(decision, TransferDecision::Refused { rule: "transfer.nothing-covered", .. }));
}

/// Review R2: a consent or objection recorded by an organisation that is not a party to the
/// agreement (the first `Consent.organization`) does not count in the transfer decision, even
/// when it names a party later on.
#[test]
fn consents_and_objections_of_an_outsider_do_not_count() {
    let outsider = |file: &str| {
        let mut c = consent(file);
        c.custodians = vec!["55556666".parse().expect("ura"), PROVIDER_URA.parse().expect("ura")];
        c
    };
    let patient = Bsn::parse("999911132").expect("bsn");
    let handover = cats(&["identification", "problems"]);
    let senders = [PartyId::Agb(HOSPITAL_AGB.parse().expect("id"))];
    let receiver = [PartyId::Ura(PROVIDER_URA.parse().expect("id"))];
    let consents = [outsider("consent-amalia-agreement.json")];
    let decision =
        decide_transfer(&examples(), &request(&senders, &receiver, &patient, d("2026-12-01"), &handover, &consents));
    assert!(
        matches!(decision, TransferDecision::Refused { rule: "transfer.consent-not-agreement-party", .. }),
        "{decision:?}"
    );
    // The receiver's own consent counts.
    let consents = [consent("consent-amalia-agreement.json")];
    let decision =
        decide_transfer(&examples(), &request(&senders, &receiver, &patient, d("2026-12-01"), &handover, &consents));
    assert!(decision.is_permitted(), "{decision:?}");

    // An outsider's objection does not strip data from the GP's handover to Zorggroep Zuid.
    let patient = Bsn::parse("999911120").expect("bsn");
    let handover = cats(&["identification", "lifestyle"]);
    let gp = [PartyId::Agb(GP_AGB.parse().expect("id"))];
    let consents = [outsider("objection-lifestyle.json")];
    let decision =
        decide_transfer(&examples(), &request(&gp, &receiver, &patient, d("2026-11-23"), &handover, &consents));
    let TransferDecision::Permitted { kept, .. } = &decision else { panic!("{decision:?}") };
    assert!(kept.contains(&DataCategory::Lifestyle), "{decision:?}");
    let consents = [consent("objection-lifestyle.json")];
    let decision =
        decide_transfer(&examples(), &request(&gp, &receiver, &patient, d("2026-11-23"), &handover, &consents));
    let TransferDecision::Permitted { kept, .. } = &decision else { panic!("{decision:?}") };
    assert!(!kept.contains(&DataCategory::Lifestyle), "{decision:?}");
    // An objection stored without any organisation still binds (in doubt, the objection holds).
    let mut unnamed = consent("objection-lifestyle.json");
    unnamed.custodians.clear();
    let consents = [unnamed];
    let decision =
        decide_transfer(&examples(), &request(&gp, &receiver, &patient, d("2026-11-23"), &handover, &consents));
    let TransferDecision::Permitted { kept, .. } = &decision else { panic!("{decision:?}") };
    assert!(!kept.contains(&DataCategory::Lifestyle), "{decision:?}");
}
