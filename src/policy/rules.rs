//! Rule ids and their words, in one place.
//!
//! Every authorisation decision names the rule that made it (`access.member`,
//! `team.create.not-allowed`, ...); the audit trail records the id, and the evidence report
//! and the command line show the words. The access matrix's own rules come from
//! `policies/access.rego` (the ids are kept in step with the native engine by the parity
//! tests); the decisions made in Rust (team and consent writes, audit views, handover
//! parties) take their ids from the constants here, so that a rule id is never spelt twice.

// ---- care-team writes and reads (policy::writes)
pub const TEAM_WRITE_ORGANISATION: &str = "team.write.organisation";
pub const TEAM_MEMBER_ROLE_MISMATCH: &str = "team.member.role-mismatch";
pub const TEAM_WRITE_NOT_LEAD: &str = "team.write.not-lead";
pub const TEAM_WRITE_LEAD: &str = "team.write.lead";
pub const TEAM_WRITE_ADMIN: &str = "team.write.admin";
pub const TEAM_WRITE_OTHER_PATIENT: &str = "team.write.other-patient";
pub const TEAM_CREATE_ADMIN: &str = "team.create.admin";
pub const TEAM_CREATE_CURRENT_LEAD: &str = "team.create.current-lead";
pub const TEAM_CREATE_NOT_ALLOWED: &str = "team.create.not-allowed";
pub const TEAM_ONE_ACTIVE: &str = "team.one-active";
pub const TEAM_READ: &str = "team.read";
pub const TEAM_READ_ADMIN: &str = "team.read.admin";
pub const TEAM_READ_NOT_VISIBLE: &str = "team.read.not-visible";
/// The access policy's own id for a purpose of use it does not accept.
pub const PURPOSE_NOT_PERMITTED: &str = "purpose.not-permitted";

// ---- patient consents and objections (policy::writes)
pub const CONSENT_WRITE: &str = "consent.write";
pub const CONSENT_WRITE_NOT_ALLOWED: &str = "consent.write.not-allowed";
pub const CONSENT_WRITE_OTHER_ORGANISATION: &str = "consent.write.other-organisation";
pub const CONSENT_WRITE_OTHER_PATIENT: &str = "consent.write.other-patient";
pub const CONSENT_WRITE_CUSTODIAN: &str = "consent.write.custodian";
pub const CONSENT_WRITE_NOT_AGREEMENT_PARTY: &str = "consent.write.not-agreement-party";
pub const CONSENT_WRITE_UNKNOWN_AGREEMENT: &str = "consent.write.unknown-agreement";
// ---- transfers (policy::agreement)
pub const TRANSFER_CONSENT_NOT_AGREEMENT_PARTY: &str = "transfer.consent-not-agreement-party";
pub const CONSENT_WITHDRAW_NO_STATEMENT: &str = "consent.withdraw.no-statement";
pub const CONSENT_WITHDRAW_WITH_STATEMENT: &str = "consent.withdraw.with-statement";
pub const CONSENT_READ: &str = "consent.read";
pub const CONSENT_READ_OTHER_ORGANISATION: &str = "consent.read.other-organisation";

// ---- handovers (policy::parties)
pub const SENDER_TOKEN_ORGANISATION: &str = "handover.sender.token-organisation";
pub const SENDER_CONFIGURED_AGB: &str = "handover.sender.configured-agb";
pub const SENDER_NOT_TOKEN_ORGANISATION: &str = "handover.sender.not-token-organisation";
pub const HANDOVER_SENDER: &str = "handover.sender";
pub const HANDOVER_TEAM: &str = "handover.team";
pub const HANDOVER_REFERRAL_REASON_HIDDEN: &str = "handover.referral-reason.hidden";
pub const HANDOVER_NOT_A_PARTY: &str = "handover.not-a-party";
pub const HANDOVER_UNKNOWN: &str = "handover.unknown";
/// A handover whose resource ids are held for another patient (see `fhir::ids`).
pub const IDENTITY_BOUND_TO_ANOTHER_PATIENT: &str = "identity.bound-to-another-patient";

// ---- audit views and reviews (policy::audit_view)
pub const AUDIT_VIEW_PRIVACY_OFFICER: &str = "audit-view/privacy-officer";
pub const AUDIT_VIEW_TREATING_ORGANISATION: &str = "audit-view/treating-organisation";
pub const AUDIT_VIEW_SENDER_OWN_ENTRIES: &str = "audit-view/sender-own-entries";
pub const AUDIT_VIEW_DENY: &str = "audit-view/deny";
pub const AUDIT_VIEW_NOT_IN_TEAM: &str = "audit-view/not-in-team";
pub const AUDIT_REVIEW_OFFICER: &str = "audit-review/privacy-officer";
pub const AUDIT_REVIEW_NOT_OFFICER: &str = "audit-review/not-an-officer";
pub const AUDIT_REVIEW_OTHER_ORGANISATION: &str = "audit-review/other-organisation";

/// Rule ids and plain words, for the report and the command line. Prefixes (`report/`,
/// `consent.`, ...) are matched by [`words`] after the exact ids.
const WORDS: &[(&str, &str)] = &[
    ("transfer.no-agreement", "no agreement between sender and receiver"),
    ("transfer.not-in-force", "the agreement is not in force on that day"),
    ("transfer.no-consent", "the agreement needs the patient's explicit consent; none recorded"),
    ("transfer.patient-objection", "the patient objects to sharing any data"),
    ("transfer.nothing-covered", "none of the categories sent is covered"),
    ("transfer.no-bsn", "the record does not identify the patient by BSN"),
    ("request.invalid", "the request or the record was malformed or broke a rule"),
    ("default.not-a-member", "not a member of the patient's care team"),
    ("treatment.ended", "the treatment has ended"),
    ("purpose.not-allowed", "purpose of use not allowed"),
    (PURPOSE_NOT_PERMITTED, "purpose of use not allowed"),
    ("facade.not-found", "nothing held for the request"),
    ("engine.error", "the policy could not decide (denied)"),
    ("membership.role-mismatch", "the team records another profession than the token states"),
    ("break-glass.profession", "emergency access refused: not a profession the policy names"),
    (TEAM_WRITE_ORGANISATION, "a care team is written by its managing organisation only"),
    (TEAM_MEMBER_ROLE_MISMATCH, "the team states another profession for the writer than the token"),
    (TEAM_WRITE_NOT_LEAD, "only the team's lead practitioner or an administrator changes a team"),
    (TEAM_WRITE_LEAD, "care team changed by its lead practitioner"),
    (TEAM_WRITE_ADMIN, "care team changed by an administrator of its organisation"),
    (TEAM_WRITE_OTHER_PATIENT, "a care team cannot be moved to another patient"),
    (TEAM_CREATE_ADMIN, "care team created by an administrator of its organisation"),
    (TEAM_CREATE_CURRENT_LEAD, "care team created by the patient's current lead practitioner"),
    (TEAM_CREATE_NOT_ALLOWED, "a new team is created by an administrator or the patient's current lead"),
    (TEAM_ONE_ACTIVE, "the patient already has an active team at this organisation"),
    (TEAM_READ, "care team read by a member"),
    (TEAM_READ_ADMIN, "care team read by an administrator of its organisation"),
    (TEAM_READ_NOT_VISIBLE, "not a member of the team"),
    (CONSENT_WRITE, "consent or objection recorded"),
    (CONSENT_WRITE_NOT_ALLOWED, "consents are recorded by the lead practitioner or an administrator"),
    (CONSENT_WRITE_OTHER_ORGANISATION, "the consent was recorded by another organisation"),
    (CONSENT_WRITE_OTHER_PATIENT, "a consent cannot be moved to another patient"),
    (CONSENT_WRITE_CUSTODIAN, "the recording organisation must stay named on the consent"),
    (CONSENT_WRITE_NOT_AGREEMENT_PARTY, "a consent for an agreement is recorded by its sender or receiver only"),
    (CONSENT_WRITE_UNKNOWN_AGREEMENT, "the consent names an agreement that is not known"),
    (
        TRANSFER_CONSENT_NOT_AGREEMENT_PARTY,
        "the only consent for the agreement was recorded by an organisation that is not a party to it",
    ),
    (CONSENT_WITHDRAW_NO_STATEMENT, "an objection is withdrawn only with the patient's recorded statement"),
    (CONSENT_WITHDRAW_WITH_STATEMENT, "objection withdrawn with the patient's recorded statement"),
    (CONSENT_READ, "consent read by its organisation"),
    (CONSENT_READ_OTHER_ORGANISATION, "the consent was recorded by another organisation"),
    (SENDER_TOKEN_ORGANISATION, "sender is the organisation in the token"),
    (SENDER_CONFIGURED_AGB, "sender is a configured AGB code of the organisation in the token"),
    (SENDER_NOT_TOKEN_ORGANISATION, "the sender named is not the organisation in the token"),
    (HANDOVER_SENDER, "handover read by its sender"),
    (HANDOVER_TEAM, "handover read by the patient's team at the receiver"),
    (HANDOVER_REFERRAL_REASON_HIDDEN, "handover read at the receiver outside the team: no referral reason"),
    (HANDOVER_NOT_A_PARTY, "neither sender nor receiver of the handover"),
    (HANDOVER_UNKNOWN, "no such handover"),
    (IDENTITY_BOUND_TO_ANOTHER_PATIENT, "a resource of the record is held for another patient: nothing stored"),
    (AUDIT_VIEW_SENDER_OWN_ENTRIES, "the sender sees its own entries only"),
    (
        AUDIT_VIEW_NOT_IN_TEAM,
        "at the receiving organisation, the patient's trail is for the patient's care team and the privacy officers",
    ),
    (AUDIT_REVIEW_NOT_OFFICER, "reviews are for privacy officers"),
    (AUDIT_REVIEW_OTHER_ORGANISATION, "the entry belongs to another organisation"),
];

/// Plain words for a rule id; empty when the id is not one overdracht ships.
pub fn words(rule: &str) -> &'static str {
    if let Some((_, w)) = WORDS.iter().find(|(id, _)| *id == rule) {
        return w;
    }
    match rule {
        r if r.starts_with("report/") => "report requested by someone not entitled",
        r if r.starts_with("audit-view/") => "audit trail viewed by someone not entitled",
        r if r.starts_with("audit-review/") => "review of a flagged entry",
        r if r.starts_with("consent.") => "the patient's objection",
        r if r.starts_with("membership.") => "outside the membership period",
        r if r.starts_with("break-glass") => "emergency access refused",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_id_has_words_once() {
        let mut seen = std::collections::BTreeSet::new();
        for (id, w) in WORDS {
            assert!(seen.insert(*id), "{id} twice");
            assert!(!w.is_empty());
        }
        assert_eq!(words("report/other-provider"), "report requested by someone not entitled");
        assert_eq!(words("no-such-rule"), "");
        for id in [
            TEAM_ONE_ACTIVE,
            CONSENT_WITHDRAW_NO_STATEMENT,
            SENDER_NOT_TOKEN_ORGANISATION,
            IDENTITY_BOUND_TO_ANOTHER_PATIENT,
        ] {
            assert!(!words(id).is_empty(), "{id}");
        }
    }
}
