//! Access decisions: each rule on the examples, the full decision table against an
//! independently written expectation, and properties over random inputs.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate};
use overdracht::model::{Bsn, DataCategory};
use overdracht::policy::care_team::{CareForm, TeamMember};
use overdracht::policy::{
    AccessDecision, AccessRequest, Agreement, CareTeam, ConsentKind, DayPeriod, MemberRole, PatientConsent,
    PolicyEngine, PolicyPath, Requested, Requester, TreatmentState,
};
use proptest::prelude::*;
use serde_json::{json, Value};

const PROVIDER: &str = "11112222";
const TODAY: &str = "2026-11-23";

fn d(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn engine() -> &'static PolicyEngine {
    static E: std::sync::OnceLock<PolicyEngine> = std::sync::OnceLock::new();
    E.get_or_init(|| PolicyEngine::embedded().expect("embedded policy compiles"))
}

fn load(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

struct Demo {
    teams: Vec<CareTeam>,
    agreements: Vec<Agreement>,
    consents: Vec<PatientConsent>,
    patient: Bsn,
}

fn demo() -> Demo {
    let teams = ["frail-elderly-group-care.json", "frail-elderly-ended.json", "young-adult-avg-individual.json"]
        .iter()
        .map(|f| CareTeam::from_fhir(&load(&format!("examples/care-teams/{f}"))).expect("team"))
        .collect();
    let consents = ["objection-lifestyle.json", "objection-member.json", "consent-amalia-agreement.json"]
        .iter()
        .map(|f| PatientConsent::from_fhir(&load(&format!("examples/consents/{f}"))).expect("consent"))
        .collect();
    Demo {
        teams,
        agreements: Agreement::load_dir(std::path::Path::new("examples/agreements")).expect("agreements"),
        consents,
        patient: Bsn::parse("999911120").expect("bsn"),
    }
}

fn requester(uzi: &str, role: &str, ura: &str) -> Requester {
    Requester {
        uzi: uzi.parse().expect("UZI"),
        uzi_role: role.parse().expect("UZI role code"),
        ura: ura.parse().expect("URA"),
        purpose_of_use: "TREAT".into(),
        break_glass_reason: None,
    }
}

fn demo_request<'a>(demo: &'a Demo, r: &'a Requester, day: &str, requested: &'a Requested) -> AccessRequest<'a> {
    AccessRequest {
        requester: r,
        patient: &demo.patient,
        teams: &demo.teams,
        agreements: &demo.agreements,
        consents: &demo.consents,
        day: d(day),
        requested,
    }
}

fn decide_demo(demo: &Demo, r: &Requester, day: &str, requested: &Requested) -> AccessDecision {
    engine().decide(&demo_request(demo, r, day, requested))
}

fn cats(codes: &[&str]) -> BTreeSet<DataCategory> {
    codes.iter().map(|c| c.parse().expect("category")).collect()
}

fn agreement_categories() -> BTreeSet<DataCategory> {
    demo().agreements[1].categories.clone() // de-linde (sorted by file name: amalia first)
}

// ---------------------------------------------------------------- rules on the examples

#[test]
fn the_lead_practitioner_reads_every_category_the_agreement_brought() {
    let demo = demo();
    let lead = requester("900000101", "01.047", PROVIDER);
    let decision = decide_demo(&demo, &lead, TODAY, &Requested::All);
    assert!(decision.permit, "{decision:?}");
    assert_eq!(decision.rule, "access.member");
    assert_eq!(decision.reason, "member of the care team as lead-practitioner");
    // ... less lifestyle, to which the patient objects.
    let mut expected = agreement_categories();
    expected.remove(&DataCategory::Lifestyle);
    assert_eq!(decision.allowed_categories, expected);
    assert!(!decision.break_glass && !decision.flag_for_review);
}

#[test]
fn a_co_practitioner_sees_all_but_the_journal() {
    let demo = demo();
    let vs = requester("900000103", "30.070", PROVIDER);
    let decision = decide_demo(&demo, &vs, TODAY, &Requested::All);
    let mut expected = agreement_categories();
    expected.remove(&DataCategory::Lifestyle);
    expected.remove(&DataCategory::Journal);
    assert_eq!(decision.allowed_categories, expected);
    let journal = decide_demo(&demo, &vs, TODAY, &Requested::Only(cats(&["journal"])));
    assert!(!journal.permit);
    assert_eq!(journal.rule, "category.not-allowed");
}

#[test]
fn a_supporting_discipline_sees_only_its_five_categories() {
    let demo = demo();
    let nurse = requester("900000104", "30.000", PROVIDER);
    let decision = decide_demo(&demo, &nurse, TODAY, &Requested::All);
    assert!(decision.permit);
    assert_eq!(
        decision.allowed_categories,
        cats(&["alerts", "allergies", "contact-persons", "directives", "care-plan"])
    );
    let some = decide_demo(&demo, &nurse, TODAY, &Requested::Only(cats(&["allergies", "medication"])));
    assert_eq!(some.allowed_categories, cats(&["allergies"]));
}

#[test]
fn a_member_acts_only_for_the_organisation_of_the_membership() {
    let demo = demo();
    // The physiotherapist is a member for URA 44443333 ...
    let physio = requester("900000102", "04.000", "44443333");
    let decision = decide_demo(&demo, &physio, TODAY, &Requested::All);
    assert!(decision.permit);
    // ... and the objection to this member seeing problems is honoured.
    assert!(!decision.allowed_categories.contains(&DataCategory::Problems));
    assert!(agreement_categories().contains(&DataCategory::Problems));
    // With a token for another organisation the membership does not count.
    let elsewhere = requester("900000102", "04.000", "99998888");
    let decision = decide_demo(&demo, &elsewhere, TODAY, &Requested::All);
    assert_eq!((decision.permit, decision.rule), (false, "membership.other-organisation"));
}

#[test]
fn an_outsider_sees_nothing() {
    let demo = demo();
    let outsider = requester("900099999", "01.015", "55556666");
    let decision = decide_demo(&demo, &outsider, TODAY, &Requested::All);
    assert!(!decision.permit);
    assert_eq!(decision.rule, "default.not-a-member");
    assert!(decision.allowed_categories.is_empty() && !decision.flag_for_review);
}

#[test]
fn no_access_before_the_membership_starts_or_after_it_ends() {
    let demo = demo();
    let physio = requester("900000102", "04.000", "44443333");
    // The 2025 team ended 2025-08-31; the 2026 membership starts 2026-09-15.
    let before = decide_demo(&demo, &physio, "2026-09-14", &Requested::All);
    assert_eq!((before.permit, before.rule), (false, "membership.not-started"));
    let first_day = decide_demo(&demo, &physio, "2026-09-15", &Requested::All);
    assert!(first_day.permit);
}

#[test]
fn after_the_treatment_ends_only_the_lead_keeps_a_grace_period() {
    let mut demo = demo();
    // The 2025 team ended on 2025-08-31; the grace period is 30 days. (Without the 2026
    // team, whose memberships have not started yet in 2025.)
    demo.teams.retain(|t| t.id.ends_with("2025"));
    let lead = requester("900000101", "01.047", PROVIDER);
    let physio = requester("900000102", "04.000", "44443333");
    let within = decide_demo(&demo, &lead, "2025-09-30", &Requested::All);
    assert!(within.permit, "{within:?}");
    let past = decide_demo(&demo, &lead, "2025-10-01", &Requested::All);
    assert_eq!((past.permit, past.rule), (false, "treatment.ended"));
    let co = decide_demo(&demo, &physio, "2025-09-01", &Requested::All);
    assert_eq!((co.permit, co.rule), (false, "treatment.ended"));
    let last_day = decide_demo(&demo, &physio, "2025-08-31", &Requested::All);
    assert!(last_day.permit);
}

#[test]
fn an_expired_agreement_gives_no_access() {
    let demo = demo();
    let lead = requester("900000101", "01.047", PROVIDER);
    let decision = decide_demo(&demo, &lead, "2028-01-02", &Requested::All);
    assert_eq!((decision.permit, decision.rule), (false, "agreement.none-in-force"));
}

#[test]
fn an_agreement_on_consent_counts_only_with_the_consent() {
    let mut demo = demo();
    demo.patient = Bsn::parse("999911132").expect("bsn");
    // The agreements under which this patient's data arrived: only the paediatric one.
    demo.agreements.retain(|a| a.id.starts_with("amalia"));
    let avg = requester("900000201", "01.056", PROVIDER);
    let with = decide_demo(&demo, &avg, "2026-12-10", &Requested::All);
    assert!(with.permit, "{with:?}");
    assert!(!with.allowed_categories.contains(&DataCategory::VitalSigns));
    demo.consents.retain(|c| !matches!(c.kind, ConsentKind::AgreementConsent { .. }));
    let without = decide_demo(&demo, &avg, "2026-12-10", &Requested::All);
    assert_eq!((without.permit, without.rule), (false, "agreement.none-in-force"));
}

#[test]
fn the_purpose_of_use_must_be_treatment() {
    let demo = demo();
    let mut lead = requester("900000101", "01.047", PROVIDER);
    lead.purpose_of_use = "HRESCH".into();
    let decision = decide_demo(&demo, &lead, TODAY, &Requested::All);
    assert_eq!((decision.permit, decision.rule), (false, "purpose.not-permitted"));
    assert!(decision.reason.contains("HRESCH"));
    lead.purpose_of_use = "ETREAT".into();
    assert!(decide_demo(&demo, &lead, TODAY, &Requested::All).permit);
}

#[test]
fn an_objection_to_a_member_shuts_them_out() {
    let mut demo = demo();
    demo.consents.push(PatientConsent {
        id: "no-vs".into(),
        patient: demo.patient.clone(),
        active: true,
        period: DayPeriod::new(d("2026-11-01"), None),
        kind: ConsentKind::Objection { categories: None, members: ["900000103".to_owned()].into() },
        custodians: vec![PROVIDER.parse().expect("ura")],
    });
    let vs = requester("900000103", "30.070", PROVIDER);
    let decision = decide_demo(&demo, &vs, TODAY, &Requested::All);
    assert_eq!((decision.permit, decision.rule), (false, "consent.member-objection"));
    // Not even by breaking the glass.
    let mut bg = vs.clone();
    bg.break_glass_reason = Some("patient fell at home".into());
    let decision = decide_demo(&demo, &bg, TODAY, &Requested::All);
    assert_eq!((decision.permit, decision.rule), (false, "consent.member-objection"));
    assert!(decision.flag_for_review);
    // The objection started on 2026-11-01.
    assert!(decide_demo(&demo, &vs, "2026-10-31", &Requested::All).permit);
}

#[test]
fn a_membership_counts_only_with_the_profession_in_the_token() {
    // The team records the nurse (UZI 900000104) as an SO; her token says 30.000.
    let mut demo = demo();
    for m in demo.teams.iter_mut().flat_map(|t| t.members.iter_mut()).filter(|m| m.uzi == "900000104") {
        m.uzi_role = "01.047".parse().expect("role");
    }
    let nurse = requester("900000104", "30.000", PROVIDER);
    let req = demo_request(&demo, &nurse, TODAY, &Requested::All);
    for d in [engine().decide(&req), engine().decide_rego(&req)] {
        assert_eq!((d.permit, d.rule), (false, "membership.role-mismatch"), "{d:?}");
    }
    // With the SO's token she is the member the team records.
    let as_recorded = requester("900000104", "01.047", PROVIDER);
    assert!(decide_demo(&demo, &as_recorded, TODAY, &Requested::All).permit);
}

#[test]
fn break_the_glass_needs_a_reason_and_the_providers_ura_and_is_flagged() {
    let demo = demo();
    let mut colleague = requester("900000777", "01.047", PROVIDER);
    let decision = decide_demo(&demo, &colleague, TODAY, &Requested::All);
    assert!(!decision.permit);
    colleague.break_glass_reason = Some("   ".into());
    assert!(!decide_demo(&demo, &colleague, TODAY, &Requested::All).permit);
    colleague.break_glass_reason = Some("on call at night, patient acutely confused".into());
    let decision = decide_demo(&demo, &colleague, TODAY, &Requested::All);
    assert!(decision.permit && decision.break_glass && decision.flag_for_review, "{decision:?}");
    assert_eq!(decision.rule, "access.break-glass");
    assert!(decision.reason.contains("acutely confused"));
    // Objected categories stay hidden.
    assert!(!decision.allowed_categories.contains(&DataCategory::Lifestyle));
    // Someone from another organisation cannot break the glass.
    let mut other = colleague.clone();
    other.ura = "55556666".parse().expect("URA");
    let decision = decide_demo(&demo, &other, TODAY, &Requested::All);
    assert_eq!((decision.permit, decision.rule), (false, "break-glass.other-organisation"));
    assert!(decision.flag_for_review, "a refused attempt is flagged too");
}

#[test]
fn a_member_may_break_the_glass_for_categories_beyond_the_role() {
    let demo = demo();
    // The nurse practitioner (VS, a BIG-registered profession) is a co-practitioner: no journal.
    let mut vs = requester("900000103", "30.070", PROVIDER);
    let journal = Requested::Only(cats(&["journal"]));
    assert_eq!(decide_demo(&demo, &vs, TODAY, &journal).rule, "category.not-allowed");
    vs.break_glass_reason = Some("suspected overdose".into());
    let decision = decide_demo(&demo, &vs, TODAY, &journal);
    assert!(decision.permit && decision.break_glass);
    assert_eq!(decision.allowed_categories, cats(&["journal"]));
}

#[test]
fn only_the_professions_the_policy_names_break_the_glass() {
    // The nurse (30.000, no VS) and a non-BIG role (99.999) are refused, flagged;
    // both engines agree.
    let demo = demo();
    // (A member's own shortfall is named first: the nurse is a supporting member.)
    for (uzi, role, rule) in
        [("900000104", "30.000", "category.not-allowed"), ("900000998", "99.999", "break-glass.profession")]
    {
        let mut r = requester(uzi, role, PROVIDER);
        r.break_glass_reason = Some("suspected overdose".into());
        let medication = Requested::Only(cats(&["medication"]));
        let req = demo_request(&demo, &r, TODAY, &medication);
        for d in [engine().decide(&req), engine().decide_rego(&req)] {
            assert_eq!((d.permit, d.rule, d.flag_for_review), (false, rule, true), "{d:?}");
        }
    }
}

#[test]
fn a_provider_can_change_the_matrix_and_the_objection_override() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy("policies/access.rego", dir.path().join("access.rego")).expect("copy");
    let mut config = load("policies/access-config.json");
    config["overdracht"]["config"]["matrix"]["supporting-discipline"] = json!({"only": ["alerts"]});
    config["overdracht"]["config"]["break_glass"]["overrides_objection"] = json!(true);
    config["overdracht"]["config"]["grace_period_days"] = json!(0);
    std::fs::write(dir.path().join("access-config.json"), config.to_string()).expect("write");
    let adapted = PolicyEngine::from_dir(dir.path()).expect("adapted policy");
    assert!(!adapted.is_native() && adapted.path() == PolicyPath::Proving, "the Rego decides until the proof");
    assert!(matches!(adapted.prove(), PolicyPath::NativeProven { cells } if cells > 13_608), "{:?}", adapted.path());
    assert!(adapted.is_native(), "changing only the data keeps the fast path, once proven on the table");
    let demo = demo();
    let decide = |r: &Requester, day: &str| adapted.decide(&demo_request(&demo, r, day, &Requested::All));
    let nurse = requester("900000104", "30.000", PROVIDER);
    assert_eq!(decide(&nurse, TODAY).allowed_categories, cats(&["alerts"]));
    let mut colleague = requester("900000777", "01.047", PROVIDER);
    colleague.break_glass_reason = Some("emergency".into());
    assert!(decide(&colleague, TODAY).allowed_categories.contains(&DataCategory::Lifestyle));
    let lead = requester("900000101", "01.047", PROVIDER);
    assert!(!decide(&lead, "2025-09-01").permit, "no grace period");

    // A configuration on which the native engine would decide otherwise than the Rego (a
    // grace period beyond the calendar: the Rego counts days as integers, the native engine
    // as dates) falls back to the Rego.
    let mut far = config.clone();
    far["overdracht"]["config"]["grace_period_days"] = json!(4_000_000_000_u64);
    std::fs::write(dir.path().join("access-config.json"), far.to_string()).expect("write");
    let rego_only = PolicyEngine::from_dir(dir.path()).expect("adapted policy");
    match rego_only.prove() {
        PolicyPath::RegoParityFailed { cell, example } => assert!(cell > 0 && example.contains("Ended"), "{example}"),
        other => panic!("expected the Rego after a failed proof, got {other:?}"),
    }
    assert!(!rego_only.is_native() && rego_only.is_shipped_rego());
    let lead_after = rego_only.decide(&demo_request(&demo, &lead, "2025-09-01", &Requested::All));
    assert!(lead_after.permit, "the Rego decides: the grace period has not run out");
    std::fs::write(dir.path().join("access-config.json"), config.to_string()).expect("write");

    // A changed Rego source is evaluated as Rego.
    let rego = std::fs::read_to_string("policies/access.rego").expect("rego");
    std::fs::write(dir.path().join("access.rego"), format!("{rego}\n# adapted by the provider\n")).expect("write");
    let adapted = PolicyEngine::from_dir(dir.path()).expect("adapted policy");
    assert!(!adapted.is_native());
    assert_eq!(adapted.path(), PolicyPath::RegoAdapted);
    let decide = |r: &Requester| adapted.decide(&demo_request(&demo, r, TODAY, &Requested::All));
    assert_eq!(decide(&nurse).allowed_categories, cats(&["alerts"]));

    // A broken adaptation fails at start-up, not at the first request.
    std::fs::write(dir.path().join("access.rego"), "package overdracht.access\nimport rego.v1\ndecision := {")
        .expect("write");
    assert!(PolicyEngine::from_dir(dir.path()).is_err());
}

// ---------------------------------------------------------------- the decision table
// The cells and their facts live in the library (`policy::parity`), which also proves the
// native engine on them at start for an adapted configuration; the expectation here is
// written from the specification.

use overdracht::policy::parity::{
    self, AgreementState, Cell, Consent, Membership, Role, Treatment, NOT_AGREED, OBJECTED,
};

/// What DOMAIN.md and the issue say should happen, written from the specification without
/// looking at the policy: (permit, rule, break_glass, flag_for_review).
fn expected(c: &Cell) -> (bool, &'static str, bool, bool) {
    let deny = |rule| (false, rule, false, c.break_glass);
    if c.consent == Consent::ObjectionToMember {
        return deny("consent.member-objection");
    }
    let agreed = c.agreement == AgreementState::Valid && c.category != NOT_AGREED;
    let any_agreed = c.agreement == AgreementState::Valid;
    let role_may = match c.role {
        Role::Lead => true,
        Role::Co => c.category != DataCategory::Journal,
        Role::Supporting => matches!(
            c.category,
            DataCategory::Alerts
                | DataCategory::Allergies
                | DataCategory::ContactPersons
                | DataCategory::Directives
                | DataCategory::CarePlan
        ),
        Role::NotMember => false,
    };
    let objected = c.consent == Consent::ObjectionToCategories && OBJECTED.contains(&c.category);
    let current = c.role != Role::NotMember
        && c.membership == Membership::During
        && match c.treatment {
            Treatment::Active => true,
            Treatment::EndedWithinGrace => c.role == Role::Lead,
            Treatment::EndedPastGrace => false,
        };
    if current && agreed && role_may && !objected {
        return (true, "access.member", false, false);
    }
    // Break-the-glass: everyone in the table acts for the provider; all agreed categories.
    if c.break_glass && agreed && !objected {
        return (true, "access.break-glass", true, true);
    }
    if current {
        // Why a current member sees nothing of what was asked.
        return deny(if !any_agreed {
            "agreement.none-in-force"
        } else if objected && role_may && agreed {
            "consent.category-objection"
        } else {
            "category.not-allowed"
        });
    }
    if c.break_glass {
        return deny(if !any_agreed {
            "agreement.none-in-force"
        } else if objected {
            "consent.category-objection"
        } else {
            "category.not-allowed"
        });
    }
    deny(match (c.role, c.membership, c.treatment) {
        (Role::NotMember, _, _) => "default.not-a-member",
        (_, Membership::Before, _) => "membership.not-started",
        (_, _, Treatment::EndedWithinGrace | Treatment::EndedPastGrace) => "treatment.ended",
        _ => "membership.ended",
    })
}

#[test]
fn decision_table() {
    assert!(engine().is_native());
    let cells = parity::all_cells();
    assert_eq!(cells.len(), 4 * DataCategory::ALL.len() * 3 * 3 * 3 * 3 * 2);
    let mut failures = Vec::new();
    let mut permits = 0;
    for c in &cells {
        let case = parity::case(c, engine().config().grace_period_days, "TREAT").expect("cell");
        let req = case.request();
        let (permit, rule, break_glass, flag) = expected(c);
        let allowed: BTreeSet<DataCategory> = if permit { [c.category].into() } else { BTreeSet::new() };
        // Both evaluators: the Rego policy, and its hand-compiled fast path.
        let got = engine().decide(&req);
        for (how, got) in [("fast path", &got), ("rego", &engine().decide_rego(&req))] {
            if (got.permit, got.rule, got.break_glass, got.flag_for_review, &got.allowed_categories)
                != (permit, rule, break_glass, flag, &allowed)
            {
                failures.push(format!(
                    "{how} {c:?}: expected ({permit}, {rule}, bg {break_glass}, flag {flag}), got {got:?}"
                ));
            }
        }
        permits += usize::from(got.permit);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cells differ, e.g.:\n{}",
        failures.len(),
        cells.len(),
        failures[..failures.len().min(10)].join("\n")
    );
    // The table is not trivially all-deny or all-permit.
    assert!(permits > cells.len() / 20 && permits < cells.len() / 2, "{permits} permits");
}

// ---------------------------------------------------------------- properties

fn arb_period() -> impl Strategy<Value = DayPeriod> {
    (0u64..400, proptest::option::of(0u64..400)).prop_map(|(s, len)| {
        let start = d("2026-01-01").checked_add_days(Days::new(s)).expect("date");
        DayPeriod::new(start, len.map(|l| start.checked_add_days(Days::new(l)).expect("date")))
    })
}

fn arb_categories() -> impl Strategy<Value = BTreeSet<DataCategory>> {
    proptest::sample::subsequence(DataCategory::ALL.to_vec(), 0..=DataCategory::ALL.len())
        .prop_map(|v| v.into_iter().collect())
}

const UZIS: [&str; 4] = ["900000011", "900000012", "900000013", "900000014"];
const URAS: [&str; 2] = [PROVIDER, "44443333"];
/// Professions of members and requesters: an SO (may break the glass), a nurse and a
/// non-BIG role (may not); a membership counts only when token and team agree.
const ROLES: [&str; 3] = ["01.047", "30.000", "99.999"];

prop_compose! {
    fn arb_member()(role in 0usize..3, uzi in 0usize..3, ura in 0usize..2, code in 0usize..2, period in arb_period()) -> TeamMember {
        TeamMember {
            role: MemberRole::ALL[role],
            uzi: UZIS[uzi].parse().expect("uzi"),
            uzi_role: ROLES[code].parse().expect("role"),
            big: None,
            organisation_ura: URAS[ura].parse().expect("ura"),
            name: None,
            period,
            participant_index: 0,
        }
    }
}

prop_compose! {
    fn arb_team()(members in proptest::collection::vec(arb_member(), 0..5), ended in proptest::option::of(0u64..400)) -> CareTeam {
        let end = ended.map(|e| d("2026-01-01").checked_add_days(Days::new(e)).expect("date"));
        CareTeam {
            id: "t".into(),
            name: None,
            patient: Bsn::parse("999911120").expect("bsn"),
            organisation_ura: PROVIDER.parse().expect("ura"),
            period: DayPeriod::new(d("2026-01-01"), end),
            state: match end {
                None => TreatmentState::Active,
                Some(_) => TreatmentState::Ended { reason: overdracht::policy::care_team::ExitReason::GoalReached },
            },
            care_form: CareForm::GroupFrail,
            next_evaluation: None,
            members,
        }
    }
}

prop_compose! {
    fn arb_agreement()(categories in arb_categories().prop_filter("non-empty", |c| !c.is_empty()), period in arb_period(), consent_basis in any::<bool>()) -> Agreement {
        let doc = json!({
            "format": "overdracht-agreement/1", "id": "a", "version": "1", "title": "t",
            "sender": {"name": "GP", "kind": "gp-practice", "agb": "01234567"},
            "receiver": {"name": "GZSP", "kind": "gzsp-provider", "ura": PROVIDER},
            "categories": categories.iter().map(|c| c.code()).collect::<Vec<_>>(),
            "valid": serde_json::to_value(period).expect("period"),
            "legal_basis": if consent_basis { "explicit-consent" } else { "treatment-relationship" },
            "purpose": "p", "retention": "P20Y"
        });
        Agreement::from_json(&doc.to_string(), "prop").expect("agreement")
    }
}

prop_compose! {
    fn arb_consent()(categories in proptest::option::of(arb_categories()), members in proptest::sample::subsequence(UZIS.to_vec(), 0..2), period in arb_period(), agreement in any::<bool>(), recorder in proptest::sample::select(URAS.to_vec())) -> PatientConsent {
        PatientConsent {
            id: "c".into(),
            patient: Bsn::parse("999911120").expect("bsn"),
            active: true,
            period,
            kind: if agreement {
                ConsentKind::AgreementConsent { agreement_id: "a".into() }
            } else {
                ConsentKind::Objection { categories, members: members.into_iter().map(str::to_owned).collect() }
            },
            // Either the agreement's receiver or an organisation outside it (review R2).
            custodians: vec![recorder.parse().expect("ura")],
        }
    }
}

prop_compose! {
    fn arb_case()(
        teams in proptest::collection::vec(arb_team(), 0..3),
        agreements in proptest::collection::vec(arb_agreement(), 0..3),
        consents in proptest::collection::vec(arb_consent(), 0..3),
        uzi in 0usize..4,
        ura in 0usize..2,
        code in 0usize..3,
        reason in proptest::option::of("[a-z ]{0,12}"),
        requested in proptest::option::of(arb_categories()),
        day in 0u64..500,
        purpose in proptest::sample::select(vec!["TREAT", "ETREAT", "HRESCH", "PUBHLTH"]),
    ) -> (Vec<CareTeam>, Vec<Agreement>, Vec<PatientConsent>, Requester, Requested, NaiveDate) {
        let r = Requester {
            uzi: UZIS[uzi].parse().expect("UZI"),
            uzi_role: ROLES[code].parse().expect("UZI role code"),
            ura: URAS[ura].parse().expect("URA"),
            purpose_of_use: purpose.into(),
            break_glass_reason: reason,
        };
        let requested = requested.map_or(Requested::All, Requested::Only);
        (teams, agreements, consents, r, requested, d("2026-01-01").checked_add_days(Days::new(day)).expect("date"))
    }
}

fn decide_case(
    engine: &PolicyEngine,
    case: &(Vec<CareTeam>, Vec<Agreement>, Vec<PatientConsent>, Requester, Requested, NaiveDate),
) -> AccessDecision {
    let (teams, agreements, consents, r, requested, day) = case;
    engine.decide(&AccessRequest {
        requester: r,
        patient: &Bsn::parse("999911120").expect("bsn"),
        teams,
        agreements,
        consents,
        day: *day,
        requested,
    })
}

fn objected_for(consents: &[PatientConsent], uzi: &str, day: NaiveDate) -> BTreeSet<DataCategory> {
    let mut out = BTreeSet::new();
    for c in consents.iter().filter(|c| c.in_force(day)) {
        if let ConsentKind::Objection { categories, members } = &c.kind {
            if members.is_empty() || members.contains(uzi) {
                out.extend(categories.clone().unwrap_or_else(|| DataCategory::ALL.iter().copied().collect()));
            }
        }
    }
    out
}

proptest! {

    #[test]
    fn deny_by_default_for_a_non_member_without_break_glass(mut case in arb_case()) {
        case.3.uzi = "900000099".parse().expect("UZI"); // in no team
        case.3.break_glass_reason = None;
        let decision = decide_case(engine(), &case);
        prop_assert!(!decision.permit, "{decision:?}");
        prop_assert!(decision.allowed_categories.is_empty());
    }

    #[test]
    fn the_decision_is_well_formed_and_bounded(case in arb_case()) {
        let decision = decide_case(engine(), &case);
        let (_, agreements, _, r, requested, day) = &case;
        prop_assert_ne!(decision.rule, "engine.error", "{:?}", decision);
        prop_assert_eq!(decision.permit, !decision.allowed_categories.is_empty());
        // Allowed categories ⊆ the categories of agreements valid on the day.
        let agreed: BTreeSet<DataCategory> = agreements.iter().filter(|a| a.valid.contains(*day)).flat_map(|a| a.categories.iter().copied()).collect();
        prop_assert!(decision.allowed_categories.is_subset(&agreed), "{:?} ⊄ {:?}", decision.allowed_categories, agreed);
        if let Requested::Only(set) = requested {
            prop_assert!(decision.allowed_categories.is_subset(set));
        }
        if decision.permit {
            prop_assert!(["TREAT", "ETREAT"].contains(&r.purpose_of_use.as_str()));
        }
        if decision.break_glass {
            prop_assert!(decision.flag_for_review && decision.permit);
            prop_assert!(r.break_glass_reason.as_deref().is_some_and(|s| !s.trim().is_empty()));
            prop_assert_eq!(r.ura.as_str(), PROVIDER);
            prop_assert_eq!(r.uzi_role.as_str(), "01.047", "only a listed profession breaks the glass");
        }
        if decision.rule == "access.member" {
            // A membership counted only with the profession the token states.
            let (teams, ..) = &case;
            prop_assert!(teams.iter().flat_map(|t| &t.members).any(|m| m.uzi == r.uzi && m.organisation_ura == r.ura && m.uzi_role == r.uzi_role));
        }
    }

    #[test]
    fn the_fast_path_decides_exactly_as_the_rego_policy(case in arb_case()) {
        let (teams, agreements, consents, r, requested, day) = &case;
        let req = AccessRequest {
            requester: r,
            patient: &Bsn::parse("999911120").expect("bsn"),
            teams,
            agreements,
            consents,
            day: *day,
            requested,
        };
        let fast = engine().decide(&req);
        let rego = engine().decide_rego(&req);
        if rego.rule == "purpose.not-permitted" {
            // The list in the message is formatted by each side's own formatter.
            prop_assert_eq!((fast.permit, &fast.rule, fast.flag_for_review), (rego.permit, &rego.rule, rego.flag_for_review));
        } else {
            prop_assert_eq!(fast, rego);
        }
    }

    #[test]
    fn an_objection_always_wins(case in arb_case()) {
        let decision = decide_case(engine(), &case);
        let (_, _, consents, r, _, day) = &case;
        let objected = objected_for(consents, &r.uzi, *day);
        prop_assert!(decision.allowed_categories.is_disjoint(&objected), "{:?} shows objected {:?}", decision, objected);
    }

    #[test]
    fn only_an_override_configured_lets_break_glass_pass_an_objection(case in arb_case()) {
        let mut config = load("policies/access-config.json");
        config["overdracht"]["config"]["break_glass"]["overrides_objection"] = json!(true);
        let rego = std::fs::read_to_string("policies/access.rego").expect("rego");
        static OVERRIDE: std::sync::OnceLock<PolicyEngine> = std::sync::OnceLock::new();
        let engine = OVERRIDE.get_or_init(|| PolicyEngine::from_sources(&[("access.rego", &rego)], &config.to_string(), "override").expect("compiles"));
        let decision = decide_case(engine, &case);
        let (_, _, consents, r, _, day) = &case;
        let objected = objected_for(consents, &r.uzi, *day);
        if !decision.allowed_categories.is_disjoint(&objected) {
            prop_assert!(decision.break_glass && decision.flag_for_review);
        }
    }
}
