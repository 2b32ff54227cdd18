//! Rule ids and their words, in one place.
//!
//! Every authorisation decision names the rule that made it (`access.member`,
//! `team.create.not-allowed`, ...); the audit trail records the id, and the evidence report,
//! the patient's access log and the command line show the words. Each id is declared once
//! below, as a constant *with* its English and Dutch words, so that an id cannot exist
//! without words: the facade engine's ids (the same in `policies/access.rego` and in the
//! native copy, held together by the parity tests), the transfer decision's, and those of the
//! decisions made in Rust (team and consent writes, audit views, the report, handover
//! parties, authentication). The tests below check that every id the shipped Rego policy can
//! emit is declared here.

/// One rule id with its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleWords {
    pub id: &'static str,
    /// Plain English, for the evidence report and the English access log.
    pub en: &'static str,
    /// Plain Dutch, for the patient's access log (`?lang=nl`).
    pub nl: &'static str,
}

macro_rules! rules {
    ($( $(#[$m:meta])* $name:ident = $id:literal, $en:literal, $nl:literal; )*) => {
        $( $(#[$m])* pub const $name: &str = $id; )*
        /// Every rule id overdracht ships, with its words.
        pub const ALL: &[RuleWords] = &[ $( RuleWords { id: $id, en: $en, nl: $nl }, )* ];
    };
}

rules! {
    // ---- the facade's access engine (policies/access.rego and policy::native)
    ACCESS_MEMBER = "access.member",
        "member of the patient's care team", "lid van het behandelteam van de patiënt";
    ACCESS_BREAK_GLASS = "access.break-glass",
        "emergency access (break-the-glass), flagged for review",
        "noodtoegang, gemarkeerd voor controle achteraf";
    PURPOSE_NOT_PERMITTED = "purpose.not-permitted",
        "purpose of use not allowed", "doel van het gebruik niet toegestaan";
    CONSENT_MEMBER_OBJECTION = "consent.member-objection",
        "the patient objects to this person seeing their data",
        "de patiënt maakt bezwaar tegen inzage door deze persoon";
    CONSENT_CATEGORY_OBJECTION = "consent.category-objection",
        "the patient objects to sharing the requested categories",
        "de patiënt maakt bezwaar tegen het delen van deze gegevens";
    AGREEMENT_NONE_IN_FORCE = "agreement.none-in-force",
        "no data-transfer agreement in force brought data to this provider",
        "er is geen geldende afspraak waaronder gegevens naar deze zorgaanbieder kwamen";
    CATEGORY_NOT_ALLOWED = "category.not-allowed",
        "none of the requested categories is allowed for this role",
        "geen van de gevraagde soorten gegevens is toegestaan voor deze rol";
    BREAK_GLASS_DISABLED = "break-glass.disabled",
        "emergency access is not enabled at this provider",
        "noodtoegang is bij deze zorgaanbieder niet ingeschakeld";
    BREAK_GLASS_PROFESSION = "break-glass.profession",
        "emergency access refused: not a profession the policy names",
        "noodtoegang geweigerd: geen beroep dat daarvoor is aangewezen";
    BREAK_GLASS_OTHER_ORGANISATION = "break-glass.other-organisation",
        "emergency access refused: not a member of the provider that treats the patient",
        "noodtoegang geweigerd: niet werkzaam bij de zorgaanbieder die de patiënt behandelt";
    MEMBERSHIP_NOT_STARTED = "membership.not-started",
        "the membership of the care team has not started yet",
        "het lidmaatschap van het behandelteam is nog niet begonnen";
    MEMBERSHIP_ENDED = "membership.ended",
        "the membership of the care team has ended", "het lidmaatschap van het behandelteam is beëindigd";
    MEMBERSHIP_ROLE_MISMATCH = "membership.role-mismatch",
        "the team records another profession than the token states",
        "het team vermeldt een ander beroep dan waarmee is ingelogd";
    MEMBERSHIP_OTHER_ORGANISATION = "membership.other-organisation",
        "member of the care team for another organisation",
        "lid van het behandelteam namens een andere organisatie";
    TREATMENT_ENDED = "treatment.ended",
        "the treatment has ended", "de behandeling is beëindigd";
    DEFAULT_NOT_A_MEMBER = "default.not-a-member",
        "not a member of the patient's care team", "geen lid van het behandelteam van de patiënt";
    DEFAULT_DENY = "default.deny",
        "no rule permits this request (denied by default)",
        "geen regel staat dit toe (standaard geweigerd)";
    /// The engine failed or returned something malformed: denied.
    ENGINE_ERROR = "engine.error",
        "the policy could not decide (denied)", "het beleid kon niet beslissen (geweigerd)";
    /// An adapted policy returned a rule id that its source does not spell out.
    POLICY_UNLISTED_RULE = "policy.unlisted-rule",
        "a rule of the adapted access policy", "een regel van het aangepaste toegangsbeleid";
    /// The facade found a stored patient without a valid BSN.
    DEFAULT_NO_PATIENT = "default.no-patient",
        "the stored patient has no valid BSN (denied)",
        "de opgeslagen patiënt heeft geen geldig BSN (geweigerd)";
    FACADE_NOT_FOUND = "facade.not-found",
        "nothing held for the request", "niets gevonden voor dit verzoek";

    // ---- who may send or convert patient data (policy::purpose)
    PURPOSE_TREATMENT = "purpose.treatment",
        "purpose of use is treatment or coordination of care",
        "doel van het gebruik is behandeling of coördinatie van zorg";
    PURPOSE_NOT_TREATMENT = "purpose.not-treatment",
        "purpose of use does not allow sending or converting patient data",
        "dit doel van het gebruik staat verzenden of omzetten van gegevens niet toe";

    // ---- authentication (api::auth)
    AUTH_BEARER_TOKEN = "auth.bearer-token",
        "no valid bearer token (refused before any data was touched)",
        "geen geldig toegangsbewijs (geweigerd voordat gegevens werden geraadpleegd)";

    // ---- transfers (policy::agreement, the handover)
    TRANSFER_PERMITTED = "transfer.permitted",
        "handover under an agreement in force", "overdracht onder een geldende afspraak";
    TRANSFER_NO_AGREEMENT = "transfer.no-agreement",
        "no agreement between sender and receiver", "geen afspraak tussen verzender en ontvanger";
    TRANSFER_NOT_IN_FORCE = "transfer.not-in-force",
        "the agreement is not in force on that day", "de afspraak geldt niet op die dag";
    TRANSFER_NO_CONSENT = "transfer.no-consent",
        "the agreement needs the patient's explicit consent; none recorded",
        "de afspraak vraagt uitdrukkelijke toestemming van de patiënt; die is niet vastgelegd";
    TRANSFER_CONSENT_NOT_AGREEMENT_PARTY = "transfer.consent-not-agreement-party",
        "the only consent for the agreement was recorded by an organisation that is not a party to it",
        "de enige toestemming voor de afspraak is vastgelegd door een organisatie die geen partij is";
    TRANSFER_PATIENT_OBJECTION = "transfer.patient-objection",
        "the patient objects to sharing any data", "de patiënt maakt bezwaar tegen het delen van gegevens";
    TRANSFER_NOTHING_COVERED = "transfer.nothing-covered",
        "none of the categories sent is covered", "geen van de verzonden soorten gegevens valt onder de afspraak";
    TRANSFER_NO_BSN = "transfer.no-bsn",
        "the record does not identify the patient by BSN", "het dossier noemt het BSN van de patiënt niet";
    /// A handover whose resource ids are held for another patient (see `fhir::ids`).
    IDENTITY_BOUND_TO_ANOTHER_PATIENT = "identity.bound-to-another-patient",
        "a resource of the record is held for another patient: nothing stored",
        "een onderdeel van het dossier hoort bij een andere patiënt: niets bewaard";
    /// The record or request was malformed (counted by the report from `invalid` entries).
    REQUEST_INVALID = "request.invalid",
        "the request or the record was malformed or broke a rule",
        "het verzoek of het dossier was onjuist of brak een regel";
    /// The agreement-change entry written when the agreements in force change at start.
    AGREEMENTS_LOADED_AT_START = "agreements.loaded-at-start",
        "the agreements in force changed at start-up", "de geldende afspraken zijn bij het starten gewijzigd";

    // ---- handovers (policy::parties)
    SENDER_TOKEN_ORGANISATION = "handover.sender.token-organisation",
        "sender is the organisation in the token", "verzender is de organisatie waarmee is ingelogd";
    SENDER_CONFIGURED_AGB = "handover.sender.configured-agb",
        "sender is a configured AGB code of the organisation in the token",
        "verzender is een ingestelde AGB-code van de organisatie waarmee is ingelogd";
    SENDER_NOT_TOKEN_ORGANISATION = "handover.sender.not-token-organisation",
        "the sender named is not the organisation in the token",
        "de genoemde verzender is niet de organisatie waarmee is ingelogd";
    HANDOVER_SENDER = "handover.sender",
        "handover read by its sender", "overdracht ingezien door de verzender";
    HANDOVER_TEAM = "handover.team",
        "handover read by the patient's team at the receiver",
        "overdracht ingezien door het behandelteam bij de ontvanger";
    HANDOVER_REFERRAL_REASON_HIDDEN = "handover.referral-reason.hidden",
        "handover read at the receiver outside the team: no referral reason",
        "overdracht ingezien bij de ontvanger buiten het team: zonder verwijsreden";
    HANDOVER_NOT_A_PARTY = "handover.not-a-party",
        "neither sender nor receiver of the handover", "geen verzender of ontvanger van de overdracht";
    HANDOVER_UNKNOWN = "handover.unknown",
        "no such handover", "onbekende overdracht";

    // ---- care-team writes and reads (policy::writes)
    TEAM_WRITE_ORGANISATION = "team.write.organisation",
        "a care team is written by its managing organisation only",
        "een behandelteam wordt alleen door de eigen organisatie vastgelegd";
    TEAM_MEMBER_ROLE_MISMATCH = "team.member.role-mismatch",
        "the team states another profession for the writer than the token",
        "het team vermeldt voor de schrijver een ander beroep dan waarmee is ingelogd";
    TEAM_WRITE_NOT_LEAD = "team.write.not-lead",
        "only the team's lead practitioner or an administrator changes a team",
        "alleen de regiebehandelaar of een beheerder wijzigt een behandelteam";
    TEAM_WRITE_LEAD = "team.write.lead",
        "care team changed by its lead practitioner", "behandelteam gewijzigd door de regiebehandelaar";
    TEAM_WRITE_ADMIN = "team.write.admin",
        "care team changed by an administrator of its organisation",
        "behandelteam gewijzigd door een beheerder van de organisatie";
    TEAM_WRITE_OTHER_PATIENT = "team.write.other-patient",
        "a care team cannot be moved to another patient",
        "een behandelteam kan niet naar een andere patiënt worden verplaatst";
    TEAM_CREATE_ADMIN = "team.create.admin",
        "care team created by an administrator of its organisation",
        "behandelteam aangemaakt door een beheerder van de organisatie";
    TEAM_CREATE_CURRENT_LEAD = "team.create.current-lead",
        "care team created by the patient's current lead practitioner",
        "behandelteam aangemaakt door de huidige regiebehandelaar van de patiënt";
    TEAM_CREATE_NOT_ALLOWED = "team.create.not-allowed",
        "a new team is created by an administrator or the patient's current lead",
        "een nieuw behandelteam wordt aangemaakt door een beheerder of de huidige regiebehandelaar";
    TEAM_ONE_ACTIVE = "team.one-active",
        "the patient already has an active team at this organisation",
        "de patiënt heeft al een actief behandelteam bij deze organisatie";
    TEAM_READ = "team.read",
        "care team read by a member", "behandelteam ingezien door een lid";
    TEAM_READ_ADMIN = "team.read.admin",
        "care team read by an administrator of its organisation",
        "behandelteam ingezien door een beheerder van de organisatie";
    TEAM_READ_NOT_VISIBLE = "team.read.not-visible",
        "not a member of the team", "geen lid van het behandelteam";
    /// A team search that found no team of the patient at all.
    TEAM_SEARCH = "team.search",
        "care teams searched; none held for the patient", "behandelteams gezocht; geen gevonden";

    // ---- patient consents and objections (policy::writes)
    CONSENT_WRITE = "consent.write",
        "consent or objection recorded", "toestemming of bezwaar vastgelegd";
    CONSENT_WRITE_NOT_ALLOWED = "consent.write.not-allowed",
        "consents are recorded by the lead practitioner or an administrator",
        "toestemming wordt vastgelegd door de regiebehandelaar of een beheerder";
    CONSENT_WRITE_OTHER_ORGANISATION = "consent.write.other-organisation",
        "the consent was recorded by another organisation",
        "de toestemming is door een andere organisatie vastgelegd";
    CONSENT_WRITE_OTHER_PATIENT = "consent.write.other-patient",
        "a consent cannot be moved to another patient",
        "een toestemming kan niet naar een andere patiënt worden verplaatst";
    CONSENT_WRITE_CUSTODIAN = "consent.write.custodian",
        "the recording organisation must stay named on the consent",
        "de organisatie die de toestemming vastlegde moet erop genoemd blijven";
    CONSENT_WRITE_NOT_AGREEMENT_PARTY = "consent.write.not-agreement-party",
        "a consent for an agreement is recorded by its sender or receiver only",
        "toestemming voor een afspraak wordt alleen door de verzender of ontvanger vastgelegd";
    CONSENT_WRITE_UNKNOWN_AGREEMENT = "consent.write.unknown-agreement",
        "the consent names an agreement that is not known",
        "de toestemming noemt een onbekende afspraak";
    CONSENT_WITHDRAW_NO_STATEMENT = "consent.withdraw.no-statement",
        "an objection is withdrawn only with the patient's recorded statement",
        "een bezwaar wordt alleen ingetrokken met de vastgelegde verklaring van de patiënt";
    CONSENT_WITHDRAW_WITH_STATEMENT = "consent.withdraw.with-statement",
        "objection withdrawn with the patient's recorded statement",
        "bezwaar ingetrokken met de vastgelegde verklaring van de patiënt";
    CONSENT_READ = "consent.read",
        "consent read by its organisation", "toestemming ingezien door de eigen organisatie";
    CONSENT_READ_OTHER_ORGANISATION = "consent.read.other-organisation",
        "the consent was recorded by another organisation",
        "de toestemming is door een andere organisatie vastgelegd";

    // ---- audit views and reviews (policy::audit_view)
    AUDIT_VIEW_PRIVACY_OFFICER = "audit-view/privacy-officer",
        "audit trail viewed by a privacy officer of the organisation",
        "logboek ingezien door een privacyfunctionaris van de organisatie";
    AUDIT_VIEW_TREATING_ORGANISATION = "audit-view/treating-organisation",
        "audit trail viewed by the patient's care team at the treating organisation",
        "logboek ingezien door het behandelteam van de patiënt";
    AUDIT_VIEW_SENDER_OWN_ENTRIES = "audit-view/sender-own-entries",
        "the sender sees its own entries only", "de verzender ziet alleen de eigen regels";
    AUDIT_VIEW_DENY = "audit-view/deny",
        "audit trail viewed by someone not entitled", "logboek gevraagd door iemand zonder recht daarop";
    AUDIT_VIEW_NOT_IN_TEAM = "audit-view/not-in-team",
        "at the receiving organisation, the patient's trail is for the patient's care team and the privacy officers",
        "bij de ontvangende organisatie is het logboek van de patiënt voor het behandelteam en de privacyfunctionarissen";
    AUDIT_REVIEW_OFFICER = "audit-review/privacy-officer",
        "review of a flagged entry by a privacy officer",
        "controle van een gemarkeerde regel door een privacyfunctionaris";
    AUDIT_REVIEW_NOT_OFFICER = "audit-review/not-an-officer",
        "reviews are for privacy officers", "controles zijn voor privacyfunctionarissen";
    AUDIT_REVIEW_OTHER_ORGANISATION = "audit-review/other-organisation",
        "the entry belongs to another organisation", "de regel hoort bij een andere organisatie";

    // ---- the evidence report (policy::report_view)
    REPORT_ADMIN = "report/administrator",
        "report seen by an administrator of the provider", "rapportage ingezien door een beheerder";
    REPORT_PRIVACY_OFFICER = "report/privacy-officer",
        "report seen by a privacy officer of the provider",
        "rapportage ingezien door een privacyfunctionaris";
    REPORT_OTHER_PROVIDER = "report/other-provider",
        "report requested for another organisation than the one in the token",
        "rapportage gevraagd voor een andere organisatie";
    REPORT_DENY = "report/deny",
        "report requested by someone not entitled", "rapportage gevraagd door iemand zonder recht daarop";
    REPORT_LOCAL_OPERATOR = "report/local-operator",
        "report made on the command line by an operator", "rapportage gemaakt op de opdrachtregel";
}

/// Ids used before and the id that replaced them: old audit entries keep their words.
const FORMER: &[(&str, &str)] = &[("purpose.not-allowed", PURPOSE_NOT_PERMITTED)];

/// The declared rule `id`, with its words.
pub fn lookup(id: &str) -> Option<&'static RuleWords> {
    let id = FORMER.iter().find(|(old, _)| *old == id).map_or(id, |(_, new)| *new);
    ALL.iter().find(|r| r.id == id)
}

/// The declared id equal to `id` as a `&'static str` (for a rule id read back from the Rego
/// engine or the audit trail).
pub fn known(id: &str) -> Option<&'static str> {
    ALL.iter().find(|r| r.id == id).map(|r| r.id)
}

/// Plain English words for a rule id; empty when the id is not one overdracht ships (an
/// adapted policy's own rules).
pub fn words(rule: &str) -> &'static str {
    lookup(rule).map_or("", |r| r.en)
}

/// Plain Dutch words for a rule id; empty when the id is not one overdracht ships.
pub fn words_nl(rule: &str) -> &'static str {
    lookup(rule).map_or("", |r| r.nl)
}

/// The rule ids a Rego source spells out as string literals in a rule position: the first
/// argument of `deny(...)` and the value of a `"rule":` key. Used to check that the shipped
/// policy's ids are all declared, and to keep an adapted policy's own ids (see
/// [`crate::policy::PolicyEngine`]).
pub fn ids_in_rego(source: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for (marker, quote) in [("deny(\"", '"'), ("\"rule\": \"", '"')] {
        let mut rest = source;
        while let Some(i) = rest.find(marker) {
            rest = &rest[i + marker.len()..];
            if let Some(end) = rest.find(quote) {
                let id = &rest[..end];
                if !id.is_empty() && !id.contains(['<', ' ']) && !out.contains(&id) {
                    out.push(id);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_id_is_declared_once_with_words_in_both_languages() {
        let mut seen = std::collections::BTreeSet::new();
        for r in ALL {
            assert!(seen.insert(r.id), "{} twice", r.id);
            assert!(!r.en.trim().is_empty() && !r.nl.trim().is_empty(), "{}", r.id);
            assert_ne!(r.en, r.nl, "{}: the Dutch words are a translation", r.id);
        }
        assert_eq!(words("no-such-rule"), "");
        assert_eq!(words("purpose.not-allowed"), words(PURPOSE_NOT_PERMITTED), "a former id keeps its words");
    }

    /// Every rule the shipped Rego policy can emit is declared (and so has words); the native
    /// engine takes its ids from the constants, and the parity tests hold it to the Rego.
    #[test]
    fn every_rule_the_shipped_policy_can_emit_has_words() {
        let rego = include_str!("../../policies/access.rego");
        let ids = ids_in_rego(rego);
        assert!(ids.len() >= 17, "the scan finds the policy's rules: {ids:?}");
        for id in ids {
            assert!(known(id).is_some(), "{id} (policies/access.rego) is not declared in policy::rules");
        }
    }

    /// The same for the rule ids written as literals anywhere in src/ where a decision or an
    /// audit entry takes one (`Decision::deny("…"`, `rule = Some("…"`, `outcome(…, "…"`): a
    /// rule spelt outside this file must still be a declared one.
    #[test]
    fn rule_literals_in_the_source_are_declared() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).expect("src").flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
        let markers = ["rule = Some(\"", "Decision::deny(\"", "Decision::permit(\"", "rule: \""];
        for f in files.iter().filter(|f| !f.ends_with("policy/rules.rs")) {
            let text = std::fs::read_to_string(f).expect("source");
            for m in markers {
                for (i, _) in text.match_indices(m) {
                    let rest = &text[i + m.len()..];
                    let id = &rest[..rest.find('"').unwrap_or(0)];
                    assert!(known(id).is_some(), "{}: rule {id:?} is not declared in policy::rules", f.display());
                }
            }
        }
    }

    #[test]
    fn the_rego_scan_reads_deny_calls_and_rule_keys() {
        let ids = ids_in_rego("d := deny(\"a.b\", \"x\")\n{\"rule\": \"c.d\", \"rule\": rule}\n# \"rule\": \"<id>\"");
        assert_eq!(ids, vec!["a.b", "c.d"]);
    }
}
