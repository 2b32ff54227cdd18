//! UZI role codes (`http://fhir.nl/fhir/NamingSystem/uzi-rolcode`) that the GZSP rules name.
//!
//! DOMAIN.md lists which professions may be lead practitioner and who needs supervision;
//! the rules in [`crate::policy::care_team`] ask these functions, so that a correction to
//! the list happens here and nowhere else.

/// Specialist in geriatric medicine (specialist ouderengeneeskunde, SO).
pub const SO: &str = "01.047";
/// Physician for people with intellectual disabilities (arts verstandelijk gehandicapten, AVG).
pub const AVG: &str = "01.056";
/// Psychiatrist: lead practitioner only for SGLVG group care.
pub const PSYCHIATRIST: &str = "01.035";
/// Health-care psychologist (GZ-psycholoog).
pub const GZ_PSYCHOLOGIST: &str = "25.000";
/// Clinical psychologist (klinisch psycholoog).
pub const CLINICAL_PSYCHOLOGIST: &str = "25.061";
/// Clinical neuropsychologist (klinisch neuropsycholoog).
pub const CLINICAL_NEUROPSYCHOLOGIST: &str = "25.063";
/// Remedial educationalist (orthopedagoog-generalist).
pub const REMEDIAL_EDUCATIONALIST: &str = "31.000";
/// Physician assistant (PA).
pub const PHYSICIAN_ASSISTANT: &str = "81.000";
/// Physiotherapist (fysiotherapeut), a typical co-practitioner.
pub const PHYSIOTHERAPIST: &str = "04.000";

/// Professions that may always be lead practitioner (regiebehandelaar).
pub const ELIGIBLE_LEADS: &[&str] =
    &[SO, AVG, GZ_PSYCHOLOGIST, CLINICAL_PSYCHOLOGIST, CLINICAL_NEUROPSYCHOLOGIST, REMEDIAL_EDUCATIONALIST];

/// Whether the role code is an SO or an AVG: the physicians who may treat without a
/// multidisciplinary plan and who supervise a VS or PA.
pub fn is_so_or_avg(code: &str) -> bool {
    code == SO || code == AVG
}

/// Nurse practitioner (verpleegkundig specialist): role codes 30.065 up to and including 30.076.
pub fn is_nurse_practitioner(code: &str) -> bool {
    code.strip_prefix("30.")
        .and_then(|n| (n.len() == 3).then_some(n))
        .and_then(|n| n.parse::<u16>().ok())
        .is_some_and(|n| (65..=76).contains(&n))
}

/// A VS or PA: may deliver SO/AVG care only under an SO's or AVG's supervision.
pub fn needs_supervision(code: &str) -> bool {
    is_nurse_practitioner(code) || code == PHYSICIAN_ASSISTANT
}

/// Whether a UZI role code looks like one (`NN.NNN`); the register itself is not consulted.
pub fn is_well_formed(code: &str) -> bool {
    crate::model::UziRoleCode::parse(code).is_ok_and(|c| c.as_str() == code)
}

/// A short English name for messages.
pub fn name(code: &str) -> &'static str {
    match code {
        SO => "specialist in geriatric medicine (SO)",
        AVG => "physician for people with intellectual disabilities (AVG)",
        PSYCHIATRIST => "psychiatrist",
        GZ_PSYCHOLOGIST => "health-care psychologist (GZ-psycholoog)",
        CLINICAL_PSYCHOLOGIST => "clinical psychologist",
        CLINICAL_NEUROPSYCHOLOGIST => "clinical neuropsychologist",
        REMEDIAL_EDUCATIONALIST => "remedial educationalist (orthopedagoog-generalist)",
        PHYSICIAN_ASSISTANT => "physician assistant (PA)",
        PHYSIOTHERAPIST => "physiotherapist",
        "01.015" => "general practitioner",
        "01.019" => "paediatrician",
        "16.000" => "psychotherapist",
        "30.000" => "nurse (verpleegkundige)",
        c if is_nurse_practitioner(c) => "nurse practitioner (VS)",
        _ => "profession",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nurse_practitioner_range_is_inclusive() {
        for ok in ["30.065", "30.070", "30.076"] {
            assert!(is_nurse_practitioner(ok), "{ok}");
            assert!(needs_supervision(ok));
        }
        for no in ["30.064", "30.077", "30.0650", "3.065", "30.x65", "01.047"] {
            assert!(!is_nurse_practitioner(no), "{no}");
        }
        assert!(needs_supervision(PHYSICIAN_ASSISTANT));
        assert!(!needs_supervision(SO));
    }

    #[test]
    fn role_codes_are_checked_for_shape() {
        assert!(is_well_formed("01.047"));
        assert!(!is_well_formed("01047") && !is_well_formed("01.04a") && !is_well_formed(""));
    }

    #[test]
    fn psychiatrist_is_not_generally_eligible() {
        assert!(!ELIGIBLE_LEADS.contains(&PSYCHIATRIST));
        assert!(ELIGIBLE_LEADS.iter().all(|c| is_well_formed(c)));
    }
}
