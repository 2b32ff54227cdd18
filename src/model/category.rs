//! Data categories: the unit of agreements and of access.
//!
//! Every model item and every emitted resource carries exactly one category. The
//! code system is published in `profiles/CodeSystem-data-category.json`; the codes
//! here and there must agree (a unit test checks it).

use serde::{Deserialize, Serialize};

/// Canonical URL of our data-category code system (`meta.security` on every emitted resource).
pub const DATA_CATEGORY_SYSTEM: &str = "https://w3id.org/overdracht/fhir/CodeSystem/data-category";

macro_rules! categories {
    ($( $variant:ident => $code:literal, $display:literal ;)*) => {
        /// A category of medical data, as agreements and access rules name it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum DataCategory { $( #[serde(rename = $code)] $variant, )* }

        impl DataCategory {
            /// Every category, in a stable order.
            pub const ALL: &'static [DataCategory] = &[ $( DataCategory::$variant, )* ];

            /// The code in [`DATA_CATEGORY_SYSTEM`].
            pub fn code(self) -> &'static str {
                match self { $( DataCategory::$variant => $code, )* }
            }

            /// An English display text.
            pub fn display(self) -> &'static str {
                match self { $( DataCategory::$variant => $display, )* }
            }

            /// The category for a code, if it is one of ours.
            pub fn from_code(code: &str) -> Option<DataCategory> {
                match code { $( $code => Some(DataCategory::$variant), )* _ => None }
            }
        }
    };
}

categories! {
    Identification => "identification", "Patient identification and demographics";
    CareProviders => "care-providers", "Health professionals and healthcare providers";
    Problems => "problems", "Problems and diagnoses";
    Episodes => "episodes", "Episodes of care";
    Journal => "journal", "Contacts and journal (SOAP) entries";
    Medication => "medication", "Medication";
    Allergies => "allergies", "Allergies and intolerances";
    Alerts => "alerts", "Alerts and contra-indications";
    LabResults => "lab-results", "Laboratory and diagnostic results";
    VitalSigns => "vital-signs", "Vital signs and growth measurements";
    Vaccinations => "vaccinations", "Vaccinations";
    Directives => "directives", "Treatment and advance directives";
    LivingSituation => "living-situation", "Living situation";
    Lifestyle => "lifestyle", "Alcohol, tobacco and drug use";
    FunctionalStatus => "functional-status", "Functional or mental status and development";
    ContactPersons => "contact-persons", "Contact persons";
    LegalSituation => "legal-situation", "Legal status and representation";
    Referral => "referral", "Referral";
    CarePlan => "care-plan", "Care plan and treatment goals";
    Documents => "documents", "Documents and letters";
    Appointments => "appointments", "Appointments";
}

impl std::fmt::Display for DataCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for DataCategory {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DataCategory::from_code(s).ok_or_else(|| {
            let all: Vec<&str> = DataCategory::ALL.iter().map(|c| c.code()).collect();
            format!("unknown data category '{s}'; known categories: {}", all.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in DataCategory::ALL {
            assert_eq!(DataCategory::from_code(c.code()), Some(*c));
            assert_eq!(c.code().parse::<DataCategory>(), Ok(*c));
        }
        assert!("banana".parse::<DataCategory>().is_err());
    }

    #[test]
    fn published_code_system_matches_the_enum() {
        let cs: serde_json::Value =
            serde_json::from_str(include_str!("../../profiles/CodeSystem-data-category.json")).expect("valid JSON");
        assert_eq!(cs["url"], DATA_CATEGORY_SYSTEM);
        let published: Vec<&str> =
            cs["concept"].as_array().expect("concepts").iter().filter_map(|c| c["code"].as_str()).collect();
        let ours: Vec<&str> = DataCategory::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(published, ours);
    }
}
