//! Care teams and consents: FHIR in and out, and each GZSP rule checked on save.

use chrono::NaiveDate;
use overdracht::policy::care_team::{CareForm, ExitReason, CARE_FORM_SYSTEM, EXIT_REASON_SYSTEM, ROLE_SYSTEM};
use overdracht::policy::{check_care_team, CareTeam, ConsentKind, MemberRole, PatientConsent, TreatmentState};
use overdracht::validate::{Outcome, Severity};
use serde_json::{json, Value};

/// A named change to a JSON document, for tables of bad inputs.
type Mutation = Box<dyn Fn(&mut Value)>;

const TODAY: &str = "2026-11-23";

fn d(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn load(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

fn group_team() -> Value {
    load("examples/care-teams/frail-elderly-group-care.json")
}

fn avg_team() -> Value {
    load("examples/care-teams/young-adult-avg-individual.json")
}

/// The rule ids of the errors (and warnings) an outcome reports.
fn rules(o: &Outcome, severity: Severity) -> Vec<String> {
    o.issues
        .iter()
        .filter(|i| i.severity == severity)
        .map(|i| {
            i.diagnostics
                .rsplit_once('[')
                .map(|(_, r)| r.trim_end_matches(']').to_owned())
                .unwrap_or_else(|| i.diagnostics.clone())
        })
        .collect()
}

fn errors_of(v: &Value, today: &str) -> Vec<String> {
    match check_care_team(v, d(today)) {
        Ok(_) => Vec::new(),
        Err(o) => rules(&o, Severity::Error),
    }
}

fn expression_of(v: &Value, today: &str, rule: &str) -> String {
    let o = check_care_team(v, d(today)).expect_err("an error");
    o.issues
        .iter()
        .find(|i| i.diagnostics.ends_with(&format!("[{rule}]")))
        .and_then(|i| i.expression.clone())
        .unwrap_or_else(|| panic!("no {rule} in {o:?}"))
}

fn set_uzi_role(v: &mut Value, participant: usize, code: &str) {
    v["participant"][participant]["role"][1]["coding"][0]["code"] = json!(code);
}

#[test]
fn the_examples_pass_the_rules() {
    for (file, today) in [
        ("frail-elderly-group-care.json", TODAY),
        ("young-adult-avg-individual.json", "2026-12-10"),
        ("frail-elderly-ended.json", TODAY),
    ] {
        let v = load(&format!("examples/care-teams/{file}"));
        match check_care_team(&v, d(today)) {
            Ok((_, warnings)) => assert!(warnings.is_empty(), "{file}: {warnings:?}"),
            Err(o) => panic!("{file}: {:?}", o.issues),
        }
    }
}

#[test]
fn a_team_reads_into_the_model_and_writes_back_unchanged() {
    for file in ["frail-elderly-group-care.json", "young-adult-avg-individual.json", "frail-elderly-ended.json"] {
        let v = load(&format!("examples/care-teams/{file}"));
        let team = CareTeam::from_fhir(&v).expect("parses");
        let again = CareTeam::from_fhir(&team.to_fhir()).expect("reparses");
        assert_eq!(team, again, "{file}");
    }
    let team = CareTeam::from_fhir(&group_team()).expect("parses");
    assert_eq!(team.patient.as_str(), "999911120");
    assert_eq!(team.organisation_ura, "11112222");
    assert_eq!(team.care_form, CareForm::GroupFrail);
    assert_eq!(team.next_evaluation, Some(d("2027-02-15")));
    assert_eq!(team.members.len(), 4);
    let lead = team.lead_practitioner(d(TODAY)).expect("a lead");
    assert_eq!(
        (lead.uzi.as_str(), lead.uzi_role.as_str(), lead.big.as_deref()),
        ("900000101", "01.047", Some("19012345601"))
    );
    assert_eq!(team.members[2].organisation_ura, "44443333");
    assert_eq!(team.members[3].role, MemberRole::SupportingDiscipline);
    let out = team.to_fhir();
    assert_eq!(out["meta"]["profile"][0], "http://nictiz.nl/fhir/StructureDefinition/nl-core-CareTeam");
    assert_eq!(out["participant"][0]["role"][0]["coding"][0]["code"], "RESP");
    let ended = CareTeam::from_fhir(&load("examples/care-teams/frail-elderly-ended.json")).expect("parses");
    assert_eq!(ended.state, TreatmentState::Ended { reason: ExitReason::RegularFirstLine });
    assert_eq!(ended.ended_on(), Some(d("2025-08-31")));
}

#[test]
fn patients_and_relatives_in_the_team_are_not_members() {
    let mut v = group_team();
    v["participant"].as_array_mut().expect("array").push(json!({
        "member": {"type": "RelatedPerson", "display": "daughter"}
    }));
    let team = CareTeam::from_fhir(&v).expect("parses");
    assert_eq!(team.members.len(), 4);
}

#[test]
fn structural_errors_point_at_the_element() {
    let cases: Vec<(&str, Mutation)> = vec![
        ("CareTeam.meta.profile", Box::new(|v| v["meta"]["profile"] = json!([]))),
        ("CareTeam.subject.identifier.value", Box::new(|v| v["subject"]["identifier"]["value"] = json!("123456789"))),
        ("CareTeam.managingOrganization[0].identifier", Box::new(|v| v["managingOrganization"] = json!([]))),
        ("CareTeam.status", Box::new(|v| v["status"] = json!("suspended"))),
        ("CareTeam.category", Box::new(|v| v["category"][0]["coding"][0]["code"] = json!("group-dementia"))),
        ("CareTeam.period.start", Box::new(|v| v["period"] = json!({}))),
        (
            "CareTeam.participant[1].member.identifier",
            Box::new(|v| v["participant"][1]["member"]["identifier"]["value"] = json!("UZI-1")),
        ),
        (
            "CareTeam.participant[1].role",
            Box::new(|v| {
                v["participant"][1]["role"][0]["coding"][0] = json!({"system": ROLE_SYSTEM, "code": "volunteer"});
            }),
        ),
        ("CareTeam.participant[1].role", Box::new(|v| set_uzi_role(v, 1, "3007"))),
        (
            "CareTeam.participant[0].extension('care-team-participant-big')",
            Box::new(|v| {
                v["participant"][0]["extension"][0]["valueIdentifier"]["value"] = json!("123");
            }),
        ),
        (
            "CareTeam.participant[2].onBehalfOf.identifier",
            Box::new(|v| {
                v["participant"][2].as_object_mut().expect("object").remove("onBehalfOf");
            }),
        ),
        (
            "CareTeam.participant[3].period.end",
            Box::new(|v| v["participant"][3]["period"]["end"] = json!("2026-08-01")),
        ),
        (
            "CareTeam.extension('care-team-next-evaluation').valueDate",
            Box::new(|v| v["extension"][0]["valueDate"] = json!("2027-02")),
        ),
    ];
    for (expected, mutate) in cases {
        let mut v = group_team();
        mutate(&mut v);
        let o = CareTeam::from_fhir(&v).expect_err(expected);
        let paths: Vec<_> = o.issues.iter().filter_map(|i| i.expression.clone()).collect();
        assert!(paths.iter().any(|p| p == expected), "expected {expected}, got {paths:?}");
        let fhir = o.to_fhir();
        assert_eq!(fhir["resourceType"], "OperationOutcome");
    }
}

// ---------------------------------------------------------------- team.lead-count

#[test]
fn an_active_team_has_exactly_one_lead() {
    let mut none = group_team();
    none["participant"][0]["role"][0]["coding"][0] = json!({"system": ROLE_SYSTEM, "code": "co-practitioner"});
    assert!(errors_of(&none, TODAY).contains(&"team.lead-count".to_owned()));

    let mut two = group_team();
    two["participant"][1]["role"][0]["coding"][0] =
        json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "RESP"});
    set_uzi_role(&mut two, 1, "01.056"); // an eligible profession, so only the count is wrong
    assert_eq!(errors_of(&two, TODAY), vec!["team.lead-count", "team.lead-count"]);

    // A handover of the lead role: the first lead's membership ends, the next one's starts.
    let mut handover = two.clone();
    handover["participant"][0]["period"]["end"] = json!("2026-10-31");
    handover["participant"][1]["period"]["start"] = json!("2026-11-01");
    assert_eq!(errors_of(&handover, TODAY), Vec::<String>::new());
    // ... and when it is not yet today's lead, the old one still counts.
    assert_eq!(errors_of(&handover, "2026-10-15"), Vec::<String>::new());

    // An ended team needs no current lead.
    let ended = load("examples/care-teams/frail-elderly-ended.json");
    assert_eq!(errors_of(&ended, TODAY), Vec::<String>::new());
}

// ---------------------------------------------------------------- team.lead-eligible

#[test]
fn the_lead_must_be_an_eligible_profession() {
    for eligible in ["01.047", "01.056", "25.000", "25.061", "25.063", "31.000"] {
        let mut v = group_team();
        set_uzi_role(&mut v, 0, eligible);
        let errors = errors_of(&v, TODAY);
        // Without an SO/AVG the VS loses supervision; that is a different rule.
        assert!(!errors.contains(&"team.lead-eligible".to_owned()), "{eligible}: {errors:?}");
    }
    for ineligible in ["01.015", "01.019", "04.000", "30.070", "81.000", "16.000"] {
        let mut v = group_team();
        set_uzi_role(&mut v, 0, ineligible);
        assert!(errors_of(&v, TODAY).contains(&"team.lead-eligible".to_owned()), "{ineligible}");
    }
    let mut v = group_team();
    set_uzi_role(&mut v, 0, "30.070");
    assert_eq!(expression_of(&v, TODAY, "team.lead-eligible"), "CareTeam.participant[0].role");
}

#[test]
fn a_psychiatrist_leads_only_sglvg_group_care() {
    let mut v = group_team();
    set_uzi_role(&mut v, 0, "01.035");
    // The VS needs an SO/AVG: make the VS a physiotherapist so only the lead rule speaks.
    set_uzi_role(&mut v, 1, "04.000");
    let o = check_care_team(&v, d(TODAY)).expect_err("not SGLVG");
    assert!(o.issues.iter().any(|i| i.diagnostics.contains("only in SGLVG")), "{o:?}");
    v["category"][0]["coding"][0]["code"] = json!("group-sglvg");
    assert_eq!(errors_of(&v, TODAY), Vec::<String>::new());
}

// ---------------------------------------------------------------- team.supervision

#[test]
fn a_nurse_practitioner_or_pa_needs_a_supervising_so_or_avg() {
    // The group team: VS 30.070 supervised by the SO lead.
    let mut v = group_team();
    set_uzi_role(&mut v, 0, "25.000"); // a GZ-psycholoog leads: nobody supervises the VS
    assert_eq!(errors_of(&v, TODAY), vec!["team.supervision"]);
    assert_eq!(expression_of(&v, TODAY, "team.supervision"), "CareTeam.participant[1].role");
    // An AVG as co-practitioner supervises.
    let mut supervised = v.clone();
    set_uzi_role(&mut supervised, 2, "01.056");
    assert_eq!(errors_of(&supervised, TODAY), Vec::<String>::new());
    // ... but not when the AVG's membership has ended before today.
    supervised["participant"][2]["period"]["end"] = json!("2026-10-01");
    assert_eq!(errors_of(&supervised, TODAY), vec!["team.supervision"]);

    // The AVG team: the PA is supervised by the AVG lead.
    let mut pa = avg_team();
    assert_eq!(errors_of(&pa, "2026-12-10"), Vec::<String>::new());
    set_uzi_role(&mut pa, 0, "31.000");
    pa["extension"] = json!([{"url": "https://w3id.org/overdracht/fhir/StructureDefinition/care-team-next-evaluation", "valueDate": "2027-03-01"}]);
    assert_eq!(errors_of(&pa, "2026-12-10"), vec!["team.supervision"]);
    // Every code of the VS range, and only those.
    for (code, needs) in [("30.065", true), ("30.076", true), ("30.064", false), ("30.077", false)] {
        let mut v = group_team();
        set_uzi_role(&mut v, 0, "25.000");
        set_uzi_role(&mut v, 1, code);
        assert_eq!(errors_of(&v, TODAY).contains(&"team.supervision".to_owned()), needs, "{code}");
    }
}

// ---------------------------------------------------------------- team.evaluation

#[test]
fn group_care_states_its_next_evaluation_within_six_months() {
    let mut v = group_team();
    v.as_object_mut().expect("object").remove("extension");
    assert_eq!(errors_of(&v, TODAY), vec!["team.evaluation"]);

    let mut far = group_team();
    far["extension"][0]["valueDate"] = json!("2027-05-24");
    assert_eq!(errors_of(&far, TODAY), vec!["team.evaluation"]);
    far["extension"][0]["valueDate"] = json!("2027-05-23"); // exactly six months
    assert_eq!(errors_of(&far, TODAY), Vec::<String>::new());

    // Overdue is a warning, not a reason to refuse the save.
    let mut overdue = group_team();
    overdue["extension"][0]["valueDate"] = json!("2026-11-01");
    let (_, warnings) = check_care_team(&overdue, d(TODAY)).expect("saved");
    assert_eq!(rules(&warnings, Severity::Warning), vec!["team.evaluation"]);
}

#[test]
fn individual_so_or_avg_care_needs_no_evaluation_date() {
    assert_eq!(errors_of(&avg_team(), "2026-12-10"), Vec::<String>::new());
    // Individual care led by a behavioural scientist does.
    let mut v = avg_team();
    set_uzi_role(&mut v, 0, "25.061");
    set_uzi_role(&mut v, 1, "04.000");
    assert_eq!(errors_of(&v, "2026-12-10"), vec!["team.evaluation"]);
    // The care forms a handover names are those of the team: each individual form counts as
    // individual care, each group form as group care.
    for form in CareForm::ALL {
        let mut v = avg_team();
        v["category"][0]["coding"][0]["code"] = json!(form.code());
        let errors = errors_of(&v, "2026-12-10");
        assert_eq!(errors.is_empty(), form.is_individual(), "{}: {errors:?}", form.code());
    }
    assert!(CareForm::from_code("individual-so").is_some_and(CareForm::is_individual));
    assert!(CareForm::from_code("group-sglvg").is_some_and(CareForm::is_group));
}

#[test]
fn individual_care_by_a_behavioural_scientist_warns_without_an_so_or_avg() {
    let mut v = avg_team();
    set_uzi_role(&mut v, 0, "31.000");
    set_uzi_role(&mut v, 1, "04.000");
    v["extension"] = json!([{"url": "https://w3id.org/overdracht/fhir/StructureDefinition/care-team-next-evaluation", "valueDate": "2027-03-01"}]);
    let (_, warnings) = check_care_team(&v, d("2026-12-10")).expect("saved");
    assert_eq!(rules(&warnings, Severity::Warning), vec!["team.individual-plan"]);
}

// ---------------------------------------------------------------- member.period, member.duplicate, team.ended

#[test]
fn memberships_lie_within_the_teams_period() {
    let mut v = group_team();
    v["participant"][2]["period"]["start"] = json!("2026-08-01");
    assert_eq!(errors_of(&v, TODAY), vec!["member.period"]);
    assert_eq!(expression_of(&v, TODAY, "member.period"), "CareTeam.participant[2].period");

    let mut ended = load("examples/care-teams/frail-elderly-ended.json");
    ended["participant"][1]["period"]["end"] = json!("2025-09-30");
    assert_eq!(errors_of(&ended, TODAY), vec!["member.period"]);
    ended["participant"][1]["period"].as_object_mut().expect("object").remove("end");
    assert_eq!(errors_of(&ended, TODAY), vec!["member.period"]);
}

#[test]
fn one_person_has_one_membership_at_a_time() {
    let mut v = group_team();
    v["participant"][3]["member"]["identifier"]["value"] = json!("900000102");
    v["participant"][3]["onBehalfOf"]["identifier"]["value"] = json!("44443333");
    assert_eq!(errors_of(&v, TODAY), vec!["member.duplicate"]);
    // Consecutive memberships are fine.
    v["participant"][3]["period"] = json!({"start": "2026-09-01", "end": "2026-09-14"});
    assert_eq!(errors_of(&v, TODAY), Vec::<String>::new());
}

#[test]
fn an_ended_treatment_has_an_exit_reason_and_an_end() {
    let mut v = group_team();
    v["status"] = json!("inactive");
    let o = CareTeam::from_fhir(&v).expect_err("no reason");
    assert!(o.issues.iter().any(|i| i.diagnostics.ends_with("[team.ended]")));

    let mut v = load("examples/care-teams/frail-elderly-ended.json");
    v["period"].as_object_mut().expect("object").remove("end");
    let o = CareTeam::from_fhir(&v).expect_err("no end");
    assert_eq!(o.issues[0].expression.as_deref(), Some("CareTeam.period.end"));

    let mut v = load("examples/care-teams/frail-elderly-ended.json");
    v["extension"][0]["valueCoding"]["code"] = json!("bored");
    let o = CareTeam::from_fhir(&v).expect_err("unknown reason");
    assert!(o.issues[0].diagnostics.contains("goal-reached"), "lists the codes: {o:?}");

    let mut v = load("examples/care-teams/frail-elderly-ended.json");
    v["status"] = json!("active");
    let o = CareTeam::from_fhir(&v).expect_err("active with a reason");
    assert!(o.issues[0].diagnostics.ends_with("[team.ended]"));

    // An active team whose period is over must be ended.
    let mut v = group_team();
    v["period"]["end"] = json!("2026-11-01");
    for p in v["participant"].as_array_mut().expect("array") {
        p["period"]["end"] = json!("2026-11-01");
    }
    assert!(errors_of(&v, TODAY).contains(&"team.ended".to_owned()));
}

// ---------------------------------------------------------------- code systems

#[test]
fn published_code_systems_match_the_code() {
    let check = |file: &str, url: &str, codes: Vec<&str>| {
        let cs = load(&format!("profiles/{file}"));
        assert_eq!(cs["url"], url, "{file}");
        let published: Vec<&str> =
            cs["concept"].as_array().expect("concepts").iter().filter_map(|c| c["code"].as_str()).collect();
        assert_eq!(published, codes, "{file}");
        assert_eq!(cs["count"], codes.len(), "{file}");
    };
    check("CodeSystem-gzsp-exit-reason.json", EXIT_REASON_SYSTEM, ExitReason::ALL.iter().map(|r| r.code()).collect());
    check("CodeSystem-gzsp-care-form.json", CARE_FORM_SYSTEM, CareForm::ALL.iter().map(|f| f.code()).collect());
    check("CodeSystem-care-team-role.json", ROLE_SYSTEM, vec!["co-practitioner", "supporting-discipline"]);
}

// ---------------------------------------------------------------- consent

#[test]
fn example_consents_read_and_write_back() {
    for file in ["objection-lifestyle.json", "objection-member.json", "consent-amalia-agreement.json"] {
        let v = load(&format!("examples/consents/{file}"));
        let c = PatientConsent::from_fhir(&v).unwrap_or_else(|o| panic!("{file}: {o:?}"));
        assert_eq!(PatientConsent::from_fhir(&c.to_fhir()).expect("reparse"), c, "{file}");
        assert_eq!(c.to_fhir(), v, "{file}: the example is exactly what we write");
    }
    let c = PatientConsent::from_fhir(&load("examples/consents/objection-member.json")).expect("parse");
    match &c.kind {
        ConsentKind::Objection { categories, members } => {
            assert_eq!(members.iter().map(String::as_str).collect::<Vec<_>>(), vec!["900000102"]);
            assert_eq!(categories.as_ref().map(|s| s.len()), Some(1));
        }
        other => panic!("{other:?}"),
    }
    assert!(c.in_force(d("2026-10-01")) && !c.in_force(d("2026-09-30")));
}

#[test]
fn consents_we_do_not_understand_are_rejected() {
    let base = load("examples/consents/objection-lifestyle.json");
    let cases: Vec<(&str, Mutation)> = vec![
        ("Consent.provision.type", Box::new(|v| v["provision"]["type"] = json!("maybe"))),
        (
            "Consent.provision.securityLabel[0]",
            Box::new(|v| v["provision"]["securityLabel"][0]["code"] = json!("smoking")),
        ),
        ("Consent.patient.identifier", Box::new(|v| v["patient"] = json!({"reference": "Patient/1"}))),
        ("Consent.provision.period.end", Box::new(|v| v["provision"]["period"]["end"] = json!("2020-01-01"))),
        (
            "Consent.provision.actor[0].reference.identifier",
            Box::new(|v| {
                v["provision"]["actor"] = json!([{"reference": {"reference": "Practitioner/1"}}]);
            }),
        ),
        ("Consent.policy", Box::new(|v| v["provision"]["type"] = json!("permit"))),
        ("Consent.status", Box::new(|v| v["status"] = json!("on-hold"))),
    ];
    for (expected, mutate) in cases {
        let mut v = base.clone();
        mutate(&mut v);
        let o = PatientConsent::from_fhir(&v).expect_err(expected);
        let paths: Vec<_> = o.issues.iter().filter_map(|i| i.expression.clone()).collect();
        assert!(paths.iter().any(|p| p == expected), "expected {expected}, got {paths:?}");
    }
    // An inactive consent reads but is never in force.
    let mut v = base.clone();
    v["status"] = json!("inactive");
    let c = PatientConsent::from_fhir(&v).expect("reads");
    assert!(!c.in_force(d(TODAY)));
}
