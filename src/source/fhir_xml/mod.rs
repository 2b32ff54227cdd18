//! FHIR XML (STU3 and R4) → the FHIR JSON shape, then the JSON readers.
//!
//! Nictiz publishes its examples as XML, and several GP systems and LSP bridges send FHIR
//! XML. Rather than a second set of mappings, this module turns XML into exactly the JSON
//! that the same resource would have had (the official JSON ↔ XML rules), and hands it to
//! [`super::stu3`] or [`super::r4`]. So XML and JSON twins convert to the same output, and
//! "lossless or reported" holds for XML too: an element the JSON reader does not take is
//! reported with its FHIRPath.
//!
//! The rules applied (FHIR "XML representation" and "JSON representation" pages):
//! - a primitive's `value` attribute is its value, typed by the element's type (booleans and
//!   numbers become JSON booleans and numbers); its `id` attribute and `extension` children go
//!   to the `_name` twin (arrays aligned with `null`s for repeating primitives);
//! - elements that may repeat (max ≠ 1) become arrays, even with one occurrence;
//! - `url` (Extension) and `id` attributes of complex elements become members;
//! - the narrative `div` (XHTML namespace) becomes a string holding its XML;
//! - resource containers (`contained`, `Bundle.entry.resource`, ...) hold the resource element,
//!   whose name becomes `resourceType`.
//!
//! Which elements repeat and which primitives are numbers comes from tables generated from the
//! official StructureDefinitions (`scripts/gen-fhir-xml-tables.py`; STU3 3.0.1 and R4 4.0.1).
//! An element the table does not know is kept (as a string or an object; a second occurrence
//! makes it an array), so the JSON reader reports it instead of it disappearing here.
//!
//! Safety: the same limits as the HL7v3 reader: a DOCTYPE is refused (no DTD is read: no
//! external entities, no entity expansion), only the five XML entities and character
//! references are accepted, UTF-8 only, at most [`MAX_BYTES`] and [`MAX_DEPTH`] levels;
//! every error names its line and column.

use std::collections::HashMap;
use std::sync::OnceLock;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use serde_json::{Map, Value};

use super::safe_xml::{doctype_refused, encoding_problem, line_col, utf8_text, Reader};
use super::SourceError;

/// The FHIR namespace (all versions).
pub const FHIR_NS: &str = "http://hl7.org/fhir";
const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";
pub(crate) use super::safe_xml::MAX_DEPTH;

/// The FHIR version of an XML document (which table says what repeats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Stu3,
    R4,
}

struct Elem {
    repeats: bool,
    ty: Box<str>,
}

type Table = HashMap<Box<str>, HashMap<Box<str>, Elem>>;

fn load(raw: &str) -> Table {
    // The tables are generated and embedded: a parse failure is a build defect, and the
    // tests read both tables.
    let v: HashMap<String, HashMap<String, String>> = serde_json::from_str(raw).unwrap_or_default();
    v.into_iter()
        .map(|(ty, els)| {
            let els = els
                .into_iter()
                .map(|(name, t)| {
                    let (repeats, ty) = match t.strip_prefix('*') {
                        Some(rest) => (true, rest.to_owned()),
                        None => (false, t),
                    };
                    (name.into_boxed_str(), Elem { repeats, ty: ty.into_boxed_str() })
                })
                .collect();
            (ty.into_boxed_str(), els)
        })
        .collect()
}

fn table(version: Version) -> &'static Table {
    static STU3: OnceLock<Table> = OnceLock::new();
    static R4: OnceLock<Table> = OnceLock::new();
    match version {
        Version::Stu3 => STU3.get_or_init(|| load(include_str!("stu3-elements.json"))),
        Version::R4 => R4.get_or_init(|| load(include_str!("r4-elements.json"))),
    }
}

/// Number of types the table of `version` knows (for the tests; building it at start).
pub fn table_size(version: Version) -> usize {
    table(version).len()
}

/// True if the document's root element is in the FHIR namespace. Reads only up to the
/// root start tag; a DOCTYPE or a malformed prolog gives `false`.
pub fn is_fhir_xml(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    let mut reader = NsReader::from_reader(bytes);
    loop {
        match reader.read_resolved_event() {
            Ok((ns, Event::Start(_) | Event::Empty(_))) => {
                return matches!(ns, ResolveResult::Bound(n) if n.as_ref() == FHIR_NS.as_bytes());
            }
            Ok((_, Event::Decl(_) | Event::Comment(_) | Event::PI(_))) => {}
            Ok((_, Event::Text(t))) if t.iter().all(u8::is_ascii_whitespace) => {}
            _ => return false,
        }
    }
}

/// Converts a FHIR XML document to its JSON shape, using the element table of `version`.
pub fn to_json(bytes: &[u8], version: Version) -> Result<Value, SourceError> {
    let text = utf8_text(bytes, "the document", "", syntax)?;
    Converter::new(text, table(version)).run()
}

/// Converts FHIR XML and detects its version: STU3 unless the JSON shape looks like R4
/// (nl-core/MP9 profiles, R4-only shapes), in which case it is converted again with the R4
/// table (the tables differ in which elements repeat).
pub fn to_json_detect(bytes: &[u8]) -> Result<(Value, Version), SourceError> {
    let v = to_json(bytes, Version::Stu3)?;
    if super::r4::looks_like_r4(&v) {
        Ok((to_json(bytes, Version::R4)?, Version::R4))
    } else {
        Ok((v, Version::Stu3))
    }
}

fn syntax(line: usize, column: usize, message: String) -> SourceError {
    SourceError::Syntax { format: "FHIR XML", line, column, message }
}

/// What an open element becomes.
enum Kind {
    /// A complex element or a resource: an object; `ty` names its table entry.
    Object { ty: Option<Box<str>> },
    /// A primitive: its value and its `_name` twin (id, extensions).
    Primitive { ty: Box<str>, value: Option<Value> },
    /// A resource container (`contained`, `entry.resource`): holds one resource element.
    Container,
}

struct Frame {
    /// The member name in the parent.
    name: String,
    repeats: bool,
    kind: Kind,
    obj: Map<String, Value>,
    /// For a container: the resource inside.
    resource: Option<Value>,
    /// Byte offset of the start tag (for messages).
    at: usize,
}

struct Converter<'i> {
    xml: Reader<'i>,
    table: &'static Table,
    stack: Vec<Frame>,
    root: Option<Value>,
}

impl<'i> Converter<'i> {
    fn new(text: &'i str, table: &'static Table) -> Self {
        Converter { xml: Reader::new(text, syntax), table, stack: Vec::new(), root: None }
    }

    fn run(mut self) -> Result<Value, SourceError> {
        loop {
            let before = self.xml.pos();
            let (ns, event) = match self.xml.inner.read_resolved_event() {
                Ok((ns, ev)) => (ns_str(&ns), ev),
                Err(e) => return Err(self.xml.read_error(e, before)),
            };
            match event {
                Event::Start(e) => {
                    if ns.as_deref() == Some(XHTML_NS) && e.local_name().as_ref() == b"div" {
                        let raw = self.xhtml(before)?;
                        self.add_div(raw, before)?;
                        continue;
                    }
                    let frame = self.open(&e, ns.as_deref(), before)?;
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(self.xml.err_at(
                            before,
                            format!("elements are nested more than {MAX_DEPTH} deep; this is not a FHIR resource"),
                        ));
                    }
                    self.stack.push(frame);
                }
                Event::Empty(e) => {
                    if ns.as_deref() == Some(XHTML_NS) && e.local_name().as_ref() == b"div" {
                        let raw = self.xml.text[before..self.xml.pos()].to_owned();
                        self.add_div(raw, before)?;
                        continue;
                    }
                    let frame = self.open(&e, ns.as_deref(), before)?;
                    self.close(frame)?;
                }
                Event::End(_) => {
                    if let Some(frame) = self.stack.pop() {
                        self.close(frame)?;
                    }
                }
                Event::Text(t) => {
                    if !t.iter().all(u8::is_ascii_whitespace) {
                        return Err(self.xml.err_at(
                            before,
                            "text inside a FHIR element (FHIR XML carries values in `value` attributes)",
                        ));
                    }
                }
                Event::CData(_) | Event::GeneralRef(_) => {
                    return Err(self
                        .xml
                        .err_at(before, "text inside a FHIR element (FHIR XML carries values in `value` attributes)"));
                }
                Event::DocType(_) => return Err(doctype_refused(self.xml.text, before)),
                Event::Decl(d) => {
                    if let Some(problem) = encoding_problem(&d, self.xml.text) {
                        return Err(self.xml.err_at(before, problem));
                    }
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        if let Some(open) = self.stack.last() {
            let (l, c) = line_col(self.xml.text, open.at);
            return Err(self.xml.err_at(
                self.xml.text.len(),
                format!(
                    "unexpected end of the document: element <{}> opened at line {l}, column {c} is not closed",
                    open.name
                ),
            ));
        }
        let end = self.xml.err_at(self.xml.text.len(), "the document has no root element");
        self.root.ok_or(end)
    }

    /// Reads the rest of an XHTML `div` (its start tag was at `start`) and returns its XML.
    /// Entities inside are checked like everywhere else; nothing in it is interpreted.
    fn xhtml(&mut self, start: usize) -> Result<String, SourceError> {
        let mut depth = 1usize;
        loop {
            let before = self.xml.pos();
            let ev = match self.xml.inner.read_event() {
                Ok(ev) => ev,
                Err(e) => return Err(self.xml.read_error(e, before)),
            };
            match ev {
                Event::Start(_) => {
                    depth += 1;
                    if depth + self.stack.len() > MAX_DEPTH {
                        return Err(self.xml.err_at(before, format!("elements are nested more than {MAX_DEPTH} deep")));
                    }
                }
                Event::End(_) => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(self.xml.text[start..self.xml.pos()].to_owned());
                    }
                }
                Event::GeneralRef(r) => {
                    let ok = r.is_char_ref() && matches!(r.resolve_char_ref(), Ok(Some(_)))
                        || r.decode().ok().and_then(|n| quick_xml::escape::resolve_predefined_entity(&n)).is_some();
                    if !ok {
                        return Err(self.xml.err_at(
                            before,
                            "an unknown entity in the narrative (only the five XML entities are allowed; DTDs are not read)",
                        ));
                    }
                }
                Event::DocType(_) => return Err(doctype_refused(self.xml.text, before)),
                Event::Eof => {
                    return Err(self
                        .xml
                        .err_at(self.xml.text.len(), "unexpected end of the document inside the narrative div"))
                }
                _ => {}
            }
        }
    }

    fn add_div(&mut self, raw: String, at: usize) -> Result<(), SourceError> {
        let Some(parent) = self.stack.last_mut() else {
            return Err(self.xml.err_at(at, "the root element is an XHTML div, not a FHIR resource"));
        };
        insert(&mut parent.obj, "div", false, Value::String(raw));
        Ok(())
    }

    /// Opens an element: decides what it becomes from its parent's table entry.
    fn open(&mut self, e: &BytesStart<'_>, ns: Option<&str>, at: usize) -> Result<Frame, SourceError> {
        let local = std::str::from_utf8(e.local_name().into_inner()).map_err(|x| self.xml.err_at(at, x.to_string()))?;
        if ns != Some(FHIR_NS) {
            return Err(self.xml.err_at(
                at,
                format!(
                    "element <{local}> in namespace {}: FHIR XML elements are in namespace {FHIR_NS}",
                    ns.unwrap_or("(none)")
                ),
            ));
        }
        let name = local.to_owned();
        let (repeats, kind) = match self.stack.last() {
            // The root, or the resource inside a container: a resource.
            None => (false, Kind::Object { ty: Some(name.clone().into()) }),
            Some(Frame { kind: Kind::Container, resource, .. }) => {
                if resource.is_some() {
                    return Err(self.xml.err_at(at, format!("a second resource <{local}> in one resource container")));
                }
                (false, Kind::Object { ty: Some(name.clone().into()) })
            }
            Some(parent) => {
                let elem = match &parent.kind {
                    Kind::Object { ty: Some(t) } => self.table.get(t).and_then(|els| els.get(local)),
                    Kind::Primitive { ty, .. } => self.table.get(ty).and_then(|els| els.get(local)),
                    _ => None,
                };
                match elem {
                    Some(el) if &*el.ty == "Resource" => (el.repeats, Kind::Container),
                    Some(el) if el.ty.starts_with(|c: char| c.is_ascii_lowercase()) && &*el.ty != "xhtml" => {
                        (el.repeats, Kind::Primitive { ty: el.ty.clone(), value: None })
                    }
                    Some(el) => (el.repeats, Kind::Object { ty: Some(el.ty.clone()) }),
                    // Unknown here: kept as it is, so that the reader reports it.
                    None if e.attributes().any(|a| a.is_ok_and(|a| a.key.as_ref() == b"value")) => {
                        (false, Kind::Primitive { ty: "string".into(), value: None })
                    }
                    None => (false, Kind::Object { ty: None }),
                }
            }
        };
        let mut frame = Frame { name, repeats, kind, obj: Map::new(), resource: None, at };
        if self.stack.is_empty() || matches!(self.stack.last(), Some(Frame { kind: Kind::Container, .. })) {
            frame.obj.insert("resourceType".into(), Value::String(local.to_owned()));
        }
        for a in e.attributes().with_checks(true) {
            let a = a.map_err(|err| self.xml.err_at(at, err.to_string()))?;
            let key = a.key.as_ref();
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                continue;
            }
            let (res, alocal) = self.xml.inner.resolve_attribute(a.key);
            if !matches!(res, ResolveResult::Unbound) {
                // xsi:schemaLocation and other namespaced attributes carry no FHIR data.
                continue;
            }
            let alocal =
                std::str::from_utf8(alocal.into_inner()).map_err(|x| self.xml.err_at(at, x.to_string()))?.to_owned();
            let value = a.unescape_value().map_err(|err| self.xml.err_at(at, err.to_string()))?.into_owned();
            match &mut frame.kind {
                Kind::Primitive { ty, value: v } if alocal == "value" => *v = Some(typed(ty, value)),
                _ => {
                    frame.obj.insert(alocal, Value::String(value));
                }
            }
        }
        Ok(frame)
    }

    /// Closes an element: puts its value into its parent (or makes it the root).
    fn close(&mut self, frame: Frame) -> Result<(), SourceError> {
        let Frame { name, repeats, kind, obj, resource, at } = frame;
        let Some(parent) = self.stack.last_mut() else {
            self.root = Some(Value::Object(obj));
            return Ok(());
        };
        if let Kind::Container = parent.kind {
            parent.resource = Some(Value::Object(obj));
            return Ok(());
        }
        match kind {
            Kind::Object { .. } => insert(&mut parent.obj, &name, repeats, Value::Object(obj)),
            Kind::Container => match resource {
                Some(r) => insert(&mut parent.obj, &name, repeats, r),
                None => {
                    let (l, c) = line_col(self.xml.text, at);
                    return Err(syntax(l, c, format!("<{name}> holds no resource")));
                }
            },
            Kind::Primitive { value, .. } => {
                let twin = (!obj.is_empty()).then_some(Value::Object(obj));
                insert_primitive(&mut parent.obj, &name, repeats, value, twin);
            }
        }
        Ok(())
    }
}

fn ns_str(ns: &ResolveResult<'_>) -> Option<String> {
    match ns {
        ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.as_ref()).into_owned()),
        _ => None,
    }
}

/// A primitive's value as JSON, typed by the element's FHIR type. A value that does not
/// parse as its type stays a string (the reader then leaves it and reports it).
fn typed(ty: &str, s: String) -> Value {
    match ty {
        "boolean" => match s.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(s),
        },
        "integer" | "unsignedInt" | "positiveInt" => match s.trim().parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::String(s),
        },
        "decimal" => match serde_json::from_str::<serde_json::Number>(s.trim()) {
            Ok(n) => Value::Number(n),
            Err(_) => Value::String(s),
        },
        _ => Value::String(s),
    }
}

/// Adds `v` as member `name`: appended to an array when the element repeats. A second
/// occurrence of a single element makes an array too, so nothing is lost (the reader does
/// not take an array where it expects one value, and reports it).
fn insert(obj: &mut Map<String, Value>, name: &str, repeats: bool, v: Value) {
    match obj.get_mut(name) {
        Some(Value::Array(a)) if repeats => a.push(v),
        Some(Value::Array(a)) => a.push(v),
        Some(existing) => {
            let first = std::mem::take(existing);
            *existing = Value::Array(vec![first, v]);
        }
        None if repeats => {
            obj.insert(name.to_owned(), Value::Array(vec![v]));
        }
        None => {
            obj.insert(name.to_owned(), v);
        }
    }
}

/// Adds a primitive: its value as `name`, its id/extensions as `_name`, with the arrays of
/// a repeating primitive aligned by `null`s.
fn insert_primitive(
    obj: &mut Map<String, Value>,
    name: &str,
    repeats: bool,
    value: Option<Value>,
    twin: Option<Value>,
) {
    let twin_name = format!("_{name}");
    if !repeats && !obj.contains_key(name) && !obj.contains_key(&twin_name) {
        if let Some(v) = value {
            obj.insert(name.to_owned(), v);
        }
        if let Some(t) = twin {
            obj.insert(twin_name, t);
        }
        return;
    }
    // Repeating (or a repeated single element): parallel arrays.
    let len = |o: &Map<String, Value>, k: &str| match o.get(k) {
        Some(Value::Array(a)) => a.len(),
        Some(_) => 1,
        None => 0,
    };
    let n = len(obj, name).max(len(obj, &twin_name));
    for (key, item) in [(name.to_owned(), value), (twin_name, twin)] {
        if item.is_none() && !obj.contains_key(&key) {
            continue;
        }
        let slot = obj.entry(key).or_insert_with(|| Value::Array(vec![]));
        if !slot.is_array() {
            let first = std::mem::take(slot);
            *slot = Value::Array(vec![first]);
        }
        if let Value::Array(a) = slot {
            a.resize(n, Value::Null);
            a.push(item.unwrap_or(Value::Null));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conv(xml: &str, v: Version) -> Value {
        to_json(xml.as_bytes(), v).expect("converts")
    }

    #[test]
    fn tables_load() {
        assert!(table_size(Version::Stu3) > 400);
        assert!(table_size(Version::R4) > 600);
    }

    #[test]
    fn primitives_arrays_extensions_and_narrative() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Patient xmlns="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="x">
  <id value="p1"/>
  <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Jan &amp; <b>Piet</b></p></div></text>
  <identifier><system value="http://fhir.nl/fhir/NamingSystem/bsn"/><value value="999911120"/></identifier>
  <active value="true"/>
  <name id="n1">
    <family value="Jansen"><extension url="http://e/x"><valueString value="J"/></extension></family>
    <given value="Jan"/>
    <given><extension url="http://e/y"><valueBoolean value="false"/></extension></given>
    <given value="Kees"/>
  </name>
  <multipleBirthInteger value="2"/>
</Patient>"#;
        let v = conv(xml, Version::Stu3);
        assert_eq!(
            v,
            json!({
                "resourceType": "Patient",
                "id": "p1",
                "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Jan &amp; <b>Piet</b></p></div>"},
                "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911120"}],
                "active": true,
                "name": [{
                    "id": "n1",
                    "family": "Jansen",
                    "_family": {"extension": [{"url": "http://e/x", "valueString": "J"}]},
                    "given": ["Jan", null, "Kees"],
                    "_given": [null, {"extension": [{"url": "http://e/y", "valueBoolean": false}]}, null]
                }],
                "multipleBirthInteger": 2
            })
        );
    }

    #[test]
    fn containers_and_versions() {
        let xml = r#"<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/>
<entry><fullUrl value="urn:x"/><resource><Flag><id value="f"/><category><text value="x"/></category>
<contained><Practitioner><id value="pr"/></Practitioner></contained></Flag></resource></entry></Bundle>"#;
        let stu3 = conv(xml, Version::Stu3);
        assert_eq!(stu3["entry"][0]["resource"]["category"], json!({"text": "x"}));
        assert_eq!(stu3["entry"][0]["resource"]["contained"][0]["resourceType"], json!("Practitioner"));
        let r4 = conv(xml, Version::R4);
        assert_eq!(r4["entry"][0]["resource"]["category"], json!([{"text": "x"}]));
    }

    #[test]
    fn decimals_and_unknown_elements_are_kept() {
        let xml = r#"<Observation xmlns="http://hl7.org/fhir"><valueQuantity><value value="7.25"/></valueQuantity>
<oddThing value="a"/><oddThing value="b"/><odd2><x value="1"/></odd2></Observation>"#;
        let v = conv(xml, Version::Stu3);
        assert_eq!(v["valueQuantity"]["value"], json!(7.25));
        assert_eq!(v["oddThing"], json!(["a", "b"]));
        assert_eq!(v["odd2"], json!({"x": "1"}));
    }

    #[test]
    fn unsafe_and_malformed_input_is_refused_with_a_position() {
        let doctype = "<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>\n<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"&e;\"/></Patient>";
        let e = to_json(doctype.as_bytes(), Version::R4).expect_err("refused");
        assert!(e.to_string().contains("DOCTYPE"), "{e}");
        assert!(e.to_string().contains("line 2"), "{e}");
        let entity = "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"&e;\"/></Patient>";
        assert!(to_json(entity.as_bytes(), Version::R4).is_err());
        let open = "<Patient xmlns=\"http://hl7.org/fhir\">\n  <id value=\"x\"/>";
        match to_json(open.as_bytes(), Version::R4) {
            Err(SourceError::Syntax { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
        let text = "<Patient xmlns=\"http://hl7.org/fhir\">\n<id>x</id></Patient>";
        match to_json(text.as_bytes(), Version::R4) {
            Err(SourceError::Syntax { line, column, .. }) => assert_eq!((line, column), (2, 5)),
            other => panic!("{other:?}"),
        }
        let deep = format!(
            "<Patient xmlns=\"http://hl7.org/fhir\">{}{}</Patient>",
            "<extension>".repeat(300),
            "</extension>".repeat(300)
        );
        assert!(to_json(deep.as_bytes(), Version::R4).expect_err("too deep").to_string().contains("deep"));
        let no_ns = "<Patient><id value=\"x\"/></Patient>";
        assert!(to_json(no_ns.as_bytes(), Version::R4).is_err());
        assert!(!is_fhir_xml(no_ns.as_bytes()));
        assert!(is_fhir_xml(b"\xEF\xBB\xBF<?xml version=\"1.0\"?><Patient xmlns=\"http://hl7.org/fhir\"/>"));
        assert!(to_json(b"\xff\xfe", Version::R4).is_err());
    }
}
