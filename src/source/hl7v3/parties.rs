//! The patient and the people and organisations in the message.
//!
//! The same GP and practice appear many times (as author of the summary, of every contact,
//! of every diagnosis and prescription). They become one `HealthProfessional`, one
//! `HealthcareProvider` and one `ProfessionalRole` per (person, organisation), found again
//! by any of their identifiers; a later occurrence adds what the earlier ones lacked.

use super::xml::NodeId;
use super::Mapper;
use crate::model::{
    Bsn, Gender, HealthProfessional, HealthcareProvider, Identifier, ItemConcept, Key, Patient, ProfessionalRole, Ref,
};
use crate::source::SourceError;
use crate::terminology::uri;

const BSN_OID: &str = "2.16.840.1.113883.2.4.6.3";

impl Mapper<'_> {
    pub(crate) fn patient(&mut self, node: NodeId) -> Result<Patient, SourceError> {
        let d = self.doc;
        let mut p = Patient { source_path: d.path(node), ..Default::default() };
        for id in d.kids(node, "id").collect::<Vec<_>>() {
            if d.peek_attr(id, "root") == Some(BSN_OID) {
                let Some(value) = d.peek_attr(id, "extension") else {
                    let _ = d.attr(id, "nullFlavor");
                    continue;
                };
                let bsn = Bsn::parse(value).map_err(|e| {
                    SourceError::invalid(
                        format!("{}/@extension", d.path(id)),
                        format!("the patient's BSN is not valid: {e}"),
                    )
                })?;
                let _ = (d.attr(id, "root"), d.attr(id, "extension"));
                p.bsn = Some(bsn);
            } else if let Some(i) = self.ii(id) {
                p.identifiers.push(i);
            }
        }
        let key_id =
            p.bsn.as_ref().map(|b| Identifier::new(uri::BSN, b.as_str())).or_else(|| p.identifiers.first().cloned());
        p.key = self.key_for(key_id.as_ref(), node, "Patient");
        for a in d.kids(node, "addr").collect::<Vec<_>>() {
            p.addresses.push(self.address(a));
        }
        for t in d.kids(node, "telecom").collect::<Vec<_>>() {
            if let Some(t) = self.telecom(t) {
                p.telecoms.push(t);
            }
        }
        if let Some(person) = d.kid(node, "Person") {
            for n in d.kids(person, "name").collect::<Vec<_>>() {
                p.names.push(self.name(n));
            }
            if let Some(g) = d.kid(person, "administrativeGenderCode") {
                if let Some(c) = self.coding(g) {
                    p.gender = match c.code.as_deref() {
                        Some("M") => Some(Gender::Male),
                        Some("F") => Some(Gender::Female),
                        Some("UN") => Some(Gender::Other),
                        Some("UNK") => Some(Gender::Unknown),
                        _ => None,
                    };
                    p.gender_code = Some(c);
                }
            }
            if let Some(b) = d.kid(person, "birthTime") {
                p.birth_date = self.ts(b);
            }
            if let Some(x) = d.kid(person, "deceasedInd") {
                p.deceased = d.attr(x, "value").map(|v| v == "true");
            }
            if let Some(x) = d.kid(person, "deceasedTime") {
                p.deceased_at = self.ts(x);
                if p.deceased_at.is_some() {
                    p.deceased = Some(true);
                }
            }
            if let Some(x) = d.kid(person, "multipleBirthInd") {
                p.multiple_birth = d.attr(x, "value").map(|v| v == "true");
            }
            if let Some(x) = d.kid(person, "maritalStatusCode") {
                let c = self.concept(x);
                p.marital_status = (!c.is_empty()).then_some(c);
            }
            if let Some(a) = d.walk(person, &["birthplace", "addr"]) {
                p.birth_place = Some(self.address(a));
            }
        }
        if let Some(s) = d.kid(node, "statusCode") {
            p.active = d.attr(s, "code").map(|c| c == "active");
        }
        Ok(p)
    }

    /// A role class with a person and an organisation (`AssignedEntity`, `AssignedPerson`):
    /// returns the practitioner key, the role key (if there is a role code or an
    /// organisation) and the organisation key.
    pub(crate) fn assigned(&mut self, node: NodeId) -> (Key, Option<Key>, Option<Key>) {
        let d = self.doc;
        let ids = self.ids(node);
        let mut names = Vec::new();
        for person in d.kids(node, "assignedPerson").collect::<Vec<_>>() {
            for n in d.kids(person, "name").collect::<Vec<_>>() {
                names.push(self.name(n));
            }
        }
        if let Some(a) = d.kid(node, "assignee") {
            if let Some(person) = d.kid(a, "assigneePerson") {
                for n in d.kids(person, "name").collect::<Vec<_>>() {
                    names.push(self.name(n));
                }
            }
        }
        let codes: Vec<_> = d.kids(node, "code").map(|c| self.concept(c)).filter(|c| !c.is_empty()).collect();
        let telecoms: Vec<_> = d.kids(node, "telecom").filter_map(|t| self.telecom(t)).collect();
        let org = d
            .kids(node, "Organization")
            .chain(d.kids(node, "representedOrganization"))
            .next()
            .map(|o| self.organization(o));

        // The person: found again by any identifier, else new.
        let known = ids.iter().find_map(|i| self.professionals.get(i).cloned());
        let practitioner = match known {
            Some(key) => {
                if let Some(ItemConcept::HealthProfessional(hp)) = self.item_mut(&key) {
                    for i in &ids {
                        if !hp.identifiers.contains(i) {
                            hp.identifiers.push(i.clone());
                        }
                    }
                    for n in names {
                        // a bare text name adds nothing to a structured one
                        let redundant = n.text.is_some() && hp.names.iter().any(|h| h.text.is_none());
                        if !redundant && !hp.names.contains(&n) {
                            hp.names.push(n);
                        }
                    }
                }
                key
            }
            None => {
                let preferred = preferred(&ids, &[uri::UZI_PERSON, uri::BIG]);
                let key = self.key_for(preferred, node, "Practitioner");
                let hp = HealthProfessional { identifiers: ids.clone(), names, ..Default::default() };
                self.push(key.clone(), node, ItemConcept::HealthProfessional(hp));
                key
            }
        };
        for i in ids {
            self.professionals.entry(i).or_insert_with(|| practitioner.clone());
        }

        if codes.is_empty() && org.is_none() && telecoms.is_empty() {
            let existing = self.roles.iter().find(|((p, _), _)| *p == practitioner).map(|(_, r)| r.clone());
            return (practitioner, existing, None);
        }
        let role_key = match self.roles.get(&(practitioner.clone(), org.clone())).cloned() {
            Some(k) => k,
            None => {
                let k = format!("{practitioner}/role/{}", org.as_deref().unwrap_or("-"));
                let k = if self.keys_insert(k.clone()) { k } else { self.key_for(None, node, "PractitionerRole") };
                let role = ProfessionalRole {
                    practitioner: Some(Ref::to(practitioner.clone())),
                    organization: org.clone().map(Ref::to),
                    ..Default::default()
                };
                self.push(k.clone(), node, ItemConcept::ProfessionalRole(role));
                self.roles.insert((practitioner.clone(), org.clone()), k.clone());
                k
            }
        };
        if let Some(ItemConcept::ProfessionalRole(r)) = self.item_mut(&role_key) {
            for c in codes {
                let is_uzi = c.codings.iter().any(|cd| cd.system.as_deref() == Some(uri::UZI_ROLE));
                let slot = if is_uzi { &mut r.roles } else { &mut r.specialties };
                if !slot.contains(&c) {
                    slot.push(c);
                }
            }
            for t in telecoms {
                if !r.telecoms.contains(&t) {
                    r.telecoms.push(t);
                }
            }
        }
        (practitioner, Some(role_key), org)
    }

    /// An `Organization`: found again by any identifier (adding what it lacked), else new.
    pub(crate) fn organization(&mut self, node: NodeId) -> Key {
        let d = self.doc;
        let ids = self.ids(node);
        let known = ids.iter().find_map(|i| self.organizations.get(i).cloned());
        let key = match known {
            Some(k) => k,
            None => {
                let preferred = preferred(&ids, &[uri::URA, uri::AGB]);
                let k = self.key_for(preferred, node, "Organization");
                self.push(k.clone(), node, ItemConcept::HealthcareProvider(HealthcareProvider::default()));
                k
            }
        };
        for i in &ids {
            self.organizations.entry(i.clone()).or_insert_with(|| key.clone());
        }
        let name_node = d.peek_kids(node, "name").next();
        let telecom_nodes: Vec<_> = d.peek_kids(node, "telecom").collect();
        let addr_nodes: Vec<_> = d.peek_kids(node, "addr").collect();
        let telecoms: Vec<_> = telecom_nodes.iter().filter_map(|t| self.telecom(*t)).collect();
        let addrs: Vec<_> = addr_nodes.iter().map(|a| self.address(*a)).collect();
        let Some(ItemConcept::HealthcareProvider(org)) = self.item_mut(&key) else {
            return key;
        };
        for i in ids {
            if !org.identifiers.contains(&i) {
                org.identifiers.push(i);
            }
        }
        if let Some(n) = name_node {
            let text = d.peek_text(n);
            match (&org.name, text) {
                (None, Some(t)) => {
                    org.name = Some(t.to_owned());
                    d.use_node(n);
                    let _ = d.text(n);
                }
                // The same name again is nothing new; a different one is left to the report.
                (Some(have), Some(t)) if have == t => {
                    d.use_node(n);
                    let _ = d.text(n);
                }
                _ => {}
            }
        }
        for t in telecoms {
            if !org.telecoms.contains(&t) {
                org.telecoms.push(t);
            }
        }
        for (a, n) in addrs.into_iter().zip(addr_nodes) {
            d.use_node(n);
            if !org.addresses.contains(&a) {
                org.addresses.push(a);
            }
        }
        for n in telecom_nodes {
            d.use_node(n);
        }
        key
    }

    /// The identifier by which the sender is known: URA, else AGB, else the first.
    pub(crate) fn org_identifier(&self, key: &str) -> Option<Identifier> {
        let org = self.items.iter().find(|i| i.key == key)?;
        let ItemConcept::HealthcareProvider(o) = &org.concept else {
            return None;
        };
        preferred(&o.identifiers, &[uri::URA, uri::AGB]).cloned()
    }
}

/// The first identifier in the first of `systems` that has one, else the first identifier.
fn preferred<'a>(ids: &'a [Identifier], systems: &[&str]) -> Option<&'a Identifier> {
    systems.iter().find_map(|s| ids.iter().find(|i| i.system.as_deref() == Some(*s))).or_else(|| ids.first())
}
