//! Base R4 structure: what any FHIR parser would reject, plus formats, cardinality and required
//! bindings of the core definitions.
//!
//! The walk follows the JSON, not the definition: every key must be an element of the R4 type at
//! that place (unknown keys are the most common defect of hand-made converters), every value must
//! have the JSON type and format of its FHIR type. Cardinality is checked per object against the
//! element's children afterwards. Nested resources (`contained`, `Bundle.entry.resource`,
//! `Parameters.parameter.resource`) are validated as resources in their own right, profiles included.

use serde_json::{Map, Value};

use super::primitive::{check_calendar, check_json_type, describe, fast_format, format_hint};
use super::registry::{Element, FastMap, Kind, StructureDef};
use super::walker::{Res, Walker};
use crate::diagnostics::IssueCode;

/// Limit of nesting, so that hostile input cannot overflow the stack.
pub(crate) const MAX_DEPTH: u32 = 96;

impl<'r> Walker<'r> {
    /// Validate `v` as a resource; `expr` is the FHIRPath of the resource itself (its type name at
    /// the top, `Bundle.entry[3].resource` inside a Bundle).
    /// `container`: the resource `v` is contained in, if it is a contained resource; `bundle`: the
    /// Bundle it (or its container) is an entry of.
    pub(crate) fn resource(
        &mut self,
        v: &Value,
        expr: Option<&str>,
        container: Option<&Value>,
        bundle: Option<&Value>,
    ) {
        let Some(obj) = v.as_object() else {
            let at = expr.unwrap_or("$this");
            self.err(IssueCode::Structure, at, format!("a resource must be a JSON object, found {}", describe(v)));
            return;
        };
        let Some(rt) = obj.get("resourceType").and_then(Value::as_str) else {
            let at = expr.unwrap_or("$this");
            self.err(
                IssueCode::Required,
                at,
                "resourceType is missing: every resource names its type, e.g. \"resourceType\": \"Patient\"",
            );
            return;
        };
        let reg = self.reg;
        let Some(sd) = reg.base(rt).filter(|sd| sd.kind == Kind::Resource && !sd.is_abstract) else {
            let at = expr.map_or_else(|| "resourceType".to_string(), |e| format!("{e}.resourceType"));
            self.err(
                IssueCode::NotSupported,
                &at,
                format!("'{rt}' is not an R4 resource type (check the spelling and the FHIR version)"),
            );
            return;
        };
        let expr = expr.map_or_else(|| rt.to_string(), str::to_string);
        if self.depth > MAX_DEPTH {
            self.err(IssueCode::TooCostly, &expr, "nested too deeply to validate");
            return;
        }
        self.depth += 1;
        self.resources.push((rt.to_string(), expr.len()));
        let saved_refs = (rt == "Bundle").then(|| self.enter_bundle(obj));
        // References are collected per Bundle: a document's must resolve inside it.
        let saved_doc = (rt == "Bundle").then(|| {
            let is_doc = obj.get("type").and_then(Value::as_str) == Some("document");
            std::mem::replace(&mut self.doc_refs, is_doc.then(Vec::new))
        });
        self.local_refs.push(Default::default());
        self.object(sd, 0, obj, v, &expr, Res { resource: v, root: container, bundle });
        if let Some(frame) = self.local_refs.pop() {
            self.contained_referenced(obj, &expr, frame, container.is_some());
        }
        self.conformance_rules(rt, obj, &expr);
        if let Some(saved) = saved_doc {
            let doc_refs = std::mem::replace(&mut self.doc_refs, saved);
            self.bundle_rules(obj, &expr, doc_refs);
        }
        if let Some(saved) = saved_refs {
            self.refs = saved;
        }
        self.resources.pop();
        self.depth -= 1;
        self.claimed_profiles(v, rt, &expr);
        if rt == "Observation" {
            self.profiles_by_content(v, &expr);
        }
    }

    /// Walk one JSON object that element `el_idx` of `sd` describes.
    fn object(
        &mut self,
        sd: &'r StructureDef,
        el_idx: usize,
        obj: &Map<String, Value>,
        v: &Value,
        expr: &str,
        res: Res<'_>,
    ) {
        let reg = self.reg;
        self.invariants(&sd.elements[el_idx], v, expr, None, res);
        let (orig_sd, orig_idx) = (sd, el_idx);
        let Some((sd, el_idx)) = self.node(sd, el_idx, None) else {
            return;
        };
        let node = &sd.elements[el_idx];
        if !(std::ptr::eq(sd, orig_sd) && el_idx == orig_idx) {
            self.invariants(node, v, expr, None, res);
        }
        if obj.is_empty() {
            self.err(
                IssueCode::Invalid,
                expr,
                "empty object: an element must have a value or children (ele-1); leave it out instead",
            );
        }
        let at_resource_root = el_idx == 0 && sd.kind == Kind::Resource;
        for (key, value) in obj {
            if at_resource_root && key == "resourceType" {
                continue;
            }
            let (name, underscore) = match key.strip_prefix('_') {
                Some(n) => (n, true),
                None => (key.as_str(), false),
            };
            let key_loc = Loc { parent: expr, key, index: None };
            let Some((ci, choice_ty)) = node.keys.get(name) else {
                let hint = if key.starts_with("value") || name.contains('[') {
                    " (a choice element takes its type as suffix, e.g. valueQuantity)"
                } else {
                    ""
                };
                self.err(
                    IssueCode::Structure,
                    &key_loc.render(),
                    format!("unknown element '{key}': {} has no such element in FHIR R4{hint}; remove it or put it in an extension", node.path),
                );
                continue;
            };
            let child = &sd.elements[*ci];
            let ty: &str = match choice_ty {
                Some(t) => t,
                None => match child.types.first() {
                    Some(t) => &t.code,
                    None => "Element",
                },
            };
            if underscore && !reg.base(ty).is_some_and(|t| t.kind == Kind::Primitive) {
                self.err(
                    IssueCode::Structure,
                    &key_loc.render(),
                    format!("'{key}' is only allowed for primitive elements; {name} is a {ty}"),
                );
                continue;
            }
            let items: &[Value] = match value {
                Value::Array(a) if child.repeats() => {
                    if a.is_empty() {
                        self.err(IssueCode::Invalid, &key_loc.render(), "empty array: leave the element out instead");
                    }
                    a
                }
                Value::Array(_) => {
                    let msg = format!(
                        "{name} has at most one value (max {}), so it must not be a JSON array",
                        child.max_label()
                    );
                    self.err(IssueCode::Structure, &key_loc.render(), msg);
                    continue;
                }
                _ if child.repeats() => {
                    let msg = format!(
                        "{name} repeats (max {}), so it must be a JSON array, even with one value",
                        child.max_label()
                    );
                    self.err(IssueCode::Structure, &key_loc.render(), msg);
                    continue;
                }
                single => std::slice::from_ref(single),
            };
            let indexed = value.is_array();
            for (i, item) in items.iter().enumerate() {
                let loc = Loc { parent: expr, key, index: indexed.then_some(i) };
                if underscore {
                    match item {
                        Value::Null if indexed => {}
                        Value::Object(o) => {
                            if let Some(element) = reg.base("Element") {
                                self.object(element, 0, o, item, &loc.render(), res);
                            }
                        }
                        other => {
                            let msg = format!(
                                "'{key}' holds the id and extensions of {name}: expected an object, found {}",
                                describe(other)
                            );
                            self.err(IssueCode::Structure, &loc.render(), msg);
                        }
                    }
                } else if item.is_null() {
                    if !indexed || obj.get(&child.twin_key).is_none() {
                        self.err(
                            IssueCode::Structure,
                            &loc.render(),
                            "null is only allowed in an array of primitives that has a matching '_' array with extensions",
                        );
                    }
                } else {
                    self.value(sd, *ci, ty, item, loc, res);
                }
            }
        }
        // Cardinality, per child of this object.
        for &ci in &node.children {
            let child = &sd.elements[ci];
            // max 1 is enforced by the array check above; only min > 0 or a finite max > 1 needs a count
            if child.min == 0 && child.max.is_none_or(|m| m == 1) {
                continue;
            }
            let count = count_children(obj, child, &node.keys, ci);
            if count < child.min as usize {
                self.err(
                    IssueCode::Required,
                    &format!("{expr}.{}", child.name),
                    format!("missing required element {} (minimum {}, found {count})", child.path, child.min),
                );
            } else if child.max.is_some_and(|m| count > m as usize) && child.max != Some(1) {
                self.err(
                    IssueCode::Structure,
                    &format!("{expr}.{}", child.name),
                    format!("{} allows at most {} values, found {count}", child.path, child.max_label()),
                );
            }
        }
        if el_idx == 0 && sd.type_name == "Extension" {
            let has_value = obj.keys().any(|k| k.starts_with("value"));
            if has_value == obj.contains_key("extension") {
                self.err(
                    IssueCode::Invariant,
                    expr,
                    "ext-1: an extension must have either extensions or a value[x], not both and not neither",
                );
            }
        }
    }

    /// The definition node whose children describe a value of element `el_idx`: the element itself
    /// (backbone elements), the element a contentReference points to, or the root of its type.
    pub(crate) fn node(
        &self,
        sd: &'r StructureDef,
        el_idx: usize,
        ty: Option<&str>,
    ) -> Option<(&'r StructureDef, usize)> {
        let el = &sd.elements[el_idx];
        if let Some(p) = &el.content_ref {
            return sd.element_by_path(p).map(|i| (sd, i));
        }
        if !el.children.is_empty() || el_idx == 0 {
            return Some((sd, el_idx));
        }
        let ty = ty.or_else(|| el.types.first().map(|t| t.code.as_str()))?;
        self.reg.base(ty).map(|t| (t, 0))
    }

    /// One value of a known element and type.
    fn value(&mut self, sd: &'r StructureDef, el_idx: usize, ty: &str, item: &Value, loc: Loc<'_>, res: Res<'_>) {
        let reg = self.reg;
        let el = &sd.elements[el_idx];
        let Some(tdef) = reg.base(ty) else {
            // FHIR type we do not know (should not happen with the R4 tables): structure unchecked.
            return;
        };
        match tdef.kind {
            // Most values are primitives: their location is only rendered when there is a problem.
            Kind::Primitive => {
                if let Some(s) = item.as_str() {
                    self.local_reference(&el.name, ty, s);
                }
                if let Some((code, msg)) = primitive_problem(tdef, ty, item) {
                    self.err(code, &loc.render(), msg);
                } else if let (true, Some(div)) = (ty == "xhtml", item.as_str()) {
                    for p in super::xhtml::check(div) {
                        match p.key {
                            Some(key) => self.err(IssueCode::Invariant, &loc.render(), format!("{key}: {}", p.message)),
                            None => self.err(IssueCode::Invalid, &loc.render(), p.message),
                        }
                    }
                } else if let Some(vs) = &el.required_binding {
                    self.binding(vs, ty, item, &loc.render());
                }
            }
            Kind::Resource => {
                let container = (el.name == "contained").then_some(res.root.unwrap_or(res.resource));
                let in_bundle = res.resource.get("resourceType").and_then(Value::as_str) == Some("Bundle");
                let bundle = if in_bundle { Some(res.resource) } else { res.bundle };
                self.resource(item, Some(&loc.render()), container, bundle)
            }
            Kind::Complex => {
                let expr = loc.render();
                let Some(o) = item.as_object() else {
                    self.err(
                        IssueCode::Structure,
                        &expr,
                        format!("a {ty} must be a JSON object, found {}", describe(item)),
                    );
                    return;
                };
                if ty == "Coding" {
                    self.coding_in_known_system(item, &expr);
                }
                if ty == "Attachment" {
                    self.attachment(o, &expr);
                }
                if ty == "Signature" {
                    self.signature(o, &expr);
                }
                if ty == "Extension" {
                    let parent = el.path.rsplit_once('.').map_or(el.path.as_str(), |(p, _)| p);
                    self.extension_definition(item, &expr, Some(parent), res);
                }
                if ty == "Reference" {
                    self.reference_target(&el.types, item, &expr);
                    if let (Some(refs), Some(r)) =
                        (self.doc_refs.as_mut(), item.get("reference").and_then(Value::as_str))
                    {
                        refs.push((expr.clone(), r.to_string()));
                    }
                }
                if let Some((nsd, nidx)) = self.node(sd, el_idx, Some(ty)) {
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        self.err(IssueCode::TooCostly, &expr, "nested too deeply to validate");
                    } else {
                        self.object(nsd, nidx, o, item, &expr, res);
                    }
                    self.depth -= 1;
                }
                if let Some(vs) = &el.required_binding {
                    self.binding(vs, ty, item, &expr);
                }
            }
        }
    }
}

/// Where a value is, rendered to a FHIRPath string only when needed (`Patient.name[0]`).
#[derive(Clone, Copy)]
pub(crate) struct Loc<'a> {
    parent: &'a str,
    key: &'a str,
    index: Option<usize>,
}

impl Loc<'_> {
    fn render(&self) -> String {
        match self.index {
            Some(i) => format!("{}.{}[{i}]", self.parent, self.key),
            None => format!("{}.{}", self.parent, self.key),
        }
    }
}

/// JSON type, format (R4 regex or its fast equivalent) and calendar of a primitive value.
fn primitive_problem(tdef: &StructureDef, ty: &str, item: &Value) -> Option<(IssueCode, String)> {
    if let Some(msg) = check_json_type(ty, item) {
        return Some((IssueCode::Structure, msg));
    }
    let s = item.as_str()?;
    let valid = match fast_format(ty, s) {
        Some(v) => Some(v),
        None => tdef.value_regex().map(|re| re.is_match(s)),
    };
    match valid {
        Some(false) => {
            let shown: String = s.chars().take(80).collect();
            return Some((IssueCode::Value, format!("'{shown}' is not a valid {ty}{}", format_hint(ty))));
        }
        None if s.is_empty() => return Some((IssueCode::Value, format!("empty {ty}: leave the element out instead"))),
        _ => {}
    }
    if let Some(max) = tdef.value_max_length() {
        // Bytes first: a string of at most `max` bytes has at most `max` characters.
        if s.len() > max && s.chars().count() > max {
            return Some((
                IssueCode::TooLong,
                format!("a {ty} may have at most {max} characters, found {}", s.chars().count()),
            ));
        }
    }
    if matches!(ty, "date" | "dateTime" | "instant") {
        if let Some(msg) = check_calendar(s) {
            return Some((IssueCode::Value, format!("'{s}' is not a valid {ty}: {msg}")));
        }
    }
    None
}

/// How many values a child has in `obj` (for primitives, the value or its `_` twin).
fn count_children(
    obj: &Map<String, Value>,
    child: &Element,
    keys: &FastMap<String, (usize, Option<String>)>,
    ci: usize,
) -> usize {
    let len = |v: Option<&Value>| match v {
        Some(Value::Array(a)) => a.len(),
        Some(Value::Null) | None => 0,
        Some(_) => 1,
    };
    if child.choice {
        return keys
            .iter()
            .filter(|(_, (i, _))| *i == ci)
            .map(|(k, _)| len(obj.get(k)).max(len(obj.get(&format!("_{k}")))))
            .sum();
    }
    let n = len(obj.get(&child.name));
    if n > 0 {
        return n;
    }
    len(obj.get(&child.twin_key))
}
