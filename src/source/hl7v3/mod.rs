//! The NHG Professional Summary (Professionele Samenvatting, HL7v3 `QUPC_IN990002NL`,
//! Huisartswaarneemgegevens 6.10) → model.
//!
//! The message is the summary a Dutch GP system produces when a patient's care is handed
//! over. Its clinical part is one `PrimaryCareProvision` with:
//!
//! | message                                              | model                                         |
//! |------------------------------------------------------|-----------------------------------------------|
//! | `subject/Patient`                                    | [`Patient`] (BSN, name, gender, address, ...)  |
//! | `author/AssignedEntity` (and every other author)     | `HealthProfessional` + `ProfessionalRole` + `HealthcareProvider` |
//! | `component7/episodeOfCondition`                      | `Episode` (ICPC code, title, period) + its `Problem` |
//! | `component2/observation` LOINC 74018-3 "Alert"       | the episode's `attention` flag and an `Alert` about its problem (alert type 74018-3) |
//! | `component1/encounter`                               | `Contact`                                     |
//! | `encounter/component[sequenceNumber=n]`              | one `JournalEntry` per contact and part (S/O/E/P lines; the `ObservationDx` of the part codes its E line) |
//! | `encounter/component/Prescription`                   | `Product` (G-Standaard code) + `MedicationAgreement` |
//! | `component2/observation` (NHG table 45)              | `Observation` (kind from mappings/ConceptMap-diagnostic-result-to-zib.json) |
//! | `component4/ObservationIntolerance`                  | `Allergy`                                     |
//! | `component3/ContraIndication`                        | `Alert` (category: the CI act code)           |
//! | `pertinentInformation/pertinentAnnotationObsEvent`   | `Alert` (category: the ATT act code)          |
//!
//! Links are kept: an episode lists the ids of the journal lines (and results) that belong
//! to it (`episodOfCare/component/actReference`); a journal entry or result whose id is
//! listed there points to that episode.
//!
//! Everything the mapping does not read is reported in `Dossier::outcome` with its
//! XPath-like location (a warning inside the clinical part, information elsewhere); see
//! [`xml`] for how that is tracked and for the safety rules of the XML reader.

mod clinical;
mod datatypes;
mod parties;
mod xml;

use std::collections::{HashMap, HashSet};

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use self::xml::{Doc, NodeId, V3};
use super::{Keys, SourceError};
use crate::diagnostics::{Issue, IssueCode, Outcome};
use crate::model::{Dossier, Identifier, Item, ItemConcept, Key, Patient};
use crate::terminology::Terminology;

/// The root element's local name.
const ROOT: &str = "QUPC_IN990002NL";
/// At most this many "not mapped" issues are listed one by one.
const MAX_UNMAPPED_ISSUES: usize = 500;

/// The author a conducted act gets from the care provision where it names none itself: the
/// asserter of a problem, the care manager of an episode, the performer of a result (FHIR:
/// "who is responsible for asserting the observed value"), the recorder of an allergy, the
/// author of an alert.
fn conduct_author(concept: &mut ItemConcept, author: &Key) {
    use crate::model::Ref;
    match concept {
        ItemConcept::Problem(p) => {
            p.asserter.get_or_insert_with(|| Ref::to(author.clone()));
        }
        ItemConcept::Episode(e) => {
            e.care_manager.get_or_insert_with(|| Ref::to(author.clone()));
        }
        ItemConcept::Observation(o) if o.performers.is_empty() => o.performers.push(Ref::to(author.clone())),
        ItemConcept::Allergy(a) => {
            a.recorder.get_or_insert_with(|| Ref::to(author.clone()));
        }
        ItemConcept::Alert(a) => {
            a.author.get_or_insert_with(|| Ref::to(author.clone()));
        }
        _ => {}
    }
}

/// True if the document's root element is `QUPC_IN990002NL` in the HL7v3 namespace.
/// Reads only up to the root start tag; a DOCTYPE or malformed prolog gives `false`.
pub fn is_professional_summary(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    let mut reader = NsReader::from_reader(bytes);
    loop {
        match reader.read_resolved_event() {
            Ok((ns, Event::Start(e) | Event::Empty(e))) => {
                return e.local_name().as_ref() == ROOT.as_bytes()
                    && matches!(ns, ResolveResult::Bound(n) if n.as_ref() == V3.as_bytes());
            }
            Ok((_, Event::Decl(_) | Event::Comment(_) | Event::PI(_))) => {}
            Ok((_, Event::Text(t))) if t.iter().all(u8::is_ascii_whitespace) => {}
            _ => return false,
        }
    }
}

/// Reads a Professional Summary into a dossier.
pub fn read(bytes: &[u8]) -> Result<Dossier, SourceError> {
    let doc = Doc::parse(bytes)?;
    let root = doc.root();
    if doc.name(root) != ROOT || doc.ns(root) != V3 {
        let found = if doc.ns(root).is_empty() {
            format!("<{}> without a namespace", doc.name(root))
        } else {
            format!("<{}> in namespace {}", doc.name(root), doc.ns(root))
        };
        return Err(SourceError::invalid(
            doc.path(root),
            format!("expected the root element <{ROOT}> in namespace {V3}, found {found}"),
        ));
    }
    let mut m = Mapper::new(&doc);
    m.map_message()?;
    Ok(m.finish())
}

/// The state of one conversion: the tree, what has been produced, and the indexes that
/// let later parts of the message refer to earlier ones.
pub(crate) struct Mapper<'d> {
    pub(crate) doc: &'d Doc,
    pub(crate) t: &'static Terminology,
    pub(crate) items: Vec<Item>,
    /// Item key → position in `items` (people and organisations are updated in place).
    positions: HashMap<Key, usize>,
    keys: HashSet<Key>,
    pub(crate) outcome: Outcome,
    pub(crate) patient: Option<Patient>,
    pub(crate) author_organization: Option<Identifier>,
    /// Identifier of a person / organisation → the key of its item (deduplication).
    pub(crate) professionals: HashMap<Identifier, Key>,
    pub(crate) organizations: HashMap<Identifier, Key>,
    /// (practitioner key, organisation key) → role key.
    pub(crate) roles: HashMap<(Key, Option<Key>), Key>,
    /// (system, code) → product key.
    pub(crate) products: HashMap<(Option<String>, String), Key>,
    /// Episode id → episode key.
    pub(crate) episodes: HashMap<Identifier, Key>,
    /// Id of an act listed under an episode → (episode key, the listing `actReference/id` element).
    pub(crate) episode_acts: HashMap<Identifier, (Key, Vec<NodeId>)>,
    /// The day the message was created (`creationTime`): statuses that depend on "now"
    /// (an alert whose period has ended) are judged as of this day, so that converting
    /// the same message gives the same output whenever it is done.
    pub(crate) as_of: Option<chrono::NaiveDate>,
    /// The message's id and creation time.
    message: Option<crate::model::SourceMessage>,
}

impl<'d> Mapper<'d> {
    fn new(doc: &'d Doc) -> Self {
        Mapper {
            doc,
            t: Terminology::embedded(),
            items: Vec::new(),
            positions: HashMap::new(),
            keys: HashSet::new(),
            outcome: Outcome::new(),
            patient: None,
            author_organization: None,
            professionals: HashMap::new(),
            organizations: HashMap::new(),
            roles: HashMap::new(),
            products: HashMap::new(),
            episodes: HashMap::new(),
            episode_acts: HashMap::new(),
            as_of: doc
                .peek_kids(doc.root(), "creationTime")
                .next()
                .and_then(|n| doc.peek_attr(n, "value"))
                .and_then(|v| v.get(..8))
                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y%m%d").ok()),
            message: None,
        }
    }

    /// A key for an item: its identifier if it has one and it is still free, else its
    /// content (never its position in the message; see `source::Keys`).
    pub(crate) fn key_for(&mut self, id: Option<&Identifier>, node: NodeId, kind: &str) -> Key {
        let candidate = match id {
            Some(i) => format!("{kind}/{}|{}", i.system.as_deref().unwrap_or(""), i.value),
            None => Keys::of_content(kind, self.doc.canonical(node).as_bytes()),
        };
        if self.keys.insert(candidate.clone()) {
            return candidate;
        }
        if id.is_some() {
            self.outcome.push(
                Issue::warning(
                    IssueCode::Duplicate,
                    "this id is used twice in the message; the second use gets its own key",
                )
                .at(self.doc.path(node)),
            );
        }
        // The second use of an id, or a second element with the same content: its own content,
        // counted.
        let base = Keys::of_content(kind, self.doc.canonical(node).as_bytes());
        let mut n = 2;
        loop {
            let k = format!("{base}#{n}");
            if self.keys.insert(k.clone()) {
                return k;
            }
            n += 1;
        }
    }

    /// Claims `key` if it is still free.
    pub(crate) fn keys_insert(&mut self, key: Key) -> bool {
        self.keys.insert(key)
    }

    pub(crate) fn push(&mut self, key: Key, node: NodeId, concept: ItemConcept) {
        let source_path = self.doc.path(node);
        self.positions.insert(key.clone(), self.items.len());
        self.items.push(Item { key, source_path, concept });
    }

    pub(crate) fn item_mut(&mut self, key: &str) -> Option<&mut ItemConcept> {
        let at = *self.positions.get(key)?;
        self.items.get_mut(at).map(|i| &mut i.concept)
    }

    /// The episode an act (journal line, result) belongs to, marking the listing as used.
    pub(crate) fn episode_of(&self, ids: &[Identifier]) -> Option<Key> {
        let mut found = None;
        for i in ids {
            let Some((key, nodes)) = self.episode_acts.get(i) else {
                continue;
            };
            for n in nodes {
                // the listing (component/actReference/id) is now accounted for
                self.doc.use_node(*n);
                let _ = self.doc.attr(*n, "root");
                let _ = self.doc.attr(*n, "extension");
            }
            found.get_or_insert_with(|| key.clone());
        }
        found
    }

    fn map_message(&mut self) -> Result<(), SourceError> {
        let d = self.doc;
        let root = d.root();
        d.use_node(root);
        // The message's id and creation time identify the output Bundle.
        let identifier = self.ids(root).into_iter().next();
        let created = d.kid(root, "creationTime").and_then(|t| self.ts(t));
        if identifier.is_some() || created.is_some() {
            self.message = Some(crate::model::SourceMessage { identifier, created });
        }
        let Some(cap) = d.kid(root, "ControlActProcess") else {
            return Err(SourceError::invalid(d.path(root), "the message has no ControlActProcess"));
        };
        let subjects: Vec<NodeId> = d.peek_kids(cap, "subject").collect();
        let Some(&subject) = subjects.first() else {
            return Err(SourceError::invalid(d.path(cap), "the message has no subject (no PrimaryCareProvision)"));
        };
        d.use_node(subject);
        let Some(pcp) = d.kid(subject, "PrimaryCareProvision") else {
            return Err(SourceError::invalid(d.path(subject), "the subject has no PrimaryCareProvision"));
        };
        if subjects.len() > 1 {
            self.outcome.push(
                Issue::warning(
                    IssueCode::NotSupported,
                    "the message holds more than one PrimaryCareProvision; only the first is read (send one patient per message)",
                )
                .at(d.path(subjects[1])),
            );
        }
        self.map_provision(pcp)?;
        // The sending system's organisation, if it is not the practice already read.
        if let Some(org) = d.walk(cap, &["authorOrPerformer", "participant", "AssignedDevice", "Organization"]) {
            let key = self.organization(org);
            if self.author_organization.is_none() {
                self.author_organization = self.org_identifier(&key);
            }
        }
        Ok(())
    }

    fn map_provision(&mut self, pcp: NodeId) -> Result<(), SourceError> {
        let d = self.doc;
        // The practice and GP first: everything else refers to them.
        let mut gp = None;
        if let Some(ae) = d.walk(pcp, &["author", "AssignedEntity"]) {
            let (practitioner, role, org) = self.assigned(ae);
            if let Some(org) = &org {
                self.author_organization = self.org_identifier(org);
            }
            gp = Some((practitioner, role, org));
        }
        let Some(patient) = d.walk(pcp, &["subject", "Patient"]) else {
            return Err(SourceError::invalid(
                d.path(pcp),
                "the message has no patient (PrimaryCareProvision/subject/Patient is missing)",
            ));
        };
        let mut p = self.patient(patient)?;
        let provision_author = gp.as_ref().map(|(practitioner, role, _)| role.clone().unwrap_or(practitioner.clone()));
        if let Some((practitioner, role, org)) = gp {
            p.general_practitioner.push(crate::model::Ref::to(role.unwrap_or(practitioner)));
            p.managing_organization = org.map(crate::model::Ref::to);
        }
        self.patient = Some(p);

        // The provision's author (contextControlCode "AP", additive and propagating) is the
        // author of every act under it that conducts context and names no author of its own
        // (a contact's "OP" author overrides it for the contact's lines and prescriptions).
        let propagates = d
            .peek_kids(pcp, "author")
            .next()
            .is_some_and(|a| d.peek_attr(a, "contextControlCode").is_none_or(|c| c == "AP" || c == "OP"));
        let mut conducted: Vec<std::ops::Range<usize>> = vec![];
        let conducts = |c: NodeId| d.peek_attr(c, "contextConductionInd") != Some("false");

        // Episodes before contacts and results, because those point to episodes.
        for c in d.kids(pcp, "component7").collect::<Vec<_>>() {
            if let Some(e) = d.kid(c, "episodeOfCondition") {
                let start = self.items.len();
                self.episode(e);
                if conducts(c) {
                    conducted.push(start..self.items.len());
                }
            }
        }
        for c in d.kids(pcp, "component1").collect::<Vec<_>>() {
            if let Some(e) = d.kid(c, "encounter") {
                self.encounter(e);
            }
        }
        for c in d.kids(pcp, "component2").collect::<Vec<_>>() {
            if let Some(o) = d.kid(c, "observation") {
                let start = self.items.len();
                self.observation(o, None);
                if conducts(c) {
                    conducted.push(start..self.items.len());
                }
            }
        }
        for c in d.kids(pcp, "component3").collect::<Vec<_>>() {
            if let Some(ci) = d.kid(c, "ContraIndication") {
                let start = self.items.len();
                self.contra_indication(ci);
                if conducts(c) {
                    conducted.push(start..self.items.len());
                }
            }
        }
        for c in d.kids(pcp, "component4").collect::<Vec<_>>() {
            if let Some(oi) = d.kid(c, "ObservationIntolerance") {
                let start = self.items.len();
                self.intolerance(oi);
                if conducts(c) {
                    conducted.push(start..self.items.len());
                }
            }
        }
        for c in d.kids(pcp, "pertinentInformation").collect::<Vec<_>>() {
            if let Some(a) = d.kid(c, "pertinentAnnotationObsEvent") {
                let start = self.items.len();
                self.annotation(a);
                if conducts(c) {
                    conducted.push(start..self.items.len());
                }
            }
        }
        if let (Some(author), true) = (provision_author, propagates) {
            for range in conducted {
                for item in &mut self.items[range] {
                    conduct_author(&mut item.concept, &author);
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Dossier {
        let (paths, more) = self.doc.unmapped(MAX_UNMAPPED_ISSUES);
        for p in paths {
            let class = super::leftover::hl7v3(&p);
            let what = if p.contains("/@") {
                "attribute"
            } else if p.ends_with("/text()") {
                "text"
            } else {
                "element (with its content)"
            };
            let msg = match class {
                crate::diagnostics::Leftover::Clinical => {
                    format!("clinical {what} not mapped: it is not in the output")
                }
                crate::diagnostics::Leftover::Administrative => format!("{what} not mapped: it is not in the output"),
            };
            self.outcome.push(Issue::leftover(class, msg).at(p));
        }
        if more > 0 {
            self.outcome.push(
                Issue::leftover(
                    crate::diagnostics::Leftover::Clinical,
                    format!("{more} more unmapped parts of the message are not listed"),
                )
                .at(self.doc.path(self.doc.root())),
            );
        }
        let coverage = self.doc.coverage();
        Dossier {
            patient: self.patient,
            items: self.items,
            author_organization: self.author_organization,
            outcome: self.outcome,
            coverage,
            message: self.message,
        }
    }
}
