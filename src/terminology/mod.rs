//! Code systems, OIDs ↔ URIs, and ConceptMap translation.
//!
//! The data lives in `mappings/` as JSON (a code-system table and FHIR ConceptMaps), so
//! that a provider can correct or extend a mapping without recompiling. The files are
//! embedded as defaults; [`Terminology::load_dir`] reads a directory of the same files
//! instead (files there replace embedded files of the same name, new files are added).

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::model::Coding;

/// Well-known system URIs (the canonical R4 form). The table in `mappings/code-systems.json`
/// has their OIDs and aliases.
pub mod uri {
    pub const BSN: &str = "http://fhir.nl/fhir/NamingSystem/bsn";
    pub const AGB: &str = "http://fhir.nl/fhir/NamingSystem/agb-z";
    pub const UZI_PERSON: &str = "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers";
    pub const URA: &str = "http://fhir.nl/fhir/NamingSystem/ura";
    pub const BIG: &str = "http://fhir.nl/fhir/NamingSystem/big";
    pub const UZI_ROLE: &str = "http://fhir.nl/fhir/NamingSystem/uzi-rolcode";
    pub const ICPC: &str = "http://hl7.org/fhir/sid/icpc-1-nl";
    pub const NHG_45: &str = "https://referentiemodel.nhg.org/tabellen/nhg-tabel-45-diagnostische-bepalingen";
    pub const JOURNAL_LINE_TYPE: &str = "urn:oid:2.16.840.1.113883.2.4.4.32.2";
    pub const SNOMED: &str = "http://snomed.info/sct";
    pub const LOINC: &str = "http://loinc.org";
    pub const UCUM: &str = "http://unitsofmeasure.org";
    pub const GPK: &str = "urn:oid:2.16.840.1.113883.2.4.4.1";
    pub const PRK: &str = "urn:oid:2.16.840.1.113883.2.4.4.10";
    pub const HPK: &str = "urn:oid:2.16.840.1.113883.2.4.4.7";
    pub const ZI: &str = "urn:oid:2.16.840.1.113883.2.4.4.8";
    pub const COD016: &str = "urn:oid:2.16.840.1.113883.2.4.6.7";
    pub const ZIB_OBSERVATION: &str = "https://w3id.org/overdracht/fhir/CodeSystem/zib-observation";
}

/// Core FHIR extensions that carry the Dutch name and address parts: the same canonicals in
/// STU3 input and R4 output, so sources and the FHIR stage share them.
pub mod ext {
    pub const EN_QUALIFIER: &str = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier";
    pub const OWN_NAME: &str = "http://hl7.org/fhir/StructureDefinition/humanname-own-name";
    pub const OWN_PREFIX: &str = "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix";
    pub const PARTNER_NAME: &str = "http://hl7.org/fhir/StructureDefinition/humanname-partner-name";
    pub const PARTNER_PREFIX: &str = "http://hl7.org/fhir/StructureDefinition/humanname-partner-prefix";
    pub const ASSEMBLY_ORDER: &str = "http://hl7.org/fhir/StructureDefinition/humanname-assembly-order";
    pub const ADXP_STREET: &str = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-streetName";
    pub const ADXP_HOUSE_NUMBER: &str = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-houseNumber";
    pub const ADXP_BUILDING_SUFFIX: &str = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-buildingNumberSuffix";
    pub const ADXP_ADDITIONAL: &str = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-additionalLocator";
    pub const ADXP_UNIT_ID: &str = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-unitID";
}

/// ConceptMap canonicals used by the code.
pub mod maps {
    pub const SOAP_LINE_CODE: &str = "https://w3id.org/overdracht/fhir/ConceptMap/journal-line-type-to-soap-line-code";
    pub const DIAGNOSTIC_RESULT_TO_ZIB: &str = "https://w3id.org/overdracht/fhir/ConceptMap/diagnostic-result-to-zib";
    pub const CONDITION_VERIFICATION_TO_ZIB: &str =
        "https://w3id.org/overdracht/fhir/ConceptMap/condition-verification-to-zib";
    pub const ALERT_TYPE_TO_ZIB: &str = "https://w3id.org/overdracht/fhir/ConceptMap/alert-type-to-zib";
}

const EMBEDDED: &[(&str, &str)] = &[
    ("code-systems.json", include_str!("../../mappings/code-systems.json")),
    (
        "ConceptMap-journal-line-type-to-soap-line-code.json",
        include_str!("../../mappings/ConceptMap-journal-line-type-to-soap-line-code.json"),
    ),
    (
        "ConceptMap-diagnostic-result-to-zib.json",
        include_str!("../../mappings/ConceptMap-diagnostic-result-to-zib.json"),
    ),
    (
        "ConceptMap-condition-verification-to-zib.json",
        include_str!("../../mappings/ConceptMap-condition-verification-to-zib.json"),
    ),
    ("ConceptMap-alert-type-to-zib.json", include_str!("../../mappings/ConceptMap-alert-type-to-zib.json")),
];

#[derive(Debug, thiserror::Error)]
pub enum TerminologyError {
    #[error("cannot read mapping file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("mapping file {file} is not valid: {message}")]
    Invalid { file: String, message: String },
}

#[derive(Deserialize)]
struct SystemTable {
    systems: Vec<SystemRow>,
}

#[derive(Deserialize)]
struct SystemRow {
    uri: String,
    oid: Option<String>,
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Deserialize)]
struct ConceptMapJson {
    #[serde(rename = "resourceType")]
    resource_type: String,
    url: String,
    #[serde(default)]
    group: Vec<GroupJson>,
}

#[derive(Deserialize)]
struct GroupJson {
    source: String,
    target: String,
    #[serde(default)]
    element: Vec<ElementJson>,
}

#[derive(Deserialize)]
struct ElementJson {
    code: String,
    #[serde(default)]
    target: Vec<TargetJson>,
}

#[derive(Deserialize)]
struct TargetJson {
    code: Option<String>,
    display: Option<String>,
    equivalence: Option<String>,
}

/// Code systems and concept maps, loaded once.
#[derive(Debug, Default)]
pub struct Terminology {
    /// Any known name of a system (URI, alias, `urn:oid:` form, bare OID) → canonical URI.
    canonical: HashMap<String, String>,
    oids: HashMap<String, String>,
    names: HashMap<String, String>,
    /// (map url, source system, source code) → target coding
    translations: HashMap<(String, String, String), Coding>,
}

impl Terminology {
    /// The embedded defaults from `mappings/`.
    pub fn embedded() -> &'static Terminology {
        static T: OnceLock<Terminology> = OnceLock::new();
        T.get_or_init(|| {
            let files: Vec<(String, String)> =
                EMBEDDED.iter().map(|(n, c)| ((*n).to_owned(), (*c).to_owned())).collect();
            // The embedded files are tested (`embedded_mappings_load`); failing here is a build defect.
            Terminology::from_files(&files).expect("embedded mappings are valid")
        })
    }

    /// The embedded defaults, with the `.json` files of `dir` replacing or adding to them.
    pub fn load_dir(dir: &Path) -> Result<Terminology, TerminologyError> {
        let mut files: Vec<(String, String)> =
            EMBEDDED.iter().map(|(n, c)| ((*n).to_owned(), (*c).to_owned())).collect();
        let io = |e, p: &Path| TerminologyError::Io { path: p.display().to_string(), source: e };
        let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(|e| io(e, dir))?.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let content = std::fs::read_to_string(&path).map_err(|e| io(e, &path))?;
            match files.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = content,
                None => files.push((name, content)),
            }
        }
        Terminology::from_files(&files)
    }

    fn from_files(files: &[(String, String)]) -> Result<Terminology, TerminologyError> {
        let mut t = Terminology::default();
        for (name, content) in files {
            let invalid = |m: String| TerminologyError::Invalid { file: name.clone(), message: m };
            if name == "code-systems.json" {
                let table: SystemTable = serde_json::from_str(content).map_err(|e| invalid(e.to_string()))?;
                for row in table.systems {
                    t.canonical.insert(row.uri.clone(), row.uri.clone());
                    for a in &row.aliases {
                        t.canonical.insert(a.clone(), row.uri.clone());
                    }
                    if let Some(oid) = &row.oid {
                        t.canonical.insert(oid.clone(), row.uri.clone());
                        t.canonical.insert(format!("urn:oid:{oid}"), row.uri.clone());
                        t.oids.insert(row.uri.clone(), oid.clone());
                    }
                    t.names.insert(row.uri.clone(), row.name);
                }
            } else {
                let cm: ConceptMapJson = serde_json::from_str(content).map_err(|e| invalid(e.to_string()))?;
                if cm.resource_type != "ConceptMap" {
                    return Err(invalid(format!("expected a ConceptMap, found {}", cm.resource_type)));
                }
                for g in cm.group {
                    for el in g.element {
                        // Only targets that are usable as a translation count (not 'unmatched'/'disjoint').
                        let target = el.target.into_iter().find(|tg| {
                            tg.code.is_some()
                                && !matches!(tg.equivalence.as_deref(), Some("unmatched") | Some("disjoint"))
                        });
                        if let Some(tg) = target {
                            let coding = Coding { system: Some(g.target.clone()), code: tg.code, display: tg.display };
                            t.translations.insert((cm.url.clone(), g.source.clone(), el.code), coding);
                        }
                    }
                }
            }
        }
        Ok(t)
    }

    /// The canonical R4 URI for a system written as a URI, an alias, `urn:oid:…` or a bare OID.
    /// Unknown OIDs become `urn:oid:…`; other unknown systems are returned unchanged.
    pub fn system_uri(&self, system: &str) -> String {
        let s = system.trim();
        if let Some(c) = self.canonical.get(s) {
            return c.clone();
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && s.contains('.') {
            return format!("urn:oid:{s}");
        }
        s.to_owned()
    }

    /// The OID of a system, if it has one.
    pub fn oid(&self, uri: &str) -> Option<&str> {
        self.oids.get(&self.system_uri(uri)).map(String::as_str)
    }

    /// A readable name of a system, for messages.
    pub fn name(&self, uri: &str) -> Option<&str> {
        self.names.get(&self.system_uri(uri)).map(String::as_str)
    }

    /// Translates a code through the ConceptMap `map_url`.
    pub fn translate(&self, map_url: &str, system: &str, code: &str) -> Option<&Coding> {
        self.translations.get(&(map_url.to_owned(), self.system_uri(system), code.to_owned()))
    }

    /// Translates the first coding of `codings` that the map knows.
    pub fn translate_any<'a>(&self, map_url: &str, codings: impl IntoIterator<Item = &'a Coding>) -> Option<&Coding> {
        codings.into_iter().find_map(|c| match (&c.system, &c.code) {
            (Some(s), Some(code)) => self.translate(map_url, s, code),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_mappings_load() {
        let t = Terminology::embedded();
        assert_eq!(t.system_uri("2.16.840.1.113883.2.4.6.3"), uri::BSN);
        assert_eq!(t.system_uri("urn:oid:2.16.840.1.113883.2.4.6.1"), uri::AGB);
        assert_eq!(
            t.system_uri("http://hl7.org/fhir/v3/AddressUse"),
            "http://terminology.hl7.org/CodeSystem/v3-AddressUse"
        );
        assert_eq!(t.system_uri("2.16.840.1.113883.2.4.4.31.1"), uri::ICPC);
        assert_eq!(t.system_uri("1.2.3.4"), "urn:oid:1.2.3.4");
        assert_eq!(t.system_uri("http://example.org/x"), "http://example.org/x");
        assert_eq!(t.oid(uri::URA), Some("2.16.528.1.1007.3.3"));
    }

    #[test]
    fn soap_line_codes_come_from_the_concept_map() {
        let t = Terminology::embedded();
        let s = t.translate(maps::SOAP_LINE_CODE, uri::JOURNAL_LINE_TYPE, "S").expect("S maps");
        assert_eq!(s.code.as_deref(), Some("255362007"));
        assert_eq!(s.system.as_deref(), Some(uri::SNOMED));
        let p = t.translate(maps::SOAP_LINE_CODE, "2.16.840.1.113883.2.4.4.32.2", "P").expect("P maps");
        assert_eq!(p.code.as_deref(), Some("129271007"));
        assert!(t.translate(maps::SOAP_LINE_CODE, uri::JOURNAL_LINE_TYPE, "X").is_none());
    }

    #[test]
    fn a_mapping_directory_overrides_the_embedded_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cm = serde_json::json!({
            "resourceType": "ConceptMap",
            "url": maps::SOAP_LINE_CODE,
            "group": [{"source": uri::JOURNAL_LINE_TYPE, "target": uri::SNOMED,
                       "element": [{"code": "S", "target": [{"code": "1234", "equivalence": "equivalent"}]}]}]
        });
        std::fs::write(dir.path().join("ConceptMap-journal-line-type-to-soap-line-code.json"), cm.to_string())
            .expect("write");
        let t = Terminology::load_dir(dir.path()).expect("loads");
        assert_eq!(
            t.translate(maps::SOAP_LINE_CODE, uri::JOURNAL_LINE_TYPE, "S").and_then(|c| c.code.as_deref()),
            Some("1234")
        );
        assert!(t.translate(maps::SOAP_LINE_CODE, uri::JOURNAL_LINE_TYPE, "O").is_none());
        // a broken file is a clear error
        std::fs::write(dir.path().join("broken.json"), "{").expect("write");
        assert!(matches!(Terminology::load_dir(dir.path()), Err(TerminologyError::Invalid { .. })));
    }
}
