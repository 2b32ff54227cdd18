//! Which purposes of use may send or convert patient data, and write the facts the facade
//! decides on (teams, consents).
//!
//! A handover is the transfer of medical data from the GP or paediatrician to the lead
//! practitioner (DOMAIN.md, "What insurers require"): it serves the treatment that follows
//! and the coordination of care between the two. So besides treatment (`TREAT`) and
//! emergency treatment (`ETREAT`), HL7 v3 PurposeOfUse `COC` (coordination of care) is a
//! purpose that may send or convert a record, or record a care team or consent. This is the
//! behaviour the API has always had and it is intended, not a defect: the GP's system that
//! sends a referral acts for the coordination of care. *Reading* through the facade is
//! decided by the access policy, whose `purposes_of_use` (policies/access-config.json)
//! lists `TREAT` and `ETREAT` only (`purpose.not-permitted`).

use super::rules::{PURPOSE_NOT_TREATMENT, PURPOSE_TREATMENT};
use super::Decision;

/// Purposes of use that may send or convert patient data, or write teams and consents.
pub const TREATMENT_PURPOSES: &[&str] = &["TREAT", "COC", "ETREAT"];

/// Decides whether `purpose_of_use` (the token's claim) allows sending or converting patient
/// data, or writing a care team or consent.
pub fn decide_treatment_purpose(purpose_of_use: &str) -> Decision {
    if TREATMENT_PURPOSES.contains(&purpose_of_use) {
        Decision::permit(PURPOSE_TREATMENT, format!("purpose of use {purpose_of_use:?}"))
    } else {
        Decision::deny(
            PURPOSE_NOT_TREATMENT,
            format!(
                "purpose of use {purpose_of_use:?} does not allow sending or converting patient data; one of {} is required",
                TREATMENT_PURPOSES.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn treatment_and_coordination_of_care_may_send() {
        for p in ["TREAT", "COC", "ETREAT"] {
            assert_eq!(decide_treatment_purpose(p).rule, PURPOSE_TREATMENT, "{p}");
        }
        for p in ["HPAYMT", "treat", "", "PATRQT"] {
            let d = decide_treatment_purpose(p);
            assert!(!d.permit && d.rule == PURPOSE_NOT_TREATMENT, "{p}");
        }
    }
}
