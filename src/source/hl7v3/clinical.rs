//! The clinical sections: episodes, contacts with their journal, results, medication,
//! intolerances and alerts.
//!
//! Inside a contact the journal comes as one `component` per line; lines with the same
//! `sequenceNumber` form one part of the contact (a "deelcontact", usually one episode),
//! and the `ObservationDx` of that part is the ICPC code of its E line. So one
//! `JournalEntry` is made per contact and part, which is how the GP wrote it.

use std::collections::BTreeMap;

use super::xml::NodeId;
use super::Mapper;
use crate::model::{
    Alert, Allergy, Coding, Concept, Contact, DispenseRequest, Dosage, Episode, Identifier, ItemConcept, JournalEntry,
    Key, MedicationAgreement, MedicationRef, ObsValue, Observation, ObservationKind, Period, Problem, Product, Ref,
    ReferenceRange, SoapKind, SoapLine, When,
};
use crate::terminology::maps;

const JOURNAL_LINE_TYPE_OID: &str = "2.16.840.1.113883.2.4.4.32.2";
const LOINC_ALERT: &str = "74018-3";
const G_STANDAARD_PREFIX: &str = "urn:oid:2.16.840.1.113883.2.4.4.1";

/// A line, diagnosis, prescription or result of one part of a contact, in message order.
#[derive(Default)]
struct Part {
    lines: Vec<NodeId>,
    diagnoses: Vec<NodeId>,
    prescriptions: Vec<NodeId>,
    results: Vec<NodeId>,
    first: Option<NodeId>,
}

fn episode_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "active" => "active",
        "completed" => "finished",
        "cancelled" | "aborted" => "cancelled",
        "nullified" => "entered-in-error",
        "suspended" => "onhold",
        _ => return None,
    })
}

fn result_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "completed" => "final",
        "active" => "preliminary",
        "aborted" | "cancelled" => "cancelled",
        "nullified" => "entered-in-error",
        _ => return None,
    })
}

fn prescription_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "active" => "active",
        "completed" => "completed",
        "aborted" => "stopped",
        "suspended" => "on-hold",
        "cancelled" => "cancelled",
        "nullified" => "entered-in-error",
        _ => return None,
    })
}

/// zib2020 ProblemType "diagnose" (SNOMED), for the v3 act code DISDX / DX of an ObservationDx.
fn problem_type_diagnosis() -> Concept {
    Concept::coded(Coding::new(crate::terminology::uri::SNOMED, "282291009", Some("Diagnose")))
}

impl Mapper<'_> {
    /// Reads a `statusCode` child through `map`; an unknown status is left to the report.
    fn status(&self, node: NodeId, map: fn(&str) -> Option<&'static str>) -> Option<String> {
        let d = self.doc;
        let s = d.peek_kids(node, "statusCode").next()?;
        let mapped = map(d.peek_attr(s, "code")?)?;
        d.use_node(s);
        let _ = d.attr(s, "code");
        Some(mapped.to_owned())
    }

    /// Consumes a fixed act `code` (e.g. DISDX, CI, INTLRNC) if it has the expected value,
    /// returning it as a coding.
    fn fixed_code(&self, node: NodeId, expected: &[&str]) -> Option<Coding> {
        let d = self.doc;
        let c = d.peek_kids(node, "code").next()?;
        if !expected.contains(&d.peek_attr(c, "code")?) {
            return None;
        }
        d.use_node(c);
        self.coding(c)
    }

    pub(crate) fn episode(&mut self, e: NodeId) {
        let d = self.doc;
        let ids = self.ids(e);
        let key = self.key_for(ids.first(), e, "EpisodeOfCare");
        let mut ep = Episode { identifiers: ids.clone(), ..Default::default() };
        ep.title = d.kid(e, "text").and_then(|t| d.text(t)).map(str::to_owned);
        ep.status = self.status(e, episode_status);
        if let Some(t) = d.kid(e, "effectiveTime") {
            ep.period = self.ivl_ts(t);
        }
        for i in &ids {
            self.episodes.insert(i.clone(), key.clone());
        }
        // The acts (journal lines, results) that belong to this episode: linked later, and
        // only then marked as used, so that a listed id that matches nothing is reported.
        // The episOfCare's own effectiveTime spans the first to the last encounter.
        if let Some(eoc) = d.walk(e, &["component2", "episodOfCare"]) {
            if let Some(t) = d.kid(eoc, "effectiveTime") {
                let p = self.ivl_ts(t);
                ep.first_encounter = p.start;
                ep.last_encounter = p.end;
            }
        }
        if let Some(eoc) = d.walk(e, &["component2", "episodOfCare"]) {
            for c in d.peek_kids(eoc, "component").collect::<Vec<_>>() {
                let Some(ar) = d.peek_kids(c, "actReference").next() else {
                    continue;
                };
                for id in d.peek_kids(ar, "id").collect::<Vec<_>>() {
                    let Some(ident) = self.peek_ii(id) else {
                        continue;
                    };
                    let entry = self.episode_acts.entry(ident).or_insert_with(|| (key.clone(), Vec::new()));
                    entry.1.extend([c, ar, id]);
                }
            }
        }
        // The diagnosis of the episode.
        for dx in d.peek_kids(e, "reason").filter_map(|r| d.peek_kids(r, "ObservationDx").next()).collect::<Vec<_>>() {
            if let Some(r) = d.children(e).find(|r| d.is(*r, "reason") && d.children(*r).any(|x| x == dx)) {
                d.use_node(r);
            }
            d.use_node(dx);
            let dx_ids = self.ids(dx);
            let pkey = self.key_for(dx_ids.first(), dx, "Condition");
            let mut code = d.kid(dx, "value").map(|v| self.concept(v)).unwrap_or_default();
            if let Some(t) = d.kid(dx, "text").and_then(|t| d.text(t)) {
                code.text = Some(t.to_owned());
            }
            let problem_type = self.fixed_code(dx, &["DISDX", "DX"]).map(|_| problem_type_diagnosis());
            let mut problem = Problem { identifiers: dx_ids, code: code.clone(), problem_type, ..Default::default() };
            problem.clinical_status = match ep.status.as_deref() {
                Some("active") => Some("active".into()),
                Some("finished") => Some("inactive".into()),
                _ => None,
            };
            if let Some(t) = d.kid(dx, "effectiveTime") {
                problem.onset = self.ivl_ts(t).start;
            }
            problem.episode = Some(Ref::to(key.clone()));
            if ep.code.is_none() && !code.codings.is_empty() {
                ep.code = Some(Concept { codings: code.codings.clone(), text: None });
            }
            ep.diagnoses.push(Ref::to(pkey.clone()));
            self.push(pkey, dx, ItemConcept::Problem(problem));
        }
        self.push(key, e, ItemConcept::Episode(ep));
    }

    pub(crate) fn encounter(&mut self, e: NodeId) {
        let d = self.doc;
        let ids = self.ids(e);
        let key = self.key_for(ids.first(), e, "Encounter");
        let mut contact = Contact { identifiers: ids, ..Default::default() };
        for c in d.kids(e, "code").collect::<Vec<_>>() {
            contact.types.push(self.concept(c));
        }
        if let Some(t) = d.kid(e, "effectiveTime") {
            contact.period = self.ivl_ts(t);
        }
        // A contact in the journal has taken place.
        contact.status = Some("finished".into());
        let mut author = None;
        if let Some(ap) = d.walk(e, &["author", "AssignedPerson"]) {
            let (practitioner, role, org) = self.assigned(ap);
            let r = Ref::to(role.unwrap_or(practitioner));
            contact.participants.push(r.clone());
            author = Some(r);
            contact.service_provider = org.map(Ref::to);
        }

        // Group the components by sequence number, in message order.
        let mut parts: BTreeMap<String, Part> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for c in d.peek_kids(e, "component").collect::<Vec<_>>() {
            let seq =
                d.peek_kids(c, "sequenceNumber").next().and_then(|s| d.peek_attr(s, "value")).unwrap_or("").to_owned();
            let Some(payload) = d.children(c).find(|x| !d.is(*x, "sequenceNumber")) else {
                continue;
            };
            let part = parts.entry(seq.clone()).or_default();
            let slot = match d.name(payload) {
                _ if d.ns(payload) != super::xml::V3 => continue,
                "JournalEntry" => &mut part.lines,
                "ObservationDx" => &mut part.diagnoses,
                "Prescription" => &mut part.prescriptions,
                "observation" | "Observation" => &mut part.results,
                _ => continue,
            };
            slot.push(payload);
            part.first.get_or_insert(c);
            if !order.contains(&seq) {
                order.push(seq);
            }
            d.use_node(c);
            if let Some(s) = d.kid(c, "sequenceNumber") {
                let _ = d.attr(s, "value");
            }
        }

        let mut entries = Vec::new();
        for seq in order {
            let Some(part) = parts.remove(&seq) else {
                continue;
            };
            for p in &part.prescriptions {
                d.use_node(*p);
                self.prescription(*p, Some(&key));
            }
            for r in &part.results {
                d.use_node(*r);
                self.observation(*r, Some(&key));
            }
            if part.lines.is_empty() && part.diagnoses.is_empty() {
                continue;
            }
            let mut entry = JournalEntry {
                date: contact.period.start,
                author: author.clone(),
                encounter: Some(Ref::to(key.clone())),
                ..Default::default()
            };
            let mut link_ids = Vec::new();
            for l in &part.lines {
                let Some(code) = d.peek_kids(*l, "code").next() else {
                    continue;
                };
                if d.peek_attr(code, "codeSystem") != Some(JOURNAL_LINE_TYPE_OID) {
                    continue;
                }
                let Some(kind) = d.peek_attr(code, "code").and_then(SoapKind::from_letter) else {
                    continue;
                };
                d.use_node(*l);
                d.use_node(code);
                let _ = self.coding(code);
                let line_ids = self.ids(*l);
                let text = d
                    .kid(*l, "value")
                    .and_then(|v| d.text(v))
                    .or_else(|| d.kid(*l, "text").and_then(|t| d.text(t)))
                    .unwrap_or_default()
                    .to_owned();
                link_ids.extend(line_ids.iter().cloned());
                // The line's JournalEntry ids stay with the line (the Composition is the contact part).
                entry.lines.push(SoapLine { kind, code: None, text, identifiers: line_ids });
            }
            for dx in &part.diagnoses {
                d.use_node(*dx);
                let _ = self.fixed_code(*dx, &["DISDX", "DX"]);
                let dx_ids = self.ids(*dx);
                link_ids.extend(dx_ids.iter().cloned());
                let code = d.kid(*dx, "value").map(|v| self.concept(v)).unwrap_or_default();
                if let Some(ap) = d.walk(*dx, &["author", "AssignedPerson"]) {
                    let (practitioner, role, _) = self.assigned(ap);
                    entry.author.get_or_insert_with(|| Ref::to(role.unwrap_or(practitioner)));
                }
                // The ObservationDx codes the E line: its ids go with that line.
                match entry.lines.iter_mut().find(|l| l.kind == SoapKind::Evaluation && l.code.is_none()) {
                    Some(line) => {
                        line.code = Some(code);
                        line.identifiers.extend(dx_ids);
                    }
                    None => {
                        // The diagnosis of a part without an E line is the E line itself.
                        let text =
                            code.codings.first().and_then(|c| c.display.clone().or(c.code.clone())).unwrap_or_default();
                        entry.lines.push(SoapLine {
                            kind: SoapKind::Evaluation,
                            code: Some(code),
                            text,
                            identifiers: dx_ids,
                        });
                    }
                }
            }
            entry.episode = self.episode_of(&link_ids).map(Ref::to);
            if let Some(ep) = &entry.episode {
                if !contact.episodes.contains(ep) {
                    contact.episodes.push(ep.clone());
                }
            }
            let anchor = part.first.unwrap_or(e);
            let k = format!("{key}/part/{seq}");
            let k = if self.keys_insert(k.clone()) { k } else { self.key_for(None, anchor, "Composition") };
            entries.push((k, anchor, entry));
        }
        self.push(key, e, ItemConcept::Contact(contact));
        for (k, anchor, entry) in entries {
            self.push(k, anchor, ItemConcept::JournalEntry(entry));
        }
    }

    /// A result (`observation`), or the attention flag of an episode (LOINC 74018-3).
    pub(crate) fn observation(&mut self, o: NodeId, encounter: Option<&Key>) {
        let d = self.doc;
        let Some(code_node) = d.peek_kids(o, "code").next() else {
            return;
        };
        if d.peek_attr(code_node, "code") == Some(LOINC_ALERT) {
            self.attention(o, code_node);
            return;
        }
        d.use_node(o);
        let ids = self.ids(o);
        let code = d.kid(o, "code").map(|c| self.concept(c)).unwrap_or_default();
        let kind = self
            .t
            .translate_any(maps::DIAGNOSTIC_RESULT_TO_ZIB, &code.codings)
            .and_then(|c| c.code.as_deref())
            .and_then(ObservationKind::from_zib)
            .unwrap_or(ObservationKind::LaboratoryTestResult);
        let key = self.key_for(ids.first(), o, "Observation");
        let mut obs = Observation::new(kind, code);
        obs.identifiers = ids;
        // A result known to be unknown (nullFlavor on the act): its data-absent reason.
        obs.data_absent = d.attr(o, "nullFlavor").map(|nf| crate::model::data_absent_reason(nf).to_owned());
        obs.status = self.status(o, result_status);
        if let Some(t) = d.kid(o, "effectiveTime") {
            if d.peek_attr(t, "value").is_some() {
                obs.effective = self.ts(t);
            } else {
                let p = self.ivl_ts(t);
                match (p.start, p.end) {
                    (Some(s), None) => obs.effective = Some(s),
                    (None, None) => {}
                    _ => obs.effective_period = Some(p),
                }
            }
        }
        for v in d.peek_kids(o, "value").collect::<Vec<_>>() {
            if let Some(value) = self.obs_value(v) {
                obs.value.get_or_insert(value);
            }
        }
        for i in d.kids(o, "interpretationCode").collect::<Vec<_>>() {
            let c = self.concept(i);
            if !c.is_empty() {
                obs.interpretation.push(c);
            }
        }
        for rr in d.kids(o, "referenceRange").collect::<Vec<_>>() {
            if let Some(range) = d.kid(rr, "observationRange") {
                obs.reference_ranges.push(self.reference_range(range));
            }
        }
        if let Some(t) = d.kid(o, "text").and_then(|t| d.text(t)) {
            obs.notes.push(t.to_owned());
        }
        if let Some(m) = d.kid(o, "methodCode") {
            obs.method = Some(self.concept(m));
        }
        if let Some(s) = d.kid(o, "targetSiteCode") {
            obs.body_site = Some(self.concept(s));
        }
        for who in ["author", "performer"] {
            for a in d.kids(o, who).collect::<Vec<_>>() {
                if let Some(ap) = d.kid(a, "AssignedPerson").or_else(|| d.kid(a, "AssignedEntity")) {
                    let (practitioner, role, _) = self.assigned(ap);
                    obs.performers.push(Ref::to(role.unwrap_or(practitioner)));
                }
            }
        }
        obs.episode = self.episode_of(&obs.identifiers).map(Ref::to);
        obs.encounter = encounter.map(|k| Ref::to(k.clone()));
        self.push(key, o, ItemConcept::Observation(obs));
    }

    fn obs_value(&mut self, v: NodeId) -> Option<ObsValue> {
        let d = self.doc;
        let ty = d.xsi_type(v).map(str::to_owned);
        let value = match ty.as_deref() {
            Some("PQ") | Some("REAL") | None
                if d.peek_attr(v, "value").and_then(crate::model::Decimal::parse).is_some() =>
            {
                self.pq(v).map(ObsValue::Quantity)
            }
            Some("INT") => d.peek_attr(v, "value").and_then(|s| s.parse().ok()).map(|i| {
                let _ = d.attr(v, "value");
                ObsValue::Integer(i)
            }),
            Some("BL") => d.peek_attr(v, "value").and_then(|s| s.parse().ok()).map(|b| {
                let _ = d.attr(v, "value");
                ObsValue::Boolean(b)
            }),
            Some("TS") => self.ts(v).map(ObsValue::DateTime),
            Some("CD") | Some("CE") | Some("CV") | Some("CO") | Some("CS") => {
                let c = self.concept(v);
                (!c.is_empty()).then_some(ObsValue::Concept(c))
            }
            Some("ST") | Some("ED") | None => d.text(v).map(|t| ObsValue::Text(t.to_owned())),
            _ => None,
        };
        if value.is_some() {
            d.use_node(v);
        }
        value
    }

    fn reference_range(&mut self, range: NodeId) -> ReferenceRange {
        let d = self.doc;
        let mut rr = ReferenceRange::default();
        if let Some(v) = d.kid(range, "value") {
            if let Some(low) = d.kid(v, "low") {
                rr.low = self.pq(low);
            }
            if let Some(high) = d.kid(v, "high") {
                rr.high = self.pq(high);
            }
        }
        if let Some(i) = d.peek_kids(range, "interpretationCode").next() {
            if d.peek_attr(i, "code") == Some("N") {
                d.use_node(i);
                let _ = self.coding(i);
                rr.type_ = Some(Concept::coded(Coding::new(
                    "http://terminology.hl7.org/CodeSystem/referencerange-meaning",
                    "normal",
                    Some("Normal Range"),
                )));
            }
        }
        rr.text = d.kid(range, "text").and_then(|t| d.text(t)).map(str::to_owned);
        rr
    }

    /// `observation` LOINC 74018-3 "Alert" with `sourceOf/act/id` = an episode id: that
    /// episode is an attention point (aandachtspunt).
    /// An "Alert" (LOINC 74018-3) on an episode: an nl-core Alert (Flag) about the episode's
    /// concern (flag-detail to its problem), active while the episode is.
    fn attention(&mut self, o: NodeId, code_node: NodeId) {
        let d = self.doc;
        let mut matched = false;
        let mut alerts = Vec::new();
        for s in d.peek_kids(o, "sourceOf").collect::<Vec<_>>() {
            let Some(act) = d.peek_kids(s, "act").next() else {
                continue;
            };
            for id in d.peek_kids(act, "id").collect::<Vec<_>>() {
                let Some(ident) = self.peek_ii(id) else {
                    continue;
                };
                let Some(key) = self.episodes.get(&ident).cloned() else {
                    continue;
                };
                if let Some(ItemConcept::Episode(ep)) = self.item_mut(&key) {
                    ep.attention = Some(true);
                    let code = ep.code.clone().map(|mut c| {
                        c.text = ep.title.clone();
                        c
                    });
                    let code = code.unwrap_or_else(|| Concept { codings: vec![], text: ep.title.clone() });
                    let status = match ep.status.as_deref() {
                        Some("finished") | Some("cancelled") => "inactive",
                        Some("entered-in-error") => "entered-in-error",
                        _ => "active",
                    };
                    alerts.push(Alert {
                        code,
                        // the observation's own code, LOINC 74018-3 "Alert": a zib alert type
                        category: Some(Concept::coded(Coding::new(
                            crate::terminology::uri::LOINC,
                            LOINC_ALERT,
                            Some("Alert"),
                        ))),
                        status: Some(status.to_owned()),
                        period: ep.period,
                        author: ep.care_manager.clone(),
                        detail: ep.diagnoses.first().cloned(),
                        ..Default::default()
                    });
                    matched = true;
                    for n in [s, act, id] {
                        d.use_node(n);
                    }
                    let _ = (d.attr(id, "root"), d.attr(id, "extension"));
                    if let Some(c) = d.kid(act, "code") {
                        let _ = self.coding(c);
                    }
                }
            }
        }
        for alert in alerts {
            let key = self.key_for(None, o, "Flag");
            self.push(key, o, ItemConcept::Alert(alert));
        }
        if matched {
            d.use_node(o);
            d.use_node(code_node);
            let _ = self.coding(code_node);
            if let Some(s) = d.peek_kids(o, "statusCode").next() {
                if d.peek_attr(s, "code") == Some("completed") {
                    d.use_node(s);
                    let _ = d.attr(s, "code");
                }
            }
        }
    }

    pub(crate) fn prescription(&mut self, p: NodeId, encounter: Option<&Key>) {
        let d = self.doc;
        let ids = self.ids(p);
        let key = self.key_for(ids.first(), p, "MedicationRequest");
        let status = self.status(p, prescription_status);
        let mut authored_on = None;
        let mut prescriber = None;
        if let Some(a) = d.kid(p, "author") {
            if let Some(t) = d.kid(a, "time") {
                authored_on = self.ts(t);
            }
            if let Some(ap) = d.kid(a, "AssignedPerson").or_else(|| d.kid(a, "AssignedEntity")) {
                let (practitioner, role, _) = self.assigned(ap);
                prescriber = Some(Ref::to(role.unwrap_or(practitioner)));
            }
        }
        let Some(med) = d.walk(p, &["directTarget", "prescribedMedication"]) else {
            // Without a product there is nothing to prescribe: leave it to the report.
            return;
        };
        let product = d.kid(med, "MedicationKind").map(|mk| self.product(mk));
        let mut agreement = MedicationAgreement {
            identifiers: ids,
            medication: match product {
                Some(k) => MedicationRef::Product(Ref::to(k)),
                None => MedicationRef::Code(Concept::default()),
            },
            authored_on,
            period_of_use: Period::default(),
            duration: None,
            dosages: vec![],
            prescriber,
            reasons: vec![],
            status,
            stopped: None,
            encounter: encounter.map(|k| Ref::to(k.clone())),
            notes: vec![],
            recorder: None,
            dispense: None,
            treatment: None,
        };
        // productOf/medicationDispenseRequest: the quantity to dispense.
        for po in d.kids(med, "productOf").collect::<Vec<_>>() {
            let Some(mdr) = d.kid(po, "medicationDispenseRequest") else {
                continue;
            };
            let mut dr = DispenseRequest::default();
            if let Some(q) = d.kid(mdr, "quantity") {
                dr.quantity = self.pq(q);
                for t in d.kids(q, "translation").collect::<Vec<_>>() {
                    // The G-Standaard unit of the same amount: the unit is kept from the translation.
                    if let (Some(c), Some(quantity)) = (self.coding(t), dr.quantity.as_mut()) {
                        if quantity.unit.as_deref().is_none_or(|u| u == "1") {
                            quantity.unit = c.display.clone();
                        }
                        let _ = d.attr(t, "value");
                    }
                }
            }
            if let Some(s) = d.peek_kids(mdr, "statusCode").next() {
                if d.peek_attr(s, "nullFlavor").is_some() {
                    // A dispense request has no status of its own here.
                    d.use_node(s);
                    let _ = d.attr(s, "nullFlavor");
                }
            }
            agreement.dispense = Some(Box::new(dr));
        }
        for ta in d.kids(med, "therapeuticAgentOf").collect::<Vec<_>>() {
            let Some(mar) = d.kid(ta, "medicationAdministrationRequest") else {
                continue;
            };
            // The administration request's id identifies the dosing instruction, not the
            // agreement: used as the agreement's identifier only when the prescription has none
            // of its own (two prescriptions may share one; the id is then reported as
            // administrative, mappings/leftover-classes.json).
            if agreement.identifiers.is_empty() {
                agreement.identifiers.extend(self.ids(mar));
            }
            let mut dosage =
                Dosage { text: d.kid(mar, "text").and_then(|t| d.text(t)).map(str::to_owned), ..Default::default() };
            if let Some(s) = d.peek_kids(mar, "statusCode").next() {
                if d.peek_attr(s, "code").and_then(prescription_status) == agreement.status.as_deref() {
                    d.use_node(s);
                    let _ = d.attr(s, "code");
                }
            }
            for et in d.kids(mar, "effectiveTime").collect::<Vec<_>>() {
                self.dosage_time(et, &mut agreement.period_of_use, &mut dosage);
            }
            if let Some(q) = d.peek_kids(mar, "doseQuantity").next() {
                if let Some(dose) = self.pq(q) {
                    d.use_node(q);
                    dosage.dose = Some(dose);
                }
            }
            if let Some(r) = d.kid(mar, "routeCode") {
                dosage.route = Some(self.concept(r));
            }
            agreement.dosages.push(dosage);
        }
        self.push(key, p, ItemConcept::MedicationAgreement(agreement));
    }

    /// An administration time: IVL_TS (period of use), PIVL_TS (repeat), or SXPR_TS of those.
    fn dosage_time(&mut self, et: NodeId, period: &mut Period, dosage: &mut Dosage) {
        let d = self.doc;
        match d.xsi_type(et) {
            Some("SXPR_TS") => {
                for c in d.kids(et, "comp").collect::<Vec<_>>() {
                    self.dosage_time(c, period, dosage);
                }
            }
            Some("PIVL_TS") => {
                let _ = d.attr(et, "operator");
                if let Some(pn) = d.peek_kids(et, "period").next() {
                    let v = d.peek_attr(pn, "value").and_then(crate::model::Decimal::parse);
                    let u = d.peek_attr(pn, "unit");
                    if let (Some(v), Some(u)) = (v, u) {
                        d.use_node(pn);
                        let _ = (d.attr(pn, "value"), d.attr(pn, "unit"));
                        dosage.frequency = Some(1);
                        dosage.period = Some(v);
                        dosage.period_unit = Some(u.to_owned());
                    }
                }
            }
            _ => {
                let _ = d.attr(et, "operator");
                let p = self.ivl_ts(et);
                if period.is_empty() {
                    *period = p;
                }
            }
        }
    }

    /// A G-Standaard coded product, one item per code.
    fn product(&mut self, mk: NodeId) -> Key {
        let d = self.doc;
        let code = d.kid(mk, "code").map(|c| self.concept(c)).unwrap_or_default();
        let first = code.codings.first().cloned();
        let lookup = first.as_ref().and_then(|c| c.code.clone().map(|k| (c.system.clone(), k)));
        if let Some(k) = lookup.as_ref().and_then(|l| self.products.get(l)) {
            let _ = d.kid(mk, "name").and_then(|n| d.text(n));
            return k.clone();
        }
        let ident = first.as_ref().and_then(|c| Some(Identifier { system: c.system.clone(), value: c.code.clone()? }));
        let key = self.key_for(ident.as_ref(), mk, "Medication");
        let description = d.kid(mk, "name").and_then(|n| d.text(n)).map(str::to_owned);
        if let Some(l) = lookup {
            self.products.insert(l, key.clone());
        }
        self.push(key.clone(), mk, ItemConcept::Product(Product { code, description, ..Default::default() }));
        key
    }

    pub(crate) fn contra_indication(&mut self, ci: NodeId) {
        let d = self.doc;
        let ids = self.ids(ci);
        let key = self.key_for(ids.first(), ci, "Flag");
        let mut alert = Alert { identifiers: ids, ..Default::default() };
        alert.category = self.fixed_code(ci, &["CI"]).map(Concept::coded);
        alert.code = d.kid(ci, "value").map(|v| self.concept(v)).unwrap_or_default();
        if let Some(t) = d.kid(ci, "text").and_then(|t| d.text(t)) {
            if alert.code.text.is_none() {
                alert.code.text = Some(t.to_owned());
            } else {
                alert.notes.push(t.to_owned());
            }
        }
        if let Some(t) = d.kid(ci, "effectiveTime") {
            alert.period = self.ivl_ts(t);
        }
        let _ = self.status(ci, |c| matches!(c, "active" | "completed").then_some(""));
        alert.status = Some(flag_status(&alert.period, self.as_of).into());
        self.push(key, ci, ItemConcept::Alert(alert));
    }

    pub(crate) fn annotation(&mut self, a: NodeId) {
        let d = self.doc;
        let ids = self.ids(a);
        let key = self.key_for(ids.first(), a, "Flag");
        let mut alert = Alert { identifiers: ids, ..Default::default() };
        alert.category = d.kid(a, "code").and_then(|c| self.coding(c)).map(Concept::coded);
        alert.code = Concept { codings: vec![], text: d.kid(a, "text").and_then(|t| d.text(t)).map(str::to_owned) };
        if let Some(t) = d.kid(a, "effectiveTime") {
            alert.period = self.ivl_ts(t);
        }
        alert.status = Some(flag_status(&alert.period, self.as_of).into());
        self.push(key, a, ItemConcept::Alert(alert));
    }

    pub(crate) fn intolerance(&mut self, oi: NodeId) {
        let d = self.doc;
        let ids = self.ids(oi);
        let key = self.key_for(ids.first(), oi, "AllergyIntolerance");
        let mut al = Allergy { identifiers: ids, ..Default::default() };
        if let Some(c) = self.fixed_code(oi, &["INTLRNC", "DINT", "DALLRGY", "ALG", "DRGALG", "DRGINT", "FALG", "FINT"])
        {
            al.type_ = match c.code.as_deref() {
                Some("INTLRNC" | "DINT" | "DRGINT" | "FINT") => Some("intolerance".into()),
                _ => Some("allergy".into()),
            };
            if matches!(c.code.as_deref(), Some("DINT" | "DALLRGY" | "DRGALG" | "DRGINT")) {
                al.categories.push("medication".into());
            }
        }
        al.code = d.kid(oi, "value").map(|v| self.concept(v)).unwrap_or_default();
        if al.code.codings.iter().any(|c| c.system.as_deref().is_some_and(|s| s.starts_with(G_STANDAARD_PREFIX)))
            && !al.categories.iter().any(|c| c == "medication")
        {
            al.categories.push("medication".into());
        }
        if let Some(t) = d.kid(oi, "text").and_then(|t| d.text(t)) {
            al.notes.push(t.to_owned());
        }
        match d.peek_attr(oi, "negationInd") {
            Some("true") => {
                let _ = d.attr(oi, "negationInd");
                al.verification_status = Some("refuted".into());
            }
            Some("false") => {
                let _ = d.attr(oi, "negationInd");
            }
            _ => {}
        }
        if let Some(t) = d.kid(oi, "effectiveTime") {
            let p = self.ivl_ts(t);
            al.onset = p.start;
            al.clinical_status = Some(if p.end.is_some() { "resolved" } else { "active" }.into());
        }
        if let Some(s) = d.peek_kids(oi, "statusCode").next() {
            if d.peek_attr(s, "code") == Some("completed") {
                d.use_node(s);
                let _ = d.attr(s, "code");
            }
        }
        self.push(key, oi, ItemConcept::Allergy(al));
    }
}

/// `active` unless the period had ended when the message was created (or has an end and
/// the message has no creation time). Never "today": the output must not depend on when
/// the conversion runs.
fn flag_status(p: &Period, as_of: Option<chrono::NaiveDate>) -> &'static str {
    match (p.end.as_ref().and_then(When::start_date), as_of) {
        (Some(end), Some(day)) if end < day => "inactive",
        (Some(_), None) => "inactive",
        _ => "active",
    }
}
