//! The IHE BALP view of an entry: a FHIR R4 `AuditEvent`.
//!
//! The shape follows the Basic Audit Log Patterns: `type` `rest` with the RESTful
//! interaction as `subtype` (or DICOM Export/Security Alert where the action is not a REST
//! interaction), agents for the user (`IRCP`, `requestor = true`), the responsible user
//! they acted for (`RESP`), their organisation (`PROV`, URA), the client (DICOM 110153
//! Source Role ID) and this server (110152 Destination Role ID); entities for the patient
//! (type 1 Person, role 1 Patient, BSN identifier), each object (type 2, role 4 Domain
//! Resource), a search query (role 24 Query, base64) and the request id (BALP
//! `XrequestId`). The NEN 7513 fields BALP has no place for are extensions declared in
//! `profiles/` (authorisation rule, decision reason, consent profile, emergency access,
//! review flag, data categories, chain position and hashes).

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::{AuditAction, AuditOutcome, StoredEntry};
use crate::terminology::uri;

/// Canonical base of everything overdracht publishes.
pub const BASE: &str = "https://w3id.org/overdracht/fhir";
/// Our AuditEvent profile.
pub const PROFILE: &str = "https://w3id.org/overdracht/fhir/StructureDefinition/AuditEvent";
/// The CodeSystem of [`AuditAction`] codes (a second `subtype` coding).
pub const ACTION_SYSTEM: &str = "https://w3id.org/overdracht/fhir/CodeSystem/audit-action";
/// The data-category CodeSystem.
pub const CATEGORY_SYSTEM: &str = "https://w3id.org/overdracht/fhir/CodeSystem/data-category";

/// Extension URLs (declared in profiles/StructureDefinition-audit-*.json).
pub mod ext {
    pub const RULE: &str = "https://w3id.org/overdracht/fhir/StructureDefinition/audit-authorization-rule";
    pub const REASON: &str = "https://w3id.org/overdracht/fhir/StructureDefinition/audit-decision-reason";
    pub const CONSENT: &str = "https://w3id.org/overdracht/fhir/StructureDefinition/audit-consent-profile";
    pub const EMERGENCY: &str = "https://w3id.org/overdracht/fhir/StructureDefinition/audit-emergency-access";
    pub const REVIEW: &str = "https://w3id.org/overdracht/fhir/StructureDefinition/audit-flag-for-review";
    pub const CATEGORY: &str = "https://w3id.org/overdracht/fhir/StructureDefinition/audit-data-category";
    pub const CHAIN: &str = "https://w3id.org/overdracht/fhir/StructureDefinition/audit-chain";
}

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL: &str = "http://hl7.org/fhir/restful-interaction";
const PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const ROLE_CLASS: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleClass";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
const BALP_ENTITY_TYPE: &str = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType";

/// Object types that are not FHIR resources: shown by identifier, not reference.
const OWN_OBJECT_TYPES: &[&str] = &["Handover", "Agreement"];

/// `(type, subtype, action)` of an action, BALP style.
pub fn codes(a: AuditAction) -> (Value, Option<Value>, &'static str) {
    let rest = json!({ "system": EVENT_TYPE, "code": "rest", "display": "Restful Operation" });
    let interaction = |code: &str, display: &str| Some(json!({ "system": RESTFUL, "code": code, "display": display }));
    let export = json!({ "system": DCM, "code": "110106", "display": "Export" });
    match a {
        AuditAction::HandoverReceived | AuditAction::HandoverRefused => (rest, interaction("create", "create"), "C"),
        AuditAction::Conversion | AuditAction::Validation => (rest, interaction("operation", "operation"), "E"),
        AuditAction::Read | AuditAction::BreakGlass => (rest, interaction("read", "read"), "R"),
        AuditAction::Search | AuditAction::AuditQuery => (rest, interaction("search-type", "search type"), "E"),
        AuditAction::Denied => (json!({ "system": DCM, "code": "110113", "display": "Security Alert" }), None, "E"),
        AuditAction::AgreementChange
        | AuditAction::CareTeamChange
        | AuditAction::ConsentChange
        | AuditAction::Review => (rest, interaction("update", "update"), "U"),
        AuditAction::Delivery | AuditAction::OutboxDrop | AuditAction::Export | AuditAction::Report => {
            (export, None, "R")
        }
    }
}

fn outcome_code(o: AuditOutcome) -> &'static str {
    match o {
        AuditOutcome::Success => "0",
        AuditOutcome::Denied | AuditOutcome::Invalid => "4",
        AuditOutcome::Failure => "8",
    }
}

fn identifier(system: &str, value: &str) -> Value {
    json!({ "system": system, "value": value })
}

fn actor_agent(a: &super::Actor, participation: (&str, &str, &str), requestor: bool, purpose: Option<&Value>) -> Value {
    let mut agent = json!({
        "type": { "coding": [{ "system": participation.0, "code": participation.1, "display": participation.2 }] },
        "role": [{ "coding": [{ "system": uri::UZI_ROLE, "code": a.uzi_role }] }],
        "who": { "identifier": identifier(uri::UZI_PERSON, &a.uzi) },
        "requestor": requestor,
    });
    if let Some(p) = purpose {
        agent["purposeOfUse"] = json!([p]);
    }
    agent
}

/// The AuditEvent of a stored entry.
pub fn audit_event(s: &StoredEntry) -> Value {
    let e = &s.entry;
    let (type_, subtype, action) = codes(e.action);
    let mut subtypes: Vec<Value> = subtype.into_iter().collect();
    subtypes.push(json!({ "system": ACTION_SYSTEM, "code": e.action.code() }));
    let purpose = e.purpose.as_ref().map(|p| json!({ "coding": [{ "system": ACT_REASON, "code": p }] }));

    let mut agents = Vec::new();
    if let Some(u) = &e.user {
        let mut agent = actor_agent(u, (PARTICIPATION, "IRCP", "information recipient"), true, purpose.as_ref());
        // The care-team role(s) under which the user was permitted, beside the UZI role.
        for role in e.team_roles.iter().filter_map(|k| crate::policy::MemberRole::from_key(k)) {
            let (system, code) = role.coding();
            if let Some(roles) = agent["role"].as_array_mut() {
                roles.push(json!({ "coding": [{ "system": system, "code": code }], "text": role.key() }));
            }
        }
        agents.push(agent);
    }
    if let Some(b) = &e.on_behalf_of {
        agents.push(actor_agent(b, (PARTICIPATION, "RESP", "responsible party"), false, None));
    }
    if let Some(u) = &e.user {
        agents.push(json!({
            "type": { "coding": [{ "system": ROLE_CLASS, "code": "PROV", "display": "healthcare provider" }] },
            "who": { "identifier": identifier(uri::URA, &u.ura) },
            "requestor": false,
        }));
    }
    let (app, address) = match e.client.as_deref() {
        Some(c) => match c.split_once(" @ ") {
            Some((a, ip)) => (a.strip_prefix("@ ").unwrap_or(a), Some(ip)),
            None => match c.strip_prefix("@ ") {
                Some(ip) => ("", Some(ip)),
                None => (c, None),
            },
        },
        None => ("", None),
    };
    let mut client = json!({
        "type": { "coding": [{ "system": DCM, "code": "110153", "display": "Source Role ID" }] },
        "who": { "display": if app.is_empty() { "unknown client" } else { app } },
        "requestor": false,
    });
    if let Some(ip) = address {
        client["network"] = json!({ "address": ip, "type": "2" });
    }
    agents.push(client);
    agents.push(json!({
        "type": { "coding": [{ "system": DCM, "code": "110152", "display": "Destination Role ID" }] },
        "who": { "display": "overdracht" },
        "requestor": false,
    }));

    let mut entities = Vec::new();
    if let Some(bsn) = &e.patient_bsn {
        entities.push(json!({
            "what": { "identifier": identifier(uri::BSN, bsn) },
            "type": { "system": ENTITY_TYPE, "code": "1", "display": "Person" },
            "role": { "system": OBJECT_ROLE, "code": "1", "display": "Patient" },
        }));
    }
    for o in &e.objects {
        if let Some((ty, _)) = o.split_once('?') {
            entities.push(json!({
                "what": { "display": ty },
                "type": { "system": ENTITY_TYPE, "code": "2", "display": "System Object" },
                "role": { "system": OBJECT_ROLE, "code": "24", "display": "Query" },
                "query": base64::engine::general_purpose::STANDARD.encode(o.as_bytes()),
            }));
            continue;
        }
        let (ty, id) = o.split_once('/').unwrap_or((o.as_str(), ""));
        let what = if let (true, Some(ura)) = (ty == "Organization", id.strip_prefix("ura-")) {
            // An organisation named by URA (the intended receiver of a refused handover).
            json!({ "identifier": identifier(uri::URA, ura), "display": "Organization" })
        } else if OWN_OBJECT_TYPES.contains(&ty) {
            json!({ "identifier": identifier(&format!("{BASE}/NamingSystem/{}", ty.to_ascii_lowercase()), id), "display": ty })
        } else {
            json!({ "reference": o })
        };
        entities.push(json!({
            "what": what,
            "type": { "system": ENTITY_TYPE, "code": "2", "display": "System Object" },
            "role": { "system": OBJECT_ROLE, "code": "4", "display": "Domain Resource" },
        }));
    }
    if let Some(r) = &e.request_id {
        entities.push(json!({
            "what": { "identifier": { "value": r } },
            "type": { "system": BALP_ENTITY_TYPE, "code": "XrequestId", "display": "X-Request-Id" },
        }));
    }

    let mut extensions = Vec::new();
    let mut push = |url: &str, key: &str, v: Value| {
        let mut m = Map::new();
        m.insert("url".into(), json!(url));
        m.insert(key.into(), v);
        extensions.push(Value::Object(m));
    };
    if let Some(r) = &e.rule {
        push(ext::RULE, "valueString", json!(r));
    }
    if let Some(r) = e.shown_reason() {
        push(ext::REASON, "valueString", json!(r));
    }
    if let Some(c) = &e.consent {
        push(ext::CONSENT, "valueString", json!(c));
    }
    push(ext::EMERGENCY, "valueBoolean", json!(e.emergency));
    if e.flag_for_review {
        push(ext::REVIEW, "valueBoolean", json!(true));
    }
    for c in &e.categories {
        push(ext::CATEGORY, "valueCoding", json!({ "system": CATEGORY_SYSTEM, "code": c }));
    }
    let mut chain =
        vec![json!({ "url": "hash", "valueString": s.hash }), json!({ "url": "previous", "valueString": s.prev_hash })];
    if let Ok(p) = i32::try_from(s.seq) {
        chain.insert(0, json!({ "url": "position", "valueInteger": p }));
    }
    extensions.push(json!({ "url": ext::CHAIN, "extension": chain }));

    let mut ev = json!({
        "resourceType": "AuditEvent",
        "id": s.id,
        "meta": { "profile": [PROFILE] },
        "extension": extensions,
        "type": type_,
        "subtype": subtypes,
        "action": action,
        "recorded": s.recorded,
        "outcome": outcome_code(e.outcome),
    });
    if e.outcome != AuditOutcome::Success {
        if let Some(r) = e.shown_reason() {
            ev["outcomeDesc"] = json!(r);
        }
    }
    if let Some(p) = purpose {
        ev["purposeOfEvent"] = json!([p]);
    }
    ev["agent"] = Value::Array(agents);
    ev["source"] = json!({
        "site": "overdracht",
        "observer": { "display": "overdracht" },
        "type": [{ "system": SOURCE_TYPE, "code": "4", "display": "Application Server" }],
    });
    if !entities.is_empty() {
        ev["entity"] = Value::Array(entities);
    }
    ev
}
