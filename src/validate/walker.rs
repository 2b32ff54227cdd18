//! State of one validation run and the checks shared by the structure and profile walks:
//! terminology (required bindings, codes of known code systems), reference targets and the
//! Bundle-level rules.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::registry::{Element, Inherited, Kind, Registry, TypeRef};
use super::Settings;
use crate::diagnostics::{Issue, IssueCode, Outcome, Severity};

/// The resources around a value, for `%resource` and `%rootResource` in invariants.
#[derive(Clone, Copy)]
pub(crate) struct Res<'v> {
    pub resource: &'v Value,
    /// The resource this one is contained in, if it is contained.
    pub root: Option<&'v Value>,
    /// The Bundle this resource (or the one containing it) is an entry of, for `resolve()`.
    pub bundle: Option<&'v Value>,
}

pub(crate) struct Walker<'r> {
    pub reg: &'r Registry,
    /// The issues found so far, at most `max` of them (the rest are counted in it).
    out: Outcome,
    /// What `out` holds, so that the same problem found by the base and by a profile is
    /// reported once (deduplicated as found, so duplicates never fill the limit).
    seen: HashSet<(Option<String>, IssueCode, String)>,
    /// Within a Bundle: fullUrl → resourceType, to check references to `urn:uuid:` entries.
    pub refs: HashMap<String, String>,
    /// Within a document Bundle: every `Reference.reference` met (expression, reference), to be
    /// resolved against the document's entries when the Bundle is done.
    pub doc_refs: Option<Vec<(String, String)>>,
    pub depth: u32,
    pub settings: Settings,
    /// The resources being walked, outermost first: (resource type, length of its expression),
    /// to turn an expression into the element path an extension context names.
    pub resources: Vec<(String, usize)>,
    /// Per resource being walked, outermost first: its local references, for dom-3.
    pub local_refs: Vec<LocalRefs>,
}

/// The local references (`#id`) met in one resource, contained resources included, as dom-3
/// reads them: `reference` elements and `canonical`, `uri` and `url` values; and the ids of its
/// contained resources that refer back to it (`#` as a reference or canonical).
#[derive(Default)]
pub(crate) struct LocalRefs {
    refs: HashSet<String>,
    refers_back: bool,
    back: HashSet<String>,
}

impl<'r> Walker<'r> {
    pub fn new(reg: &'r Registry, settings: Settings, max_issues: usize) -> Self {
        let mut out = Outcome::new();
        out.limit(max_issues);
        Walker {
            reg,
            out,
            seen: HashSet::new(),
            refs: HashMap::new(),
            doc_refs: None,
            depth: 0,
            settings,
            resources: Vec::new(),
            local_refs: Vec::new(),
        }
    }

    pub fn err(&mut self, code: IssueCode, expr: &str, msg: impl Into<String>) {
        self.push(Issue::error(code, msg).at(expr));
    }

    pub fn issue(&mut self, severity: Severity, code: IssueCode, expr: &str, msg: impl Into<String>) {
        self.push(Issue::new(severity, code, msg).at(expr));
    }

    fn push(&mut self, i: Issue) {
        if self.out.max.is_some_and(|m| self.out.issues.len() >= m) {
            // Beyond the limit only counted: no key kept either (memory stays bounded).
            self.out.push(i);
        } else if self.seen.insert((i.expression.clone(), i.code, i.diagnostics.clone())) {
            self.out.push(i);
        }
    }

    /// The outcome: the issues found (each once), and how many more beyond the limit.
    pub fn finish(self) -> Outcome {
        self.out
    }

    /// The invariants of an element that fail on `v`. For a profile, `(name, base)`: its
    /// invariants that the base element already has are not evaluated again.
    pub fn invariants(
        &mut self,
        el: &Element,
        v: &Value,
        expr: &str,
        profile: Option<(&str, Option<&Inherited>)>,
        res: Res<'_>,
    ) {
        // A choice element's type is in its JSON key (`effectiveDateTime` → `DateTime`).
        let ctx_type = if el.choice {
            let last = expr.rsplit('.').next().unwrap_or("");
            let last = last.split('[').next().unwrap_or(last);
            last.strip_prefix(el.name.as_str()).filter(|t| t.starts_with(|c: char| c.is_ascii_uppercase()))
        } else {
            None
        };
        for inv in &el.invariants {
            if let Some((_, Some(base))) = profile {
                if base.invariant_keys.contains(&inv.key) {
                    continue;
                }
            }
            if inv.expr.eval_typed(v, ctx_type, Some(res.resource), res.root, res.bundle) == Some(false) {
                let msg = match profile {
                    Some((name, _)) => format!("{}: {} (profile {name})", inv.key, inv.human),
                    None => format!("{}: {}", inv.key, inv.human),
                };
                self.err(IssueCode::Invariant, expr, msg);
            }
        }
    }

    /// A string value that may be a local reference, for dom-3: `name` the element's name, `ty` its
    /// FHIR type.
    pub fn local_reference(&mut self, name: &str, ty: &str, value: &str) {
        if !value.starts_with('#') {
            return;
        }
        let counts = name == "reference" || matches!(ty, "canonical" | "uri" | "url");
        if let (true, Some(frame)) = (counts, self.local_refs.last_mut()) {
            if value == "#" && (name == "reference" || ty == "canonical") {
                frame.refers_back = true;
            }
            frame.refs.insert(value.to_string());
        }
    }

    /// dom-3, when the walk of a resource is done (`frame`: what was met in it): each contained
    /// resource is referred to from elsewhere in the resource (contained resources included) or
    /// refers to its container. A contained resource's references count for its container.
    pub fn contained_referenced(&mut self, obj: &Map<String, Value>, expr: &str, frame: LocalRefs, contained: bool) {
        if contained {
            if let Some(parent) = self.local_refs.last_mut() {
                if frame.refers_back {
                    if let Some(id) = obj.get("id").and_then(Value::as_str) {
                        parent.back.insert(id.to_string());
                    }
                }
                parent.refs.extend(frame.refs);
            }
            return;
        }
        let Some(items) = obj.get("contained").and_then(Value::as_array) else { return };
        for (i, c) in items.iter().enumerate() {
            let Some(id) = c.get("id").and_then(Value::as_str) else { continue };
            if !frame.back.contains(id) && !frame.refs.contains(&format!("#{id}")) {
                self.err(
                    IssueCode::Invariant,
                    expr,
                    format!(
                        "dom-3: the contained resource '{id}' (contained[{i}]) is not referred to from elsewhere in the resource and does not refer to the resource that contains it"
                    ),
                );
            }
        }
    }

    /// A Signature's content, as far as it can be checked without keys: `sigFormat` and
    /// `targetFormat` are mime types; `data` is base64 (strictly: padding only at the end); with
    /// `sigFormat` `application/jose` it is a JWS in compact serialization whose protected header
    /// is a JSON object naming its `alg`. Whether the signature verifies is not checked.
    pub fn signature(&mut self, sig: &Map<String, Value>, expr: &str) {
        use base64::Engine;
        for key in ["sigFormat", "targetFormat"] {
            if let Some(m) = sig.get(key).and_then(Value::as_str) {
                if !is_mime_type(m) {
                    self.err(
                        IssueCode::Value,
                        &format!("{expr}.{key}"),
                        format!("'{m}' is not a mime type (type/subtype, e.g. application/jose)"),
                    );
                }
            }
        }
        let Some(data) = sig.get("data").and_then(Value::as_str) else { return };
        let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) else {
            self.err(IssueCode::Value, &format!("{expr}.data"), "the signature data is not valid base64");
            return;
        };
        let jose = sig
            .get("sigFormat")
            .and_then(Value::as_str)
            .is_some_and(|f| f.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/jose")));
        if jose && jws_alg(&bytes).is_none() {
            self.err(
                IssueCode::Value,
                &format!("{expr}.data"),
                "sigFormat is application/jose, but the data is not a JWS in compact serialization (header.payload.signature, base64url, a header with 'alg')",
            );
        }
    }

    /// An Attachment's `size` and `hash` must agree with its `data` (R4: size in bytes, hash the
    /// base64 SHA-1 of the data), as the HL7 reference validator checks.
    pub fn attachment(&mut self, att: &Map<String, Value>, expr: &str) {
        use base64::Engine;
        let Some(data) = att.get("data").and_then(Value::as_str) else { return };
        let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
        // A malformed base64Binary is reported by its own format check.
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) else { return };
        if let Some(size) = att.get("size").and_then(Value::as_u64) {
            if size != bytes.len() as u64 {
                self.err(
                    IssueCode::Value,
                    &format!("{expr}.size"),
                    format!("size {size} does not match the data, which has {} bytes", bytes.len()),
                );
            }
        }
        if let Some(hash) = att.get("hash").and_then(Value::as_str) {
            use sha1::Digest;
            let actual = base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(&bytes));
            let stated: String = hash.chars().filter(|c| !c.is_whitespace()).collect();
            if stated != actual {
                self.err(
                    IssueCode::Value,
                    &format!("{expr}.hash"),
                    format!("hash '{hash}' is not the SHA-1 of the data (base64: {actual})"),
                );
            }
        }
    }

    /// A Coding whose system is a complete code system we know must use one of its codes.
    pub fn coding_in_known_system(&mut self, coding: &Value, expr: &str) {
        let (Some(system), Some(code)) =
            (coding.get("system").and_then(Value::as_str), coding.get("code").and_then(Value::as_str))
        else {
            return;
        };
        if let Some(codes) = self.reg.codesystems.get(system) {
            if !codes.contains(code) {
                let mut known: Vec<&str> = codes.iter().map(String::as_str).collect();
                known.sort_unstable();
                self.err(
                    IssueCode::CodeInvalid,
                    &format!("{expr}.code"),
                    format!("unknown code '{code}' in code system {system}{}", list_hint(&known)),
                );
            }
        }
    }

    /// A value of an element with a required binding must come from the value set, if we can
    /// expand that value set locally (otherwise the binding is not checked).
    pub fn binding(&mut self, vs: &str, ty: &str, item: &Value, expr: &str) {
        let Some(codes) = self.reg.valuesets.get(vs) else {
            return;
        };
        let in_vs = |system: Option<&str>, code: &str| {
            codes.iter().any(|(s, c)| c == code && system.is_none_or(|sys| sys == s))
        };
        let allowed = || {
            let mut v: Vec<&str> = codes.iter().map(|(_, c)| c.as_str()).collect();
            v.sort_unstable();
            v.dedup();
            list_hint(&v)
        };
        match ty {
            "Coding" => {
                if let Some(code) = item.get("code").and_then(Value::as_str) {
                    let system = item.get("system").and_then(Value::as_str);
                    if system.is_none() || !in_vs(system, code) {
                        let msg = format!(
                            "code '{code}' ({}) is not in the required value set {vs}{}",
                            system.unwrap_or("no system"),
                            allowed()
                        );
                        self.err(IssueCode::CodeInvalid, expr, msg);
                    }
                }
            }
            "CodeableConcept" => {
                let codings: Vec<&Value> =
                    item.get("coding").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
                let coded: Vec<(Option<&str>, &str)> = codings
                    .iter()
                    .filter_map(|c| Some((c.get("system").and_then(Value::as_str), c.get("code")?.as_str()?)))
                    .collect();
                if !coded.is_empty() && !coded.iter().any(|(s, c)| s.is_some() && in_vs(*s, c)) {
                    let shown: Vec<String> = coded.iter().map(|(s, c)| format!("{}|{c}", s.unwrap_or(""))).collect();
                    let msg = format!(
                        "none of the codings ({}) is in the required value set {vs}{}",
                        shown.join(", "),
                        allowed()
                    );
                    self.err(IssueCode::CodeInvalid, expr, msg);
                }
            }
            _ => {
                if let Some(code) = item.as_str() {
                    if !in_vs(None, code) {
                        self.err(
                            IssueCode::CodeInvalid,
                            expr,
                            format!("'{code}' is not in the required value set {vs}{}", allowed()),
                        );
                    }
                }
            }
        }
    }

    /// The resource type a reference points to, when it can be told from the reference alone
    /// or from the enclosing Bundle.
    fn referenced_type(&self, reference: &str) -> Option<String> {
        if let Some(t) = self.refs.get(reference) {
            return Some(t.clone());
        }
        if reference.starts_with('#') || reference.starts_with("urn:") {
            return None;
        }
        let r = reference.split("/_history/").next().unwrap_or(reference);
        let mut segs = r.rsplit('/');
        let _id = segs.next()?;
        let ty = segs.next()?;
        self.reg.base(ty).filter(|sd| sd.kind == Kind::Resource).map(|_| ty.to_string())
    }

    /// `Reference.reference` must point to one of the target types the element's types allow.
    pub fn reference_target(&mut self, types: &[TypeRef], item: &Value, expr: &str) {
        // Cheap tests first: most references are checked against few targets, or none.
        if types.iter().all(|t| t.targets.is_empty()) {
            return;
        }
        let Some(reference) = item.get("reference").and_then(Value::as_str) else {
            return;
        };
        let Some(ty) = self.referenced_type(reference) else {
            return;
        };
        let mut allowed = Vec::new();
        for t in types.iter().flat_map(|t| t.targets.iter()) {
            match self.reg.type_of_profile(t) {
                Some("Resource") | None => return, // anything goes, or a profile we cannot resolve
                Some(a) if a == ty => return,
                Some(a) => allowed.push(a),
            }
        }
        if allowed.is_empty() {
            return;
        }
        let msg = format!(
            "reference to a {ty} ('{reference}') is not allowed here; it must point to {}",
            allowed.join(" or ")
        );
        self.err(IssueCode::Structure, &format!("{expr}.reference"), msg);
    }

    /// Remember the entries of a Bundle (for reference targets); returns the previous map.
    pub fn enter_bundle(&mut self, bundle: &Map<String, Value>) -> HashMap<String, String> {
        let mut refs = self.refs.clone();
        for e in bundle.get("entry").and_then(Value::as_array).into_iter().flatten() {
            let full = e.get("fullUrl").and_then(Value::as_str);
            let rt = e.pointer("/resource/resourceType").and_then(Value::as_str);
            let id = e.pointer("/resource/id").and_then(Value::as_str);
            if let (Some(full), Some(rt)) = (full, rt) {
                refs.insert(full.to_string(), rt.to_string());
            }
            if let (Some(rt), Some(id)) = (rt, id) {
                refs.insert(format!("{rt}/{id}"), rt.to_string());
            }
        }
        std::mem::replace(&mut self.refs, refs)
    }

    /// The Bundle invariants bdl-1..bdl-12 (hand-coded: their FHIRPath is beyond our subset),
    /// and what the HL7 reference validator checks beyond them: absolute fullUrls that agree with
    /// the entry's resource, link relations that occur once, and references in a document that
    /// resolve to exactly one of its entries. `doc_refs` are the references met in a document.
    pub fn bundle_rules(&mut self, bundle: &Map<String, Value>, expr: &str, doc_refs: Option<Vec<(String, String)>>) {
        let ty = bundle.get("type").and_then(Value::as_str).unwrap_or("");
        self.bundle_type_rules(bundle, expr, ty);
        duplicate_relations(self, bundle.get("link"), &format!("{expr}.link"));
        let needs_request = matches!(ty, "batch" | "transaction" | "history");
        if bundle.contains_key("total") && !matches!(ty, "searchset" | "history") {
            self.err(IssueCode::Invariant, &format!("{expr}.total"), "bdl-1: total only when a search or history");
        }
        let mut full_urls: HashMap<(String, Option<String>), usize> = HashMap::new();
        for (i, e) in bundle.get("entry").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let at = format!("{expr}.entry[{i}]");
            if e.get("search").is_some() && ty != "searchset" {
                self.err(IssueCode::Invariant, &format!("{at}.search"), "bdl-2: entry.search only when a search");
            }
            if needs_request && e.get("request").is_none() {
                self.err(
                    IssueCode::Invariant,
                    &at,
                    format!("bdl-3: every entry of a {ty} Bundle needs a request (method and url)"),
                );
            }
            if !needs_request && e.get("request").is_some() {
                self.err(
                    IssueCode::Invariant,
                    &format!("{at}.request"),
                    format!(
                        "bdl-3: entry.request is only allowed in batch, transaction or history Bundles, not in a {ty}"
                    ),
                );
            }
            let needs_response = matches!(ty, "batch-response" | "transaction-response" | "history");
            if needs_response != e.get("response").is_some() {
                let msg = if needs_response {
                    format!("bdl-4: every entry of a {ty} Bundle needs a response")
                } else {
                    format!("bdl-4: entry.response is only allowed in batch-response, transaction-response or history Bundles, not in a {ty}")
                };
                let at = if needs_response { at.clone() } else { format!("{at}.response") };
                self.err(IssueCode::Invariant, &at, msg);
            }
            if e.get("resource").is_none() && e.get("request").is_none() && e.get("response").is_none() {
                self.err(IssueCode::Invariant, &at, "bdl-5: an entry must have a resource, a request or a response");
            }
            duplicate_relations(self, e.get("link"), &format!("{at}.link"));
            if let Some(full) = e.get("fullUrl").and_then(Value::as_str) {
                self.full_url(e, full, &format!("{at}.fullUrl"));
                if full.contains("/_history/") {
                    self.err(
                        IssueCode::Invariant,
                        &format!("{at}.fullUrl"),
                        "bdl-8: fullUrl cannot be a version-specific reference",
                    );
                }
                let version = e.pointer("/resource/meta/versionId").and_then(Value::as_str).map(str::to_string);
                if let Some(first) = full_urls.insert((full.to_string(), version), i) {
                    self.err(
                        IssueCode::Invariant,
                        &format!("{at}.fullUrl"),
                        format!(
                            "bdl-7: fullUrl '{full}' is also used by entry[{first}]; each entry needs its own fullUrl"
                        ),
                    );
                }
            }
            if ty == "transaction" {
                self.transaction_request(e, &at);
            }
        }
        if let Some(refs) = doc_refs {
            self.document_references(bundle, refs);
        }
    }

    /// bdl-9..12: what a document and a message Bundle must have.
    fn bundle_type_rules(&mut self, bundle: &Map<String, Value>, expr: &str, ty: &str) {
        let first = bundle.get("entry").and_then(|e| e.get(0)).and_then(|e| e.pointer("/resource/resourceType"));
        let first = first.and_then(Value::as_str);
        if ty == "document" {
            let id = bundle.get("identifier");
            if !id.is_some_and(|i| i.get("system").is_some() && i.get("value").is_some()) {
                self.err(
                    IssueCode::Invariant,
                    expr,
                    "bdl-9: a document must have an identifier with a system and a value",
                );
            }
            if !bundle.get("timestamp").is_some_and(Value::is_string) {
                self.err(IssueCode::Invariant, expr, "bdl-10: a document must have a date (Bundle.timestamp)");
            }
            if first != Some("Composition") {
                self.err(
                    IssueCode::Invariant,
                    expr,
                    "bdl-11: a document must have a Composition as the first resource",
                );
            }
        }
        if ty == "message" && first != Some("MessageHeader") {
            self.err(IssueCode::Invariant, expr, "bdl-12: a message must have a MessageHeader as the first resource");
        }
    }

    /// A fullUrl is absolute; a RESTful one ends with the type and id of the entry's resource.
    fn full_url(&mut self, entry: &Value, full: &str, at: &str) {
        if !is_absolute(full) {
            self.err(
                IssueCode::Invalid,
                at,
                format!("fullUrl '{full}' must be an absolute URL (e.g. urn:uuid:… or https://server/fhir/Patient/1)"),
            );
            return;
        }
        let rt = entry.pointer("/resource/resourceType").and_then(Value::as_str);
        let id = entry.pointer("/resource/id").and_then(Value::as_str);
        if let (Some(rt), Some(id), false) = (rt, id, full.starts_with("urn:")) {
            let plain = full.split("/_history/").next().unwrap_or(full);
            if !plain.ends_with(&format!("/{rt}/{id}")) {
                self.err(
                    IssueCode::Invalid,
                    at,
                    format!("fullUrl '{full}' looks like a RESTful server URL, so it must end with the type and id of its resource (/{rt}/{id})"),
                );
            }
        }
    }

    /// In a document every reference resolves to exactly one entry (a document is self-contained);
    /// a versioned reference to the entry with that `meta.versionId`.
    fn document_references(&mut self, bundle: &Map<String, Value>, refs: Vec<(String, String)>) {
        // (fullUrl, "Type/id", versionId) per entry
        let entries: Vec<(Option<&str>, Option<String>, Option<&str>)> = bundle
            .get("entry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|e| {
                let rt = e.pointer("/resource/resourceType").and_then(Value::as_str);
                let id = e.pointer("/resource/id").and_then(Value::as_str);
                (
                    e.get("fullUrl").and_then(Value::as_str),
                    rt.zip(id).map(|(t, i)| format!("{t}/{i}")),
                    e.pointer("/resource/meta/versionId").and_then(Value::as_str),
                )
            })
            .collect();
        for (expr, reference) in refs {
            if reference.starts_with('#') {
                continue;
            }
            let (target, version) = match reference.split_once("/_history/") {
                Some((t, v)) => (t, Some(v)),
                None => (reference.as_str(), None),
            };
            let absolute = is_absolute(target);
            let matches: Vec<&(Option<&str>, Option<String>, Option<&str>)> = entries
                .iter()
                .filter(|(full, local, _)| {
                    if absolute {
                        *full == Some(target)
                    } else {
                        local.as_deref() == Some(target) || full.is_some_and(|f| f.ends_with(&format!("/{target}")))
                    }
                })
                .filter(|(_, _, v)| version.is_none() || *v == version)
                .collect();
            let at = format!("{expr}.reference");
            match (matches.len(), version) {
                (1, _) => {}
                (0, Some(v)) => self.err(
                    IssueCode::NotFound,
                    &at,
                    format!("versioned reference '{reference}' does not resolve in this document: no entry {target} with meta.versionId '{v}'"),
                ),
                (0, None) => self.err(
                    IssueCode::NotFound,
                    &at,
                    format!("reference '{reference}' does not resolve in this document: a document Bundle must contain every resource it references"),
                ),
                (n, _) => self.err(
                    IssueCode::Invalid,
                    &at,
                    format!("reference '{reference}' matches {n} entries of this document; a reference must identify one entry (give the version: {target}/_history/…)"),
                ),
            }
        }
    }

    /// In a transaction, `PUT Type/id` should address the resource it carries.
    fn transaction_request(&mut self, entry: &Value, at: &str) {
        let (Some("PUT"), Some(url)) = (
            entry.pointer("/request/method").and_then(Value::as_str),
            entry.pointer("/request/url").and_then(Value::as_str),
        ) else {
            return;
        };
        let rt = entry.pointer("/resource/resourceType").and_then(Value::as_str);
        let id = entry.pointer("/resource/id").and_then(Value::as_str);
        if let (Some(rt), Some(id)) = (rt, id) {
            let expected = format!("{rt}/{id}");
            if url.split('?').next() != Some(expected.as_str()) && !url.contains('?') {
                self.issue(
                    Severity::Warning,
                    IssueCode::BusinessRule,
                    &format!("{at}.request.url"),
                    format!("PUT {url} does not address the resource in this entry ({expected})"),
                );
            }
        }
    }
}

/// Whether a URI is absolute (has a scheme: `urn:uuid:…`, `https://…`).
pub(crate) fn is_absolute(uri: &str) -> bool {
    let Some((scheme, _)) = uri.split_once(':') else { return false };
    scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Bundle.link (or entry.link): each relation at most once.
fn duplicate_relations(w: &mut Walker<'_>, links: Option<&Value>, expr: &str) {
    let Some(links) = links.and_then(Value::as_array) else { return };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, l) in links.iter().enumerate() {
        if let Some(rel) = l.get("relation").and_then(Value::as_str) {
            if let Some(first) = seen.insert(rel, i) {
                w.err(
                    IssueCode::Invalid,
                    &format!("{expr}[{i}].relation"),
                    format!("link relation '{rel}' occurs more than once (also link[{first}]); each relation may occur once"),
                );
            }
        }
    }
}

/// " (allowed: a, b, c)" for short lists, nothing for long ones.
pub(crate) fn list_hint(codes: &[&str]) -> String {
    if codes.is_empty() || codes.len() > 12 {
        String::new()
    } else {
        format!(" (allowed: {})", codes.join(", "))
    }
}

/// A mime type as RFC 6838 names one: `type/subtype`, then optional `; name=value` parameters.
fn is_mime_type(m: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.len() <= 127
            && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
            && t.as_bytes()[0].is_ascii_alphanumeric()
    };
    let mut parts = m.split(';');
    let Some((ty, sub)) = parts.next().and_then(|p| p.trim().split_once('/')) else { return false };
    token(ty)
        && token(sub)
        && parts.all(|p| p.trim().split_once('=').is_some_and(|(n, v)| token(n.trim()) && !v.trim().is_empty()))
}

/// The `alg` of a JWS in compact serialization (`header.payload.signature`, base64url without
/// padding; the payload may be detached, i.e. empty), if `bytes` is one.
fn jws_alg(bytes: &[u8]) -> Option<String> {
    use base64::Engine;
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let mut parts = text.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || header.is_empty() || signature.is_empty() {
        return None;
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    b64.decode(signature).ok()?;
    b64.decode(payload).ok()?;
    let header: Value = serde_json::from_slice(&b64.decode(header).ok()?).ok()?;
    header.get("alg").and_then(Value::as_str).map(str::to_string)
}
