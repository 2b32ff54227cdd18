//! Unit tests of the pure parts of the report: periods and month buckets, agreement and
//! evaluation states, the access arrangement in words, the view rule, and HTML escaping.

use proptest::prelude::*;

use super::html::{esc, render};
use super::*;

fn d(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

#[test]
fn the_default_period_is_the_twelve_months_up_to_today() {
    let p = Period::parse(None, None, d("2026-11-23")).expect("period");
    assert_eq!((p.from, p.to), (d("2025-11-24"), d("2026-11-23")));
    assert_eq!(p.months().len(), 13);
    assert_eq!(p.months().first().map(String::as_str), Some("2025-11"));
    assert_eq!(p.months().last().map(String::as_str), Some("2026-11"));
    let p = Period::parse(Some("2026-01-15"), Some("2026-03-01"), d("2026-11-23")).expect("period");
    assert_eq!(p.months(), ["2026-01", "2026-02", "2026-03"]);
    assert!(Period::parse(Some("2026-03-02"), Some("2026-03-01"), d("2026-11-23")).is_err());
    assert!(Period::parse(Some("2026-13-01"), None, d("2026-11-23")).is_err());
}

#[test]
fn period_bounds_are_dutch_midnights_in_utc() {
    // Winter (CET, +01:00) and summer (CEST, +02:00).
    let p = Period { from: d("2026-01-01"), to: d("2026-06-30") };
    assert_eq!(p.utc_bounds(), ("2025-12-31T23:00:00.000Z".to_owned(), "2026-06-30T22:00:00.000Z".to_owned()));
}

#[test]
fn hours_fall_in_dutch_months() {
    assert_eq!(month_of_hour("2026-01-31T22").as_deref(), Some("2026-01"));
    assert_eq!(month_of_hour("2026-01-31T23").as_deref(), Some("2026-02"), "00:00 CET on 1 February");
    assert_eq!(month_of_hour("2026-06-30T21").as_deref(), Some("2026-06"));
    assert_eq!(month_of_hour("2026-06-30T22").as_deref(), Some("2026-07"), "00:00 CEST on 1 July");
    assert_eq!(month_of_hour("garbage"), None);
    let b = bucket_months(vec![
        ("2026-01-31T22".to_owned(), "a", 2),
        ("2026-01-31T23".to_owned(), "a", 3),
        ("2026-02-10T10".to_owned(), "a", 1),
        ("2026-02-10T10".to_owned(), "b", 4),
        ("x".to_owned(), "b", 1),
    ]);
    assert_eq!(b.get(&("2026-01".to_owned(), "a")), Some(&2));
    assert_eq!(b.get(&("2026-02".to_owned(), "a")), Some(&4));
    assert_eq!(b.get(&("2026-02".to_owned(), "b")), Some(&4));
    assert_eq!(b.get(&("unknown".to_owned(), "b")), Some(&1));
}

proptest! {
    /// Bucketing never loses or invents a count, and every hour lands in the month that
    /// contains its Europe/Amsterdam time.
    #[test]
    fn bucketing_preserves_totals(rows in proptest::collection::vec((0i64..(3 * 365 * 24), 0u8..3, 0i64..1000), 0..60)) {
        let base = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("day").and_hms_opt(0, 0, 0).expect("t").and_utc();
        let hours: Vec<(String, u8, i64)> = rows
            .iter()
            .map(|(h, k, n)| ((base + chrono::Duration::hours(*h)).format("%Y-%m-%dT%H").to_string(), *k, *n))
            .collect();
        let b = bucket_months(hours.clone());
        prop_assert_eq!(b.values().sum::<i64>(), hours.iter().map(|r| r.2).sum::<i64>());
        for (hour, _, _) in &hours {
            let m = month_of_hour(hour).expect("month");
            let t = chrono::NaiveDateTime::parse_from_str(&format!("{hour}:00:00"), "%Y-%m-%dT%H:%M:%S").expect("t").and_utc();
            let local = t.with_timezone(&chrono_tz::Europe::Amsterdam);
            prop_assert_eq!(m, local.format("%Y-%m").to_string());
        }
        prop_assert!(b.keys().all(|(m, _)| m.len() == 7));
    }

    /// Whatever the text, escaped output has no markup characters left.
    #[test]
    fn escaping_leaves_no_markup(s in ".*") {
        let e = esc(&s);
        prop_assert!(!e.contains('<') && !e.contains('>') && !e.contains('"') && !e.contains('\''));
        prop_assert!(e.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").replace("&quot;", "").replace("&#39;", "").find('&').is_none());
    }
}

fn agreement(end: Option<&str>, start: &str) -> Agreement {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../examples/agreements/de-linde-to-zorggroep-zuid.json")).expect("json");
    v["valid"] = match end {
        Some(e) => serde_json::json!({"start": start, "end": e}),
        None => serde_json::json!({"start": start}),
    };
    Agreement::from_json(&v.to_string(), "test").expect("agreement")
}

#[test]
fn agreements_expiring_within_ninety_days_are_flagged() {
    let today = d("2026-11-23");
    assert_eq!(agreement_status(&agreement(None, "2025-01-01"), today), ("in-force", None));
    assert_eq!(agreement_status(&agreement(Some("2027-02-21"), "2025-01-01"), today), ("expiring-soon", Some(90)));
    assert_eq!(agreement_status(&agreement(Some("2027-02-22"), "2025-01-01"), today), ("in-force", Some(91)));
    assert_eq!(agreement_status(&agreement(Some("2026-11-23"), "2025-01-01"), today), ("expiring-soon", Some(0)));
    assert_eq!(agreement_status(&agreement(Some("2026-11-22"), "2025-01-01"), today).0, "expired");
    assert_eq!(agreement_status(&agreement(None, "2026-11-24"), today).0, "not-yet-in-force");
    let a = agreement(Some("2027-01-01"), "2025-01-01");
    let b = agreement(None, "2027-01-01");
    let section = agreements_section(&[&a, &b], today);
    assert_eq!(section.expiring_soon, ["de-linde-to-zorggroep-zuid@1.0"]);
    assert_eq!((section.in_force.len(), section.not_in_force.len()), (1, 1));
    assert_eq!(section.senders_in_force, ["Huisartsenpraktijk De Linde"]);
}

#[test]
fn evaluations_are_due_within_thirty_days_and_overdue_after() {
    let today = d("2026-11-23");
    assert_eq!(evaluation_state(true, false, Some(d("2026-12-23")), today), "due");
    assert_eq!(evaluation_state(true, false, Some(d("2026-12-24")), today), "planned");
    assert_eq!(evaluation_state(true, false, Some(today), today), "due");
    assert_eq!(evaluation_state(true, false, Some(d("2026-11-22")), today), "overdue");
    assert_eq!(evaluation_state(true, false, None, today), "not-planned");
    assert_eq!(evaluation_state(true, true, None, today), "not-required");
    assert_eq!(evaluation_state(true, true, Some(d("2026-11-22")), today), "not-required", "exempt: never overdue");
    assert_eq!(evaluation_state(true, true, Some(d("2026-12-01")), today), "due");
    assert_eq!(evaluation_state(false, false, Some(d("2020-01-01")), today), "not-applicable");
}

#[test]
fn nine_digit_numbers_are_masked() {
    assert_eq!(mask_bsn_like("zuid-999911120-2026"), "zuid-*********-2026");
    assert_eq!(mask_bsn_like("999911120"), "*********");
    assert_eq!(mask_bsn_like("Consent/objection-999911132-x"), "Consent/objection-*********-x");
    assert_eq!(
        mask_bsn_like("a 12345678 b 1234567890 c 123456789"),
        "a 12345678 b 1234567890 c 123456789",
        "not a BSN"
    );
}

#[test]
fn the_access_arrangement_is_generated_from_the_configuration() {
    let engine = PolicyEngine::embedded().expect("policy");
    let a = access_arrangement(&engine);
    assert_eq!(a.policy, "shipped");
    let keys: Vec<&str> = a.rules.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["lead-practitioner", "co-practitioner", "supporting-discipline", "break-glass"]);
    assert!(a.statements[0].starts_with("Lead practitioner (regiebehandelaar): every data category"));
    assert!(a.statements[1].ends_with("except Contacts and journal (SOAP) entries"), "{}", a.statements[1]);
    assert!(a.statements.iter().any(|s| s.contains("30 days")));
    assert!(a.statements.iter().any(|s| s.contains("TREAT or ETREAT")));
    // Another configuration gives other words.
    let config = include_str!("../../policies/access-config.json")
        .replace("\"grace_period_days\": 30", "\"grace_period_days\": 14")
        .replace("\"all_except\": [\"journal\"]", "\"only\": [\"problems\"]");
    let engine =
        PolicyEngine::from_sources(&[("p.rego", include_str!("../../policies/access.rego"))], &config, "c.json")
            .expect("policy");
    let a = access_arrangement(&engine);
    assert!(a.statements.iter().any(|s| s.contains("14 days")));
    assert!(a.rules[1].text.ends_with(&format!("only {}", DataCategory::Problems.display())), "{}", a.rules[1].text);
}

#[test]
fn only_administrators_and_privacy_officers_of_the_provider_may_see_the_report() {
    use crate::policy::report_view::decide_report_view;
    use crate::policy::rules::{REPORT_ADMIN, REPORT_DENY, REPORT_OTHER_PROVIDER, REPORT_PRIVACY_OFFICER};
    let admins = crate::policy::Admins::parse(&["11112222:900000900".to_owned()]).expect("admins");
    let officers = vec!["99.999".to_owned()];
    let view = |uzi: &str, role: &str, ura: &str, provider: &str| {
        let (uzi, uzi_role, ura) = (uzi.parse().expect("UZI"), role.parse().expect("role"), ura.parse().expect("URA"));
        let actor =
            crate::policy::Actor { uzi: &uzi, uzi_role: &uzi_role, ura: &ura, admin: admins.is_admin(&ura, &uzi) };
        decide_report_view(&actor, provider, &officers)
    };
    let v = view("900000900", "01.047", "11112222", "11112222");
    assert!(v.permit && v.rule == REPORT_ADMIN);
    let v = view("1", "99.999", "11112222", "11112222");
    assert!(v.permit && v.rule == REPORT_PRIVACY_OFFICER);
    let v = view("900000900", "99.999", "55556666", "11112222");
    assert!(!v.permit && v.rule == REPORT_OTHER_PROVIDER, "another organisation, even an admin");
    let v = view("900000101", "01.047", "11112222", "11112222");
    assert!(!v.permit && v.rule == REPORT_DENY);
    // An administrator of one organisation is not one of another.
    let v = view("900000900", "01.047", "55556666", "55556666");
    assert!(!v.permit && v.rule == REPORT_DENY);
    let e = audit_entry(&v, "Report?x".into());
    assert_eq!((e.action, e.outcome), (AuditAction::Report, AuditOutcome::Denied));
}

#[test]
fn the_only_receiver_is_the_default_provider() {
    let a = agreement(None, "2025-01-01");
    assert_eq!(default_provider(std::slice::from_ref(&a)).expect("one"), "11112222");
    assert!(default_provider(&[]).is_err());
    let mut b = a.clone();
    b.receiver.ura = Some("33334444".parse().expect("ura"));
    let e = default_provider(&[a, b]).expect_err("two");
    assert!(e.to_string().contains("11112222, 33334444"), "{e}");
}

/// A report with a hostile string in every free-text field.
fn hostile_report() -> Report {
    const X: &str = "<script>alert(1)</script>\"'&";
    let mut a = agreement(Some("2026-12-01"), "2025-01-01");
    a.title = X.into();
    a.purpose = X.into();
    a.sender.name = X.into();
    a.sender.department = Some(X.into());
    let engine = PolicyEngine::embedded().expect("policy");
    let today = d("2026-11-23");
    let team = TeamOut {
        id: X.into(),
        name: Some(X.into()),
        care_form: "group-frail",
        care_form_text: "Group care",
        state: "active",
        exit_reason: None,
        lead: Some(LeadOut {
            uzi: X.into(),
            name: Some(X.into()),
            uzi_role: X.into(),
            role_name: "SO",
            big: Some(X.into()),
        }),
        lead_eligible: false,
        lead_eligibility: X.into(),
        next_evaluation: Some(X.into()),
        evaluation: "overdue",
        members: 1,
        findings: vec![X.into()],
    };
    Report {
        format: FORMAT,
        generated: X.into(),
        today: X.into(),
        provider: Provider { ura: X.into(), name: Some(X.into()), agb: Some(X.into()) },
        period: PeriodOut { from: X.into(), to: X.into(), months: vec![X.into()], time_zone: "Europe/Amsterdam" },
        agreements: agreements_section(&[&a], today),
        access: access_arrangement(&engine),
        teams: TeamsSection {
            count: 1,
            active: 1,
            leads_not_eligible: 1,
            without_lead: 0,
            evaluations_due: 0,
            evaluations_overdue: 1,
            evaluation_due_days: 30,
            teams: vec![team],
            unreadable: 0,
        },
        handovers: HandoversSection {
            received: 1,
            received_again: 0,
            refused: 1,
            per_month: vec![HandoverMonth { month: X.into(), sender: X.into(), received: 1, refused: 1 }],
            per_sender: vec![SenderOut {
                sender: X.into(),
                ids: vec![X.into()],
                has_agreement: false,
                received: 1,
                received_again: 0,
                refused: 1,
            }],
            refused_by_rule: vec![RuleCount { rule: X.into(), count: 1 }],
            removed_categories: vec![RemovedOut {
                sender: X.into(),
                category: X.into(),
                display: X.into(),
                handovers: 1,
                resources: 2,
                reason: Some(X.into()),
            }],
        },
        reads: ReadsSection {
            requests: 1,
            permitted: 1,
            denied: 0,
            by_role: vec![RoleReads {
                uzi_role: X.into(),
                role_name: "x",
                read: 1,
                search: 0,
                export: 0,
                break_glass: 0,
                permitted: 1,
                denied: 0,
            }],
            by_team_role: vec![TeamRoleReads {
                team_role: X.into(),
                role_name: X.into(),
                read: 1,
                search: 0,
                export: 0,
                total: 1,
            }],
        },
        denials: DenialsSection {
            total: 1,
            by_rule: vec![RuleCount { rule: X.into(), count: 1 }],
            by_action: vec![RuleCount { rule: X.into(), count: 1 }],
            per_month: vec![MonthCount { month: X.into(), count: 1 }],
        },
        break_glass: BreakGlassSection {
            count: 1,
            reviewed: 1,
            not_reviewed: 0,
            events: vec![BreakGlassEvent {
                id: X.into(),
                recorded: X.into(),
                user_uzi: Some(X.into()),
                uzi_role: Some(X.into()),
                role_name: Some("x"),
                user_ura: Some(X.into()),
                reason_stated: true,
                reviewed: true,
                review: Some(ReviewOut {
                    id: X.into(),
                    recorded: X.into(),
                    reviewer_uzi: Some(X.into()),
                    conclusion: "justified",
                }),
            }],
            truncated: false,
        },
        audit_chain: ChainStatus {
            intact: false,
            status: X.into(),
            entries: 1,
            checked: 0,
            head_hash: X.into(),
            head_time: Some(X.into()),
        },
    }
}

#[test]
fn every_dynamic_string_is_escaped_in_the_page() {
    let html = render(&hostile_report());
    assert!(!html.contains("<script"), "a raw <script> tag made it into the page");
    assert!(!html.contains("\"'&<"), "raw quotes in the page");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
    // Markup of our own is balanced where it matters: no attribute was broken open.
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    assert!(html.contains(html::CSP));
}

#[test]
fn the_page_is_self_contained_and_has_no_script() {
    let html = render(&hostile_report());
    for needle in ["<script", "http://", "https://", "<link", "src=", "@import", "url("] {
        let allowed =
            needle == "http://" && html.matches(needle).count() == html.matches("http://www.w3.org/2000/svg").count();
        assert!(!html.contains(needle) || allowed, "{needle} in the page");
    }
}

#[test]
fn retention_is_shown_in_words() {
    assert_eq!(super::html::retention_words("P20Y"), "20 years (P20Y)");
    assert_eq!(super::html::retention_words("P1M"), "1 month (P1M)");
    assert_eq!(super::html::retention_words("P"), "P");
    assert_eq!(super::html::retention_words("PxY"), "PxY");
}

#[test]
fn reads_per_team_role_name_and_order_the_roles() {
    use crate::store::report::TeamReadRow;
    let row = |roles: Option<&str>, action: &str, count| TeamReadRow {
        team_roles: roles.map(str::to_owned),
        action: action.to_owned(),
        count,
    };
    let rows = [
        row(None, "read", 3),
        row(Some(" co-practitioner lead-practitioner "), "search", 1),
        row(Some(" lead-practitioner "), "read", 2),
        row(Some(" lead-practitioner "), "export", 4),
        row(Some(" supporting-discipline "), "export", 1),
    ];
    let v = team_role_reads(&rows);
    let keys: Vec<&str> = v.iter().map(|x| x.team_role.as_str()).collect();
    assert_eq!(keys, ["lead-practitioner", "supporting-discipline", "co-practitioner+lead-practitioner", "none"]);
    assert_eq!((v[0].read, v[0].search, v[0].export, v[0].total), (2, 0, 4, 6));
    assert_eq!(v[0].role_name, "Lead practitioner (regiebehandelaar)");
    assert_eq!(v[2].role_name, "Co-practitioner (medebehandelaar) and Lead practitioner (regiebehandelaar)");
    assert_eq!((v[3].read, v[3].total), (3, 3));
}

#[test]
fn the_report_keeps_review_notes_out() {
    assert_eq!(conclusion_code(Some("justified: fell at home, lead unreachable")), "justified");
    assert_eq!(conclusion_code(Some("not-justified: curiosity")), "not-justified");
    assert_eq!(conclusion_code(Some("something else")), "recorded");
    assert_eq!(conclusion_code(None), "recorded");
}

#[test]
fn an_active_team_whose_lead_left_has_no_lead() {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../examples/care-teams/frail-elderly-group-care.json")).unwrap();
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let t = CareTeam::from_fhir(&v).unwrap();
    assert_eq!(team_out(&t, today).lead.map(|l| l.uzi), Some("900000101".to_owned()));
    // The lead's membership ended last month; the treatment goes on.
    v["participant"][0]["period"]["end"] = "2026-10-31".into();
    let t = CareTeam::from_fhir(&v).unwrap();
    let out = team_out(&t, today);
    assert_eq!(out.state, "active");
    assert!(out.lead.is_none(), "the former lead is not shown as the lead of an active team");
    assert_eq!(teams_section(&[v.to_string()], today).without_lead, 1);
}
