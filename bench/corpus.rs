//! A generated corpus of realistic GP dossiers for benchmarks: FHIR STU3 collection
//! Bundles as a GP system sends them, 20–200 resources each (patient, practice, GP,
//! problems, episodes, contacts with S/O/E/P journal lines, results, vital signs,
//! medication, allergies, alerts, vaccinations). Deterministic: dossier `i` is always the same.

use serde_json::{json, Value};

const P: &str = "http://nictiz.nl/fhir/StructureDefinition/";

/// A small deterministic generator (SplitMix64), so the corpus needs no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// A BSN passing the eleven test, derived from `i`.
pub fn bsn(i: u64) -> String {
    let mut n = 100_000_000 + (i * 7919) % 800_000_000;
    loop {
        let s = format!("{n:09}");
        let d: Vec<i64> = s.bytes().map(|b| i64::from(b - b'0')).collect();
        let sum: i64 = (0..8).map(|k| d[k] * (9 - k as i64)).sum::<i64>() - d[8];
        if sum % 11 == 0 && sum != 0 {
            return s;
        }
        n += 1;
    }
}

const ICPC: &[(&str, &str)] = &[
    ("K77", "Decompensatio cordis"),
    ("T90.02", "Diabetes mellitus type 2"),
    ("K86", "Hypertensie"),
    ("R95", "COPD"),
    ("P70", "Dementie"),
    ("L89", "Artrose heup"),
    ("K78", "Atriumfibrilleren"),
    ("U99", "Nierinsufficiëntie"),
];
const LAB: &[(&str, &str, &str, f64)] = &[
    ("1782", "HbA1c", "mmol/mol", 53.0),
    ("3583", "eGFR", "mL/min", 60.0),
    ("2614", "Kalium", "mmol/L", 4.2),
    ("542", "LDL-cholesterol", "mmol/L", 2.5),
    ("1915", "Lichaamstemperatuur", "Cel", 37.0),
];
const MEDS: &[(&str, &str)] = &[
    ("20249", "FUROSEMIDE 40MG TABLET"),
    ("55891", "METFORMINE HCL TABLET 500MG"),
    ("88536", "APIXABAN 5MG TABLET"),
    ("24643", "METOPROLOL SUCCINAAT 50MG"),
];

/// Dossier number `i` with `n` resources (at least 20).
pub fn dossier(i: u64, n: usize) -> Value {
    let mut rng = Rng::new(i);
    let pat = format!("pat-{i}");
    let subj = json!({"reference": format!("Patient/{pat}"), "display": "patiënt"});
    let gp = json!({"reference": "Practitioner/gp-1", "display": "huisarts",
        "extension": [{"url": format!("{P}practitionerrole-reference"), "valueReference": {"reference": "PractitionerRole/gp-role-1"}}]});
    let mut res: Vec<Value> = vec![
        json!({"resourceType": "Patient", "id": pat, "meta": {"profile": ["http://fhir.nl/fhir/StructureDefinition/nl-core-patient"]},
            "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": bsn(i)}],
            "name": [{"use": "official", "family": "Jansen", "_family": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/humanname-own-name", "valueString": "Jansen"}]}, "given": ["Maria", "M."]}],
            "gender": "female", "birthDate": format!("19{}-0{}-1{}", 30 + rng.below(30), 1 + rng.below(9), rng.below(10)),
            "address": [{"use": "home", "line": ["Dorpsstraat 1"], "city": "Utrecht", "postalCode": "3500AA"}],
            "managingOrganization": {"reference": "Organization/org-1", "identifier": {"system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": "01234567"}}}),
        json!({"resourceType": "Organization", "id": "org-1", "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": "01234567"}], "name": "Huisartsenpraktijk"}),
        json!({"resourceType": "Practitioner", "id": "gp-1", "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers", "value": "900012345"}], "name": [{"family": "de Boer"}]}),
        json!({"resourceType": "PractitionerRole", "id": "gp-role-1", "practitioner": {"reference": "Practitioner/gp-1"}, "organization": {"reference": "Organization/org-1"},
            "code": [{"coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.15.111", "code": "01.015"}]}]}),
    ];
    let mut k = 0;
    while res.len() < n {
        k += 1;
        let date = format!("20{}-{:02}-{:02}", 15 + rng.below(11), 1 + rng.below(12), 1 + rng.below(28));
        match rng.below(8) {
            0 => {
                let (c, d) = *rng.pick(ICPC);
                res.push(json!({"resourceType": "Condition", "id": format!("c{k}"), "meta": {"profile": [format!("{P}zib-Problem")]},
                    "clinicalStatus": "active", "verificationStatus": "confirmed",
                    "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "282291009"}]}],
                    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icpc-1-nl", "code": c, "display": d}]},
                    "subject": subj, "onsetDateTime": date, "asserter": gp}));
            }
            1 | 2 => {
                let enc = format!("e{k}");
                res.push(json!({"resourceType": "Encounter", "id": enc, "meta": {"profile": [format!("{P}gp-Encounter")]}, "status": "finished",
                    "class": {"system": "http://hl7.org/fhir/v3/ActCode", "code": "AMB"},
                    "type": [{"coding": [{"system": "https://referentiemodel.nhg.org/tabellen/nhg-tabel-14-contactwijze", "code": "01", "display": "Consult"}]}],
                    "subject": subj, "participant": [{"individual": gp}], "period": {"start": format!("{date}T09:{:02}:00", rng.below(60))}}));
                for letter in ["S", "O", "E", "P"] {
                    res.push(json!({"resourceType": "Observation", "id": format!("l{k}{letter}"), "meta": {"profile": [format!("{P}gp-JournalEntry")]}, "status": "final",
                        "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.4.32.2", "code": letter}]},
                        "subject": subj, "context": {"reference": format!("Encounter/{enc}")}, "effectiveDateTime": date, "performer": [gp],
                        "valueString": "Patiënt meldt toenemende klachten sinds enkele weken; beleid besproken en afspraken gemaakt over controle."}));
                }
            }
            3 | 4 => {
                let (code, name, unit, base) = *rng.pick(LAB);
                let v = base * (0.7 + (rng.below(60) as f64) / 100.0);
                res.push(json!({"resourceType": "Observation", "id": format!("o{k}"), "meta": {"profile": [format!("{P}gp-LaboratoryResult")]}, "status": "final",
                    "category": [{"coding": [{"system": "http://hl7.org/fhir/observation-category", "code": "laboratory"}]}],
                    "code": {"coding": [{"system": "https://referentiemodel.nhg.org/tabellen/nhg-tabel-45-diagnostische-bepalingen", "code": code, "display": name}]},
                    "subject": subj, "effectiveDateTime": date, "performer": [gp],
                    "valueQuantity": {"value": (v * 10.0).round() / 10.0, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
                    "referenceRange": [{"high": {"value": base, "unit": unit}}]}));
            }
            5 => {
                let (code, name) = *rng.pick(MEDS);
                res.push(json!({"resourceType": "Medication", "id": format!("m{k}"), "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.4.1", "code": code, "display": name}]}}));
                res.push(json!({"resourceType": "MedicationRequest", "id": format!("ma{k}"), "meta": {"profile": [format!("{P}zib-MedicationAgreement")]}, "status": "active", "intent": "order",
                    "medicationReference": {"reference": format!("Medication/m{k}")}, "subject": subj, "authoredOn": date, "requester": {"agent": gp},
                    "dosageInstruction": [{"sequence": 1, "text": "1 maal per dag 1 tablet"}],
                    "extension": [{"url": format!("{P}zib-Medication-PeriodOfUse"), "valuePeriod": {"start": date}}]}));
            }
            6 => res.push(json!({"resourceType": "Observation", "id": format!("w{k}"), "meta": {"profile": [format!("{P}gp-DiagnosticResult")]}, "status": "final",
                "code": {"coding": [{"system": "https://referentiemodel.nhg.org/tabellen/nhg-tabel-45-diagnostische-bepalingen", "code": "357", "display": "gewicht"}]},
                "subject": subj, "effectiveDateTime": date, "valueQuantity": {"value": 60 + rng.below(40), "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}})),
            _ => res.push(json!({"resourceType": "Immunization", "id": format!("v{k}"), "status": "completed", "notGiven": false,
                "vaccineCode": {"coding": [{"system": "http://www.whocc.no/atc", "code": "J07BB02", "display": "influenzavaccin"}]}, "patient": subj, "date": date})),
        }
    }
    res.truncate(n);
    json!({"resourceType": "Bundle", "type": "collection", "entry": res.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
}

/// The size of dossier `i`: spread over 20–200 resources.
pub fn size_of(i: u64) -> usize {
    20 + (Rng::new(i ^ 0xABCD).below(181) as usize)
}
