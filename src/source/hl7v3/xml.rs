//! A safe, compact XML tree for HL7v3 messages, with a record of what the mapping used.
//!
//! Why a tree and not pure streaming: the Professional Summary links things across the
//! message (an episode lists the ids of journal lines that come later; the attention flag
//! of an episode is a separate observation at the end), so the mapper needs random access.
//! The tree is kept small instead: element names are interned, nodes are fixed-size
//! records linked by index (no per-node child vectors), attributes live in one shared
//! vector, and only non-blank text is stored. The tree stays under three bytes per input
//! byte (the `memory_stays_small` test); a 30 MB message reads in about half a second.
//!
//! Why "used" flags: the conversion is *lossless or reported*. Every element, attribute
//! and text the mapper reads is marked; [`Doc::unmapped`] then lists what nobody read,
//! collapsed to the highest unread element, so that a whole unknown section is one issue.
//!
//! Safety: a DOCTYPE is rejected outright (no DTD is ever read, so no external entities,
//! no entity expansion, no billion laughs); only the five predefined entities and
//! character references are accepted; input must be UTF-8; size and depth are limited.
//! Namespaces are resolved by quick-xml's `NsReader`: the mapper matches on namespace
//! URI plus local name, never on prefixes.

use std::cell::Cell;
use std::collections::HashMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use crate::source::SourceError;

/// The HL7v3 namespace.
pub(crate) const V3: &str = "urn:hl7-org:v3";
/// The XML Schema instance namespace (`xsi:type`).
pub(crate) const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
pub(crate) use crate::source::safe_xml::MAX_DEPTH;

pub(crate) type NodeId = u32;
const NONE: u32 = u32::MAX;

/// Namespace index 0 means "no namespace".
const NO_NS: u16 = 0;

#[derive(Debug)]
pub(crate) struct Node {
    name: u32,
    ns: u16,
    /// 1-based position among siblings of the same name (for paths).
    pos: u32,
    parent: u32,
    first_child: u32,
    last_child: u32,
    next_sibling: u32,
    attr_start: u32,
    attr_len: u16,
    /// Byte offset of the start tag in the input (for positions in messages).
    offset: u32,
    text: Option<Box<str>>,
    /// Bit 0: element used; bit 1: text used; bit 2: has same-name siblings.
    flags: Cell<u8>,
}

const USED: u8 = 1;
const TEXT_USED: u8 = 2;
const MULTI: u8 = 4;

#[derive(Debug)]
struct Attr {
    name: u32,
    ns: u16,
    value: Box<str>,
    used: Cell<bool>,
}

/// A parsed message.
#[derive(Debug)]
pub(crate) struct Doc {
    nodes: Vec<Node>,
    attrs: Vec<Attr>,
    names: Vec<Box<str>>,
    name_ids: HashMap<Box<str>, u32>,
    namespaces: Vec<Box<str>>,
    /// Byte offsets where lines start, for the position of a node (the tree does not
    /// borrow the input).
    line_starts: Vec<u32>,
}

/// Attribute names that only carry HL7 RIM structure (class, mood, type of a
/// participation, context conduction) or that repeat what another attribute says
/// (`codeSystemName` next to `codeSystem`); they are never "lost" by not mapping them.
/// `templateId` elements are treated alike: they declare a template and carry no data.
const STRUCTURAL_ATTRS: &[&str] = &[
    "classCode",
    "moodCode",
    "typeCode",
    "contextConductionInd",
    "contextControlCode",
    "codeSystemName",
    "codeSystemVersion",
    "mediaType",
    "determinerCode",
    "ITSVersion",
];

impl Doc {
    /// Parses `bytes` into a tree, refusing anything unsafe or malformed.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Doc, SourceError> {
        let text = crate::source::safe_xml::utf8_text(bytes, "the message", " (split the export per patient)", syntax)?;
        Parser::new(text).run()
    }

    pub(crate) fn root(&self) -> NodeId {
        0
    }

    fn n(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    /// The element's local name.
    pub(crate) fn name(&self, id: NodeId) -> &str {
        &self.names[self.n(id).name as usize]
    }

    /// The element's namespace URI ("" for none).
    pub(crate) fn ns(&self, id: NodeId) -> &str {
        &self.namespaces[usize::from(self.n(id).ns)]
    }

    /// True if the element is `local` in the HL7v3 namespace.
    pub(crate) fn is(&self, id: NodeId, local: &str) -> bool {
        self.name(id) == local && self.ns(id) == V3
    }

    /// All child elements, without marking them.
    pub(crate) fn children(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let mut next = self.n(id).first_child;
        std::iter::from_fn(move || {
            (next != NONE).then(|| {
                let cur = next;
                next = self.n(cur).next_sibling;
                cur
            })
        })
    }

    /// The HL7v3 children named `local`, without marking them.
    pub(crate) fn peek_kids<'a>(&'a self, id: NodeId, local: &'a str) -> impl Iterator<Item = NodeId> + 'a {
        self.children(id).filter(move |c| self.is(*c, local))
    }

    /// The HL7v3 children named `local`; each is marked as used.
    pub(crate) fn kids<'a>(&'a self, id: NodeId, local: &'a str) -> impl Iterator<Item = NodeId> + 'a {
        self.peek_kids(id, local).inspect(move |c| self.use_node(*c))
    }

    /// The first HL7v3 child named `local`, marked as used.
    pub(crate) fn kid(&self, id: NodeId, local: &str) -> Option<NodeId> {
        self.kids(id, local).next()
    }

    /// Follows a path of child names from `id`, marking each step.
    pub(crate) fn walk(&self, id: NodeId, path: &[&str]) -> Option<NodeId> {
        path.iter().try_fold(id, |cur, step| self.kid(cur, step))
    }

    pub(crate) fn use_node(&self, id: NodeId) {
        let n = self.n(id);
        n.flags.set(n.flags.get() | USED);
    }

    pub(crate) fn is_used(&self, id: NodeId) -> bool {
        self.n(id).flags.get() & USED != 0
    }

    fn find_attr(&self, id: NodeId, ns: &str, local: &str) -> Option<&Attr> {
        let n = self.n(id);
        let start = n.attr_start as usize;
        self.attrs[start..start + usize::from(n.attr_len)]
            .iter()
            .find(|a| &*self.names[a.name as usize] == local && &*self.namespaces[usize::from(a.ns)] == ns)
    }

    /// An unqualified attribute's value; marks the attribute (and its element) as used.
    pub(crate) fn attr(&self, id: NodeId, local: &str) -> Option<&str> {
        let a = self.find_attr(id, "", local)?;
        a.used.set(true);
        self.use_node(id);
        Some(&a.value)
    }

    /// An attribute's value without marking it.
    pub(crate) fn peek_attr(&self, id: NodeId, local: &str) -> Option<&str> {
        self.find_attr(id, "", local).map(|a| &*a.value)
    }

    /// The `xsi:type` of an element, if any (structural: never reported).
    pub(crate) fn xsi_type(&self, id: NodeId) -> Option<&str> {
        self.find_attr(id, XSI, "type").map(|a| {
            // A prefix in the value (`hl7:PQ`) is not significant for us.
            a.value.rsplit(':').next().unwrap_or(&a.value)
        })
    }

    /// The element's text (trimmed, non-empty); marks the text and the element as used.
    pub(crate) fn text(&self, id: NodeId) -> Option<&str> {
        let n = self.n(id);
        let t = n.text.as_deref()?;
        n.flags.set(n.flags.get() | USED | TEXT_USED);
        Some(t)
    }

    /// The element's text without marking it.
    pub(crate) fn peek_text(&self, id: NodeId) -> Option<&str> {
        self.n(id).text.as_deref()
    }

    /// The element's whole content (names, attributes in name order, text, children in
    /// order) as one text, for a stable key of an element that has no id. Marks nothing.
    pub(crate) fn canonical(&self, id: NodeId) -> String {
        let mut out = String::new();
        self.canonical_into(id, &mut out);
        out
    }

    fn canonical_into(&self, id: NodeId, out: &mut String) {
        let n = self.n(id);
        out.push('<');
        out.push_str(self.ns(id));
        out.push(' ');
        out.push_str(self.name(id));
        let start = n.attr_start as usize;
        let mut attrs: Vec<(&str, &str, &str)> = self.attrs[start..start + usize::from(n.attr_len)]
            .iter()
            .map(|a| (&*self.namespaces[usize::from(a.ns)], &*self.names[a.name as usize], &*a.value))
            .collect();
        attrs.sort_unstable();
        for (ns, name, value) in attrs {
            out.push_str(&format!(" {ns}:{name}={value:?}"));
        }
        out.push('>');
        if let Some(t) = &n.text {
            out.push_str(&format!("{t:?}"));
        }
        for c in self.children(id) {
            self.canonical_into(c, out);
        }
        out.push_str("</>");
    }

    /// The XPath-like location of an element, e.g.
    /// `/QUPC_IN990002NL/ControlActProcess/subject/PrimaryCareProvision/component1[3]/encounter`.
    /// Elements outside the HL7v3 namespace are written `{namespace}name`.
    pub(crate) fn path(&self, id: NodeId) -> String {
        let mut steps = Vec::new();
        let mut cur = id;
        loop {
            let n = self.n(cur);
            let name = self.name(cur);
            let ns = self.ns(cur);
            let mut step = if ns == V3 { name.to_owned() } else { format!("{{{ns}}}{name}") };
            if n.flags.get() & MULTI != 0 {
                step.push_str(&format!("[{}]", n.pos));
            }
            steps.push(step);
            if n.parent == NONE {
                break;
            }
            cur = n.parent;
        }
        steps.reverse();
        format!("/{}", steps.join("/"))
    }

    /// Line and column (1-based; the column counted in bytes) of an element's start tag.
    pub(crate) fn position(&self, id: NodeId) -> (usize, usize) {
        let off = self.n(id).offset;
        let line = self.line_starts.partition_point(|s| *s <= off);
        let start = self.line_starts.get(line.saturating_sub(1)).copied().unwrap_or(0);
        (line.max(1), (off - start) as usize + 1)
    }

    /// Everything the mapper did not read: `(path, is_element)`, collapsed to the highest
    /// unread element. Structural attributes, `xsi:*` attributes and `templateId` elements
    /// are not listed. At most `limit` entries; the second value counts the rest.
    pub(crate) fn unmapped(&self, limit: usize) -> (Vec<String>, usize) {
        let mut out = Vec::new();
        let mut more = 0usize;
        let mut push = |p: String, out: &mut Vec<String>| {
            if out.len() < limit {
                out.push(p);
            } else {
                more += 1;
            }
        };
        let mut stack = vec![self.root()];
        while let Some(id) = stack.pop() {
            if self.is(id, "templateId") {
                continue;
            }
            if !self.is_used(id) {
                push(self.path(id), &mut out);
                continue;
            }
            let n = self.n(id);
            let start = n.attr_start as usize;
            for a in &self.attrs[start..start + usize::from(n.attr_len)] {
                let ns = &*self.namespaces[usize::from(a.ns)];
                let name = &*self.names[a.name as usize];
                if a.used.get() || ns == XSI || (ns.is_empty() && STRUCTURAL_ATTRS.contains(&name)) {
                    continue;
                }
                let attr = if ns.is_empty() { name.to_owned() } else { format!("{{{ns}}}{name}") };
                push(format!("{}/@{attr}", self.path(id)), &mut out);
            }
            if n.text.is_some() && n.flags.get() & TEXT_USED == 0 {
                push(format!("{}/text()", self.path(id)), &mut out);
            }
            let kids: Vec<NodeId> = self.children(id).collect();
            stack.extend(kids.into_iter().rev());
        }
        (out, more)
    }

    /// The message's data items (non-structural attributes and texts, outside `templateId`)
    /// and how many of them the mapper did not read.
    pub(crate) fn coverage(&self) -> crate::model::Coverage {
        let mut c = crate::model::Coverage::default();
        // (node, inside an unread element)
        let mut stack = vec![(self.root(), false)];
        while let Some((id, unread_above)) = stack.pop() {
            if self.is(id, "templateId") {
                continue;
            }
            let unread = unread_above || !self.is_used(id);
            let n = self.n(id);
            let start = n.attr_start as usize;
            for a in &self.attrs[start..start + usize::from(n.attr_len)] {
                let ns = &*self.namespaces[usize::from(a.ns)];
                let name = &*self.names[a.name as usize];
                if ns == XSI || (ns.is_empty() && STRUCTURAL_ATTRS.contains(&name)) {
                    continue;
                }
                c.source_elements += 1;
                if unread || !a.used.get() {
                    c.unmapped_elements += 1;
                }
            }
            if n.text.is_some() {
                c.source_elements += 1;
                if unread || n.flags.get() & TEXT_USED == 0 {
                    c.unmapped_elements += 1;
                }
            }
            stack.extend(self.children(id).map(|k| (k, unread)));
        }
        c
    }

    /// An estimate of the heap the tree occupies, for the memory test.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.nodes.iter().map(|n| n.text.as_ref().map_or(0, |t| t.len())).sum::<usize>()
            + self.attrs.capacity() * std::mem::size_of::<Attr>()
            + self.attrs.iter().map(|a| a.value.len()).sum::<usize>()
            + self.names.iter().map(|n| n.len() * 2 + 48).sum::<usize>()
            + self.line_starts.capacity() * 4
    }
}

fn syntax(line: usize, column: usize, message: String) -> SourceError {
    SourceError::Syntax { format: "XML", line, column, message }
}

struct Frame {
    id: NodeId,
    /// (name, ns) → (count so far, first sibling with that name)
    seen: HashMap<(u32, u16), (u32, NodeId)>,
}

struct Parser<'i> {
    xml: crate::source::safe_xml::Reader<'i>,
    doc: Doc,
    stack: Vec<Frame>,
}

impl<'i> Parser<'i> {
    fn new(text: &'i str) -> Self {
        let mut line_starts = vec![0u32];
        line_starts.extend(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| (i + 1) as u32));
        let doc = Doc {
            nodes: Vec::new(),
            attrs: Vec::new(),
            names: Vec::new(),
            name_ids: HashMap::new(),
            namespaces: vec!["".into()],
            line_starts,
        };
        Parser { xml: crate::source::safe_xml::Reader::new(text, syntax), doc, stack: Vec::new() }
    }

    fn run(mut self) -> Result<Doc, SourceError> {
        loop {
            let before = self.xml.pos();
            let (ns, event) = match self.xml.inner.read_resolved_event() {
                Ok((ns, ev)) => (intern_ns(&mut self.doc.namespaces, &ns).map_err(|m| (before, m)), ev),
                Err(e) => return Err(self.xml.read_error(e, before)),
            };
            match event {
                Event::Start(e) => {
                    let ns = ns.map_err(|(o, m)| self.xml.err_at(o, m))?;
                    let id = self.element(&e, ns, before)?;
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(self.xml.err_at(
                            before,
                            format!(
                                "elements are nested more than {MAX_DEPTH} deep; this is not a Professional Summary"
                            ),
                        ));
                    }
                    self.stack.push(Frame { id, seen: HashMap::new() });
                }
                Event::Empty(e) => {
                    let ns = ns.map_err(|(o, m)| self.xml.err_at(o, m))?;
                    self.element(&e, ns, before)?;
                }
                Event::End(_) => {
                    if let Some(top) = self.stack.pop() {
                        let node = &mut self.doc.nodes[top.id as usize];
                        if let Some(t) = node.text.take() {
                            let trimmed = t.trim();
                            node.text = (!trimmed.is_empty()).then(|| trimmed.into());
                        }
                    }
                }
                Event::Text(t) => {
                    let s = t.xml10_content().map_err(|e| self.xml.err_at(before, e.to_string()))?;
                    self.append_text(&s, before)?;
                }
                Event::CData(t) => {
                    let s = t.xml10_content().map_err(|e| self.xml.err_at(before, e.to_string()))?;
                    self.append_text(&s, before)?;
                }
                Event::GeneralRef(r) => {
                    let resolved: String = if r.is_char_ref() {
                        match r.resolve_char_ref() {
                            Ok(Some(c)) => c.to_string(),
                            _ => return Err(self.xml.err_at(before, "an invalid character reference")),
                        }
                    } else {
                        let name = r.decode().map_err(|e| self.xml.err_at(before, e.to_string()))?;
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(s) => s.to_owned(),
                            None => {
                                return Err(self.xml.err_at(
                                    before,
                                    format!("unknown entity &{name}; (only the five XML entities are allowed; DTDs are not read)"),
                                ))
                            }
                        }
                    };
                    self.append_text(&resolved, before)?;
                }
                Event::DocType(_) => return Err(crate::source::safe_xml::doctype_refused(self.xml.text, before)),
                Event::Decl(d) => {
                    if let Some(problem) = crate::source::safe_xml::encoding_problem(&d, self.xml.text) {
                        return Err(self.xml.err_at(before, problem));
                    }
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        if let Some(open) = self.stack.last() {
            let name = self.doc.name(open.id).to_owned();
            let (l, c) = self.doc.position(open.id);
            return Err(self.xml.err_at(
                self.xml.text.len(),
                format!("unexpected end of the message: element <{name}> opened at line {l}, column {c} is not closed"),
            ));
        }
        if self.doc.nodes.is_empty() {
            return Err(self.xml.err_at(self.xml.text.len(), "the message has no root element"));
        }
        Ok(self.doc)
    }

    fn append_text(&mut self, s: &str, at: usize) -> Result<(), SourceError> {
        let Some(top) = self.stack.last() else {
            if s.trim().is_empty() {
                return Ok(());
            }
            return Err(self.xml.err_at(at, "text outside the root element"));
        };
        let node = &mut self.doc.nodes[top.id as usize];
        match &mut node.text {
            // Leading blanks (indentation) are dropped at once, so that containers store
            // nothing; the rest is trimmed when the element ends.
            None if s.trim().is_empty() => {}
            None => node.text = Some(s.trim_start().into()),
            Some(t) => {
                let mut joined = String::with_capacity(t.len() + s.len());
                joined.push_str(t);
                joined.push_str(s);
                *t = joined.into_boxed_str();
            }
        }
        Ok(())
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.doc.name_ids.get(name) {
            return *id;
        }
        let id = self.doc.names.len() as u32;
        self.doc.names.push(name.into());
        self.doc.name_ids.insert(name.into(), id);
        id
    }

    fn element(&mut self, e: &BytesStart<'_>, ns: u16, offset: usize) -> Result<NodeId, SourceError> {
        if self.doc.nodes.len() >= (NONE - 1) as usize {
            return Err(self.xml.err_at(offset, "too many elements"));
        }
        let local =
            std::str::from_utf8(e.local_name().into_inner()).map_err(|e| self.xml.err_at(offset, e.to_string()))?;
        let name = self.intern(local);
        let id = self.doc.nodes.len() as NodeId;
        let attr_start = self.doc.attrs.len() as u32;
        let mut attr_len: u16 = 0;
        for a in e.attributes().with_checks(true) {
            let a = a.map_err(|err| self.xml.err_at(offset, err.to_string()))?;
            let key = a.key.as_ref();
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                continue;
            }
            let (res, local) = self.xml.inner.resolve_attribute(a.key);
            let ans = intern_ns(&mut self.doc.namespaces, &res).map_err(|m| self.xml.err_at(offset, m))?;
            let local = std::str::from_utf8(local.into_inner()).map_err(|e| self.xml.err_at(offset, e.to_string()))?;
            let value = a.unescape_value().map_err(|err| self.xml.err_at(offset, err.to_string()))?;
            let aname = self.intern(local);
            attr_len =
                attr_len.checked_add(1).ok_or_else(|| self.xml.err_at(offset, "too many attributes on one element"))?;
            self.doc.attrs.push(Attr { name: aname, ns: ans, value: value.as_ref().into(), used: Cell::new(false) });
        }
        let parent = self.stack.last().map_or(NONE, |f| f.id);
        let mut pos = 1;
        let mut flags = 0;
        if let Some(frame) = self.stack.last_mut() {
            let entry = frame.seen.entry((name, ns)).or_insert((0, id));
            entry.0 += 1;
            pos = entry.0;
            if pos > 1 {
                flags = MULTI;
                let first = entry.1 as usize;
                let f = &self.doc.nodes[first].flags;
                f.set(f.get() | MULTI);
            }
        } else if !self.doc.nodes.is_empty() {
            return Err(self.xml.err_at(offset, "a second root element after the first one ended"));
        }
        self.doc.nodes.push(Node {
            name,
            ns,
            pos,
            parent,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
            attr_start,
            attr_len,
            offset: u32::try_from(offset).unwrap_or(u32::MAX),
            text: None,
            flags: Cell::new(flags),
        });
        if parent != NONE {
            let p = parent as usize;
            let last = self.doc.nodes[p].last_child;
            if last == NONE {
                self.doc.nodes[p].first_child = id;
            } else {
                self.doc.nodes[last as usize].next_sibling = id;
            }
            self.doc.nodes[p].last_child = id;
        }
        Ok(id)
    }
}

fn intern_ns(namespaces: &mut Vec<Box<str>>, res: &ResolveResult<'_>) -> Result<u16, String> {
    let uri: &[u8] = match res {
        ResolveResult::Unbound => return Ok(NO_NS),
        ResolveResult::Bound(ns) => ns.as_ref(),
        ResolveResult::Unknown(prefix) => {
            return Err(format!("namespace prefix '{}' is not declared", String::from_utf8_lossy(prefix)))
        }
    };
    let uri = std::str::from_utf8(uri).map_err(|e| e.to_string())?;
    if let Some(i) = namespaces.iter().position(|n| &**n == uri) {
        return u16::try_from(i).map_err(|_| "too many namespaces".to_owned());
    }
    if namespaces.len() >= usize::from(u16::MAX) {
        return Err("too many namespaces".into());
    }
    namespaces.push(uri.into());
    Ok((namespaces.len() - 1) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::IssueCode;

    fn syntax_at(r: Result<Doc, SourceError>) -> (usize, usize, String) {
        match r {
            Err(SourceError::Syntax { line, column, message, .. }) => (line, column, message),
            Err(other) => panic!("expected a syntax error, got {other}"),
            Ok(_) => panic!("expected a syntax error, got a tree"),
        }
    }

    #[test]
    fn paths_number_only_repeated_siblings() {
        let doc = Doc::parse(b"<r xmlns='urn:hl7-org:v3'><a/><b><c/></b><a><c/></a></r>").expect("parses");
        let r = doc.root();
        let a2 = doc.peek_kids(r, "a").nth(1).expect("second a");
        let c = doc.peek_kids(a2, "c").next().expect("c");
        assert_eq!(doc.path(c), "/r/a[2]/c");
        let b = doc.peek_kids(r, "b").next().expect("b");
        assert_eq!(doc.path(b), "/r/b");
    }

    #[test]
    fn namespaces_are_resolved_not_prefixes() {
        let doc =
            Doc::parse(b"<h:r xmlns:h='urn:hl7-org:v3' xmlns:x='urn:other'><h:a/><x:a/><a/></h:r>").expect("parses");
        let r = doc.root();
        assert!(doc.is(r, "r"));
        assert_eq!(doc.peek_kids(r, "a").count(), 1, "only the HL7v3 <a> counts");
        let (unmapped, _) = doc.unmapped(10);
        assert_eq!(unmapped, vec!["/r",]);
        doc.use_node(r);
        let (unmapped, _) = doc.unmapped(10);
        // an element in no namespace is written with empty braces
        assert_eq!(unmapped, vec!["/r/a", "/r/{urn:other}a", "/r/{}a"]);
    }

    #[test]
    fn text_keeps_entities_and_inner_space() {
        let doc =
            Doc::parse(b"<r xmlns='urn:hl7-org:v3'><t>  a &amp; b &#233;<![CDATA[ <c> ]]> </t></r>").expect("parses");
        let t = doc.peek_kids(doc.root(), "t").next().expect("t");
        assert_eq!(doc.text(t), Some("a & b \u{e9} <c>"));
    }

    #[test]
    fn unmapped_collapses_to_the_highest_unread_element() {
        let doc = Doc::parse(
            b"<r xmlns='urn:hl7-org:v3'><templateId root='1'/><k a='1' b='2' classCode='OBS'>txt<x><y/></x></k></r>",
        )
        .expect("parses");
        let r = doc.root();
        doc.use_node(r);
        let k = doc.kid(r, "k").expect("k");
        let _ = doc.attr(k, "a");
        let (unmapped, more) = doc.unmapped(10);
        assert_eq!(unmapped, vec!["/r/k/@b", "/r/k/text()", "/r/k/x"]);
        assert_eq!(more, 0);
        let (limited, more) = doc.unmapped(1);
        assert_eq!((limited.len(), more), (1, 2));
    }

    #[test]
    fn truncated_input_gives_line_and_column() {
        let (line, column, message) = syntax_at(Doc::parse(b"<r xmlns='urn:hl7-org:v3'>\n  <a>\n    <b/>\n"));
        assert_eq!(line, 4);
        assert_eq!(column, 1);
        assert!(message.contains("<a>") && message.contains("line 2, column 3"), "{message}");
        let (line, column, _) = syntax_at(Doc::parse(b"<r>\n  <a value='1"));
        assert_eq!((line, column), (2, 3));
    }

    #[test]
    fn mismatched_tags_give_the_position_of_the_end_tag() {
        let (line, column, message) = syntax_at(Doc::parse(b"<r>\n <a>\n </b>\n</r>"));
        assert_eq!((line, column), (3, 2), "{message}");
    }

    #[test]
    fn dtds_are_refused() {
        let xxe = b"<?xml version='1.0'?>\n<!DOCTYPE r [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>\n<r>&x;</r>";
        match Doc::parse(xxe) {
            Err(SourceError::Invalid(o)) => {
                assert_eq!(o.issues[0].code, IssueCode::Security);
                assert!(o.issues[0].diagnostics.contains("line 2, column 1"), "{}", o.issues[0].diagnostics);
            }
            other => panic!("expected a security error, got {other:?}"),
        }
        // An entity without a DTD is simply unknown.
        let (_, _, message) = syntax_at(Doc::parse(b"<r>&x;</r>"));
        assert!(message.contains("unknown entity"), "{message}");
    }

    #[test]
    fn nesting_is_limited() {
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        let (_, _, message) = syntax_at(Doc::parse(deep.as_bytes()));
        assert!(message.contains("nested"), "{message}");
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH - 1), "</a>".repeat(MAX_DEPTH - 1));
        assert!(Doc::parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn only_utf8_is_read() {
        let (line, column, message) = syntax_at(Doc::parse(b"<r>\n<a>caf\xe9</a></r>"));
        assert_eq!((line, column), (2, 7));
        assert!(message.contains("UTF-8"));
        let latin = b"<?xml version='1.0' encoding='ISO-8859-1'?><r>caf\xc3\xa9</r>";
        assert!(Doc::parse(latin).is_err());
        let ascii = b"<?xml version='1.0' encoding='ISO-8859-1'?><r>cafe</r>";
        assert!(Doc::parse(ascii).is_ok());
    }

    #[test]
    fn one_root_only() {
        assert!(Doc::parse(b"<r/><s/>").is_err());
        assert!(Doc::parse(b"<r/>text").is_err());
        assert!(Doc::parse(b"<r/>\n  <!-- fine -->\n").is_ok());
        assert!(Doc::parse(b"").is_err());
        assert!(Doc::parse(b"  ").is_err());
    }

    #[test]
    fn memory_stays_small() {
        let input = include_bytes!("../../../tests/fixtures/hl7v3/professional-summary.xml");
        let doc = Doc::parse(input).expect("the fixture parses");
        let ratio = doc.heap_bytes() as f64 / input.len() as f64;
        assert!(ratio < 3.0, "the tree takes {ratio:.2} bytes per input byte");
    }
}
