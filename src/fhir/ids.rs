//! Resource identity: the one place that says what a resource id is made of.
//!
//! Every emitted resource gets a UUID v5 in [`ID_NAMESPACE`] of
//!
//! ```text
//! v2 | <sender> | <scope> | <resource type> | <key>
//! ```
//!
//! - **sender**: who hands the record over (`ura|…`, `agb-z|…`), so two senders never write
//!   each other's resources.
//! - **scope**: whose data it is. For everything that belongs to a patient this is the
//!   patient's identity: `bsn|<BSN>`; without a BSN the patient's other identifiers
//!   (`pid|system|value;…`); without those a hash of the patient's demographic content
//!   (`anon|<sha256>`); a record without any Patient is scoped by a hash of its items
//!   (`record|<sha256>`). Two patients can therefore never share an id, whatever the
//!   sources call their resources.
//!   Resources that belong to no patient — Organization, Practitioner, Medication — are
//!   `shared` when they carry their own identifiers (URA/AGB, UZI/BIG/AGB, a G-Standaard or
//!   other product code): the same GP practice or practitioner is one resource at the
//!   receiver, whichever patient's record brought it. Without such identifiers they fall
//!   back to the patient's scope.
//! - **key**: the item's stable source key. The source id where there is one (`Type/id`,
//!   a Bundle entry's `fullUrl`, an HL7v3 `id`), otherwise a canonical hash of the item's
//!   own content (`Type/#<sha256>`; a second identical item in one record gets `#2`) —
//!   never a position in a Bundle or a message. For shared resources the key is their
//!   preferred identifier (`URA` before `AGB`, `UZI` before `BIG` before `AGB`; for a
//!   Medication its product codes plus a hash of the product as described, so that only
//!   identically described products are one resource), so re-sends and other patients'
//!   records agree on it.
//!
//! Re-sending the same record gives byte-identical output. The store and delivery guard
//! the rest: an id already bound to one patient is never written for another
//! ([`is_patient_bound`] says which resource types are bound).
//!
//! The scheme changed once (v1 had no patient scope and fell back to Bundle positions);
//! receivers holding v1 ids get new resources on the next handover (see README).

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::model::{Dossier, Identifier, ItemConcept, Patient};
use crate::terminology::{uri, Terminology};

/// Namespace of our UUID v5 resource ids (fixed forever: changing it changes every id).
pub const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f76_6572_6472_4163_9874_6e6c_2d66_6869);

/// The version of the id scheme, part of every id's name.
const SCHEME: &str = "v2";

/// Resource types that may be shared by several patients' records (when they carry their own
/// identifiers). Every other type is bound to one patient.
pub const SHARED_TYPES: &[&str] = &["Organization", "Practitioner", "Medication"];

/// Whether resources of this type belong to one patient (and so are guarded against being
/// written for another).
pub fn is_patient_bound(resource_type: &str) -> bool {
    !SHARED_TYPES.contains(&resource_type)
}

/// The deterministic id of a resource.
pub fn resource_id(sender: &str, scope: &str, resource_type: &str, key: &str) -> String {
    Uuid::new_v5(&ID_NAMESPACE, format!("{SCHEME}|{sender}|{scope}|{resource_type}|{key}").as_bytes()).to_string()
}

/// The scope of everything that belongs to the dossier's patient.
pub fn patient_scope(dossier: &Dossier) -> String {
    match &dossier.patient {
        Some(p) => scope_of_patient(p),
        // No patient: the record's own content is its identity.
        None => format!("record|{}", sha256_hex(format!("{:?}", dossier.items).as_bytes())),
    }
}

fn scope_of_patient(p: &Patient) -> String {
    if let Some(bsn) = &p.bsn {
        return format!("bsn|{}", bsn.as_str());
    }
    if !p.identifiers.is_empty() {
        let mut ids: Vec<String> = p.identifiers.iter().map(identifier_text).collect();
        ids.sort();
        ids.dedup();
        return format!("pid|{}", ids.join(";"));
    }
    // Neither BSN nor identifiers: who the patient is, as the record describes them.
    let who =
        format!("{:?}|{:?}|{:?}|{:?}|{:?}|{:?}", p.names, p.gender, p.birth_date, p.addresses, p.telecoms, p.deceased);
    format!("anon|{}", sha256_hex(who.as_bytes()))
}

/// The shared identity of an item that belongs to no patient, if it has one: the scope is
/// then `shared` and this is the key.
pub fn shared_key(resource_type: &str, concept: &ItemConcept) -> Option<String> {
    let term = Terminology::embedded();
    let pick = |ids: &[Identifier], preferred: &[&str]| -> Option<String> {
        let mut known: Vec<(usize, String)> = ids
            .iter()
            .filter(|i| !i.value.trim().is_empty())
            .filter_map(|i| {
                let system = term.system_uri(i.system.as_deref()?);
                let rank = preferred.iter().position(|p| *p == system)?;
                Some((rank, format!("{system}|{}", i.value.trim())))
            })
            .collect();
        known.sort();
        known.into_iter().next().map(|(_, k)| k)
    };
    match (resource_type, concept) {
        ("Organization", ItemConcept::HealthcareProvider(o)) => pick(&o.identifiers, &[uri::URA, uri::AGB]),
        ("Practitioner", ItemConcept::HealthProfessional(p)) => {
            pick(&p.identifiers, &[uri::UZI_PERSON, uri::BIG, uri::AGB])
        }
        ("Medication", ItemConcept::Product(m)) => {
            let mut codes: Vec<String> = m
                .code
                .codings
                .iter()
                .filter_map(|c| {
                    let system = term.system_uri(c.system.as_deref()?);
                    let code = c.code.as_deref()?.trim();
                    (!code.is_empty()).then(|| format!("{system}|{code}"))
                })
                .collect();
            codes.sort();
            // The codes and the whole product as described: a product is shared only by records
            // that describe it alike (a compounded preparation coded "other", or one product
            // described differently, is never one resource for two patients: the receiver would
            // keep only the last patient's description).
            (!codes.is_empty())
                .then(|| format!("{}#{}", codes.join(";"), &sha256_hex(format!("{m:?}").as_bytes())[..32]))
        }
        _ => None,
    }
}

fn identifier_text(i: &Identifier) -> String {
    let term = Terminology::embedded();
    let system = i.system.as_deref().map(|s| term.system_uri(s)).unwrap_or_default();
    format!("{system}|{}", i.value.trim())
}

/// Which patient each patient-bound id was written for, over one run (`convert` of many
/// records, `deliver` of many Bundles): a record or Bundle that would write an id already
/// written for another patient is refused whole, and nothing of it is bound.
///
/// Patients are named by their Patient resource's id (itself patient-scoped), so the
/// guard works on any Bundle we produced, with or without a BSN. Ids are kept as 128-bit
/// numbers: a run of millions of resources stays small.
#[derive(Debug, Default)]
pub struct Bindings {
    of: std::collections::HashMap<u128, u128>,
}

impl Bindings {
    /// Binds every patient-bound `(type, id)` to `patient`, or names the first one that is
    /// bound to another patient already (and binds nothing).
    pub fn bind<'a>(
        &mut self,
        patient: &str,
        resources: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), String> {
        let p = number(patient);
        let bound: Vec<(u128, &str, &str)> =
            resources.into_iter().filter(|(t, _)| is_patient_bound(t)).map(|(t, id)| (number(id), t, id)).collect();
        if let Some((_, t, id)) = bound.iter().find(|(n, _, _)| self.of.get(n).is_some_and(|q| *q != p)) {
            return Err(format!("{t}/{id}"));
        }
        self.of.extend(bound.iter().map(|(n, _, _)| (*n, p)));
        Ok(())
    }
}

/// A UUID as its number; any other id as the first 128 bits of its SHA-256.
fn number(id: &str) -> u128 {
    match Uuid::parse_str(id) {
        Ok(u) => u.as_u128(),
        Err(_) => {
            let d = Sha256::digest(id.as_bytes());
            let mut b = [0u8; 16];
            b.copy_from_slice(&d[..16]);
            u128::from_be_bytes(b)
        }
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_every_part() {
        let base = resource_id("ura|1", "bsn|999911120", "Condition", "Condition/1");
        assert_ne!(base, resource_id("ura|2", "bsn|999911120", "Condition", "Condition/1"));
        assert_ne!(base, resource_id("ura|1", "bsn|999911132", "Condition", "Condition/1"));
        assert_ne!(base, resource_id("ura|1", "bsn|999911120", "Observation", "Condition/1"));
        assert_ne!(base, resource_id("ura|1", "bsn|999911120", "Condition", "Condition/2"));
        assert_eq!(base, resource_id("ura|1", "bsn|999911120", "Condition", "Condition/1"));
    }

    #[test]
    fn bindings_refuse_an_id_of_another_patient_and_bind_nothing_then() {
        let mut b = Bindings::default();
        let (pa, pb) = (resource_id("s", "bsn|a", "Patient", "p"), resource_id("s", "bsn|b", "Patient", "p"));
        let c = resource_id("s", "bsn|a", "Condition", "c");
        let fresh = resource_id("s", "bsn|b", "Condition", "d");
        assert!(b.bind(&pa, [("Patient", pa.as_str()), ("Condition", c.as_str())]).is_ok());
        // Re-sending patient A's record is fine.
        assert!(b.bind(&pa, [("Patient", pa.as_str()), ("Condition", c.as_str())]).is_ok());
        // Patient B's record that names A's Condition id is refused, and B's own id stays free.
        let refused = b.bind(&pb, [("Condition", fresh.as_str()), ("Condition", c.as_str())]);
        assert_eq!(refused, Err(format!("Condition/{c}")));
        assert!(b.bind(&pa, [("Condition", fresh.as_str())]).is_ok());
        // Shared resources may appear for any patient.
        let org = resource_id("s", "shared", "Organization", "ura|1");
        assert!(b.bind(&pa, [("Organization", org.as_str())]).is_ok());
        assert!(b.bind(&pb, [("Organization", org.as_str())]).is_ok());
    }

    #[test]
    fn medications_are_shared_only_when_described_alike() {
        use crate::model::{Coding, Concept, Product};
        let product = |text: &str| {
            ItemConcept::Product(Product {
                code: Concept::coded(Coding::new("urn:oid:2.16.840.1.113883.5.1008", "OTH", None)),
                description: Some(text.to_owned()),
                ..Default::default()
            })
        };
        let a = shared_key("Medication", &product("zalf A, magistraal"));
        assert_eq!(a, shared_key("Medication", &product("zalf A, magistraal")));
        assert_ne!(a, shared_key("Medication", &product("capsules B, magistraal")));
        assert!(a.is_some());
    }

    #[test]
    fn only_organisations_practitioners_and_medication_are_shared() {
        for t in ["Organization", "Practitioner", "Medication"] {
            assert!(!is_patient_bound(t), "{t}");
        }
        for t in ["Patient", "Condition", "PractitionerRole", "RelatedPerson", "Observation", "Consent"] {
            assert!(is_patient_bound(t), "{t}");
        }
    }
}
