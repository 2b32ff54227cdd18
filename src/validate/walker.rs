//! State of one validation run and the checks shared by the structure and profile walks:
//! terminology (required bindings, codes of known code systems), reference targets and the
//! Bundle-level rules.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::outcome::{Issue, IssueCode, Outcome, Severity};
use super::registry::{Element, Inherited, Kind, Registry, TypeRef};

pub(crate) struct Walker<'r> {
    pub reg: &'r Registry,
    /// The issues found so far, at most `max` of them (the rest are counted in it).
    out: Outcome,
    /// What `out` holds, so that the same problem found by the base and by a profile is
    /// reported once (deduplicated as found, so duplicates never fill the limit).
    seen: HashSet<(Option<String>, IssueCode, String)>,
    /// Within a Bundle: fullUrl → resourceType, to check references to `urn:uuid:` entries.
    pub refs: HashMap<String, String>,
    pub depth: u32,
}

impl<'r> Walker<'r> {
    pub fn new(reg: &'r Registry, max_issues: usize) -> Self {
        let mut out = Outcome::new();
        out.limit(max_issues);
        Walker { reg, out, seen: HashSet::new(), refs: HashMap::new(), depth: 0 }
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
    pub fn invariants(&mut self, el: &Element, v: &Value, expr: &str, profile: Option<(&str, Option<&Inherited>)>) {
        for inv in &el.invariants {
            if let Some((_, Some(base))) = profile {
                if base.invariant_keys.contains(&inv.key) {
                    continue;
                }
            }
            if inv.expr.eval(v) == Some(false) {
                let msg = match profile {
                    Some((name, _)) => format!("{}: {} (profile {name})", inv.key, inv.human),
                    None => format!("{}: {}", inv.key, inv.human),
                };
                self.err(IssueCode::Invariant, expr, msg);
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

    /// The Bundle invariants bdl-1..bdl-8 (hand-coded: their FHIRPath is beyond our subset).
    pub fn bundle_rules(&mut self, bundle: &Map<String, Value>, expr: &str) {
        let ty = bundle.get("type").and_then(Value::as_str).unwrap_or("");
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
                        "bdl-4: entry.request is only allowed in batch, transaction or history Bundles, not in a {ty}"
                    ),
                );
            }
            if e.get("resource").is_none() && e.get("request").is_none() && e.get("response").is_none() {
                self.err(IssueCode::Invariant, &at, "bdl-5: an entry must have a resource, a request or a response");
            }
            if let Some(full) = e.get("fullUrl").and_then(Value::as_str) {
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

/// " (allowed: a, b, c)" for short lists, nothing for long ones.
pub(crate) fn list_hint(codes: &[&str]) -> String {
    if codes.is_empty() || codes.len() > 12 {
        String::new()
    } else {
        format!(" (allowed: {})", codes.join(", "))
    }
}
