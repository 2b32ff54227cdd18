//! Rules for conformance resources that their R4 invariants do not express, checked
//! against the definitions the registry holds:
//!
//! - **StructureDefinition**: every element path of a constraint (snapshot and differential)
//!   is an element of the type it constrains: through backbone elements, into data types
//!   (`Patient.name.family`), into a choice by its type (`Observation.valueQuantity.value`) and
//!   through content references (`Questionnaire.item.item.linkId`).
//! - **SearchParameter**: `base` and `target` are resource types; a `composite` parameter has
//!   components and no other type has any; a resource type that the `expression` starts a
//!   path with is one of the `base` types.
//!
//! - **CapabilityStatement**: a `searchParam`'s `type` is the type of the SearchParameter its
//!   `definition` names, when that SearchParameter is known (the R4 ones are embedded, from
//!   profiles/r4/search-parameters.json; packages may add more). The other CapabilityStatement
//!   rules of R4 are invariants (cpb-1 … cpb-16), which the FHIRPath evaluator checks.
//!
//! A definition whose type is not known locally is not judged (never a false error).

use serde_json::{Map, Value};

use super::registry::{Kind, Registry, StructureDef};
use super::walker::Walker;
use crate::diagnostics::IssueCode;

impl Walker<'_> {
    pub(crate) fn conformance_rules(&mut self, rt: &str, obj: &Map<String, Value>, expr: &str) {
        match rt {
            "StructureDefinition" => self.structure_definition_paths(obj, expr),
            "SearchParameter" => self.search_parameter(obj, expr),
            "CapabilityStatement" => self.capability_search_params(obj, expr),
            _ => {}
        }
    }

    fn structure_definition_paths(&mut self, obj: &Map<String, Value>, expr: &str) {
        // A specialization or logical model defines its paths; only a constraint must use its type's.
        if obj.get("derivation").and_then(Value::as_str) != Some("constraint")
            || obj.get("kind").and_then(Value::as_str) == Some("logical")
        {
            return;
        }
        let Some(ty) = obj.get("type").and_then(Value::as_str) else { return };
        let reg = self.reg;
        if reg.base(ty).is_none() {
            return;
        }
        for part in ["snapshot", "differential"] {
            let elements = obj.get(part).and_then(|p| p.get("element")).and_then(Value::as_array);
            for (i, e) in elements.into_iter().flatten().enumerate() {
                let Some(path) = e.get("path").and_then(Value::as_str) else { continue };
                if element_path_exists(reg, ty, path) == Some(false) {
                    self.err(
                        IssueCode::Invalid,
                        &format!("{expr}.{part}.element[{i}].path"),
                        format!("the path '{path}' is not an element of {ty}"),
                    );
                }
            }
        }
    }

    fn search_parameter(&mut self, obj: &Map<String, Value>, expr: &str) {
        let reg = self.reg;
        let is_resource = |t: &str| reg.base(t).is_some_and(|sd| sd.kind == Kind::Resource);
        let mut bases = Vec::new();
        for key in ["base", "target"] {
            for (i, t) in obj.get(key).and_then(Value::as_array).into_iter().flatten().enumerate() {
                let Some(t) = t.as_str() else { continue };
                if key == "base" {
                    bases.push(t);
                }
                if !is_resource(t) {
                    self.err(
                        IssueCode::Invalid,
                        &format!("{expr}.{key}[{i}]"),
                        format!("'{t}' is not an R4 resource type, so it cannot be the {key} of a search parameter"),
                    );
                }
            }
        }
        let ty = obj.get("type").and_then(Value::as_str);
        let components = obj.get("component").and_then(Value::as_array).map_or(0, Vec::len);
        match ty {
            Some("composite") if components == 0 => {
                self.err(IssueCode::Invalid, expr, "a composite search parameter must list its components (component)")
            }
            Some(t) if t != "composite" && components > 0 => self.err(
                IssueCode::Invalid,
                &format!("{expr}.component"),
                format!("only a composite search parameter has components; this one is of type '{t}'"),
            ),
            _ => {}
        }
        // `Patient.name | Practitioner.name`: each path that starts with a resource type starts
        // with one of the bases (unless a base is the abstract Resource or DomainResource).
        if bases.iter().any(|b| matches!(*b, "Resource" | "DomainResource")) || bases.is_empty() {
            return;
        }
        let Some(expression) = obj.get("expression").and_then(Value::as_str) else { return };
        for first in path_starts(expression) {
            if is_resource(first) && !bases.contains(&first) {
                self.err(
                    IssueCode::Invalid,
                    &format!("{expr}.expression"),
                    format!(
                        "the expression starts a path at {first}, which is not a base of this search parameter ({})",
                        bases.join(", ")
                    ),
                );
                return;
            }
        }
    }
}

/// The identifiers that start a path in a FHIRPath expression: the first one, and each one
/// after a top-level `|` (inside parentheses too, but not inside function arguments).
impl Walker<'_> {
    /// `rest[i].searchParam[k]` and `rest[i].resource[j].searchParam[k]`: the stated type agrees
    /// with the type of the SearchParameter the definition names (a version suffix `|4.0.1` is
    /// ignored). A definition we do not know is not judged.
    fn capability_search_params(&mut self, obj: &Map<String, Value>, expr: &str) {
        let reg = self.reg;
        let check = |w: &mut Self, params: Option<&Value>, at: &str| {
            for (k, sp) in params.and_then(Value::as_array).into_iter().flatten().enumerate() {
                let (Some(def), Some(ty)) =
                    (sp.get("definition").and_then(Value::as_str), sp.get("type").and_then(Value::as_str))
                else {
                    continue;
                };
                let url = def.split('|').next().unwrap_or(def);
                if let Some(known) = reg.search_params.get(url) {
                    if known != ty {
                        w.err(
                            IssueCode::Invalid,
                            &format!("{at}.searchParam[{k}].type"),
                            format!("type '{ty}' does not match the type '{known}' of the search parameter {url}"),
                        );
                    }
                }
            }
        };
        for (i, rest) in obj.get("rest").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let at = format!("{expr}.rest[{i}]");
            check(self, rest.get("searchParam"), &at);
            for (j, res) in rest.get("resource").and_then(Value::as_array).into_iter().flatten().enumerate() {
                check(self, res.get("searchParam"), &format!("{at}.resource[{j}]"));
            }
        }
    }
}

fn path_starts(expression: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth_args = 0usize;
    let mut expect_start = true;
    let bytes = expression.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\'' => {
                // skip a string literal
                i += 1;
                while i < bytes.len() && bytes[i] != b'\'' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                expect_start = false;
            }
            b'(' => {
                // `(` right after an identifier is a call; otherwise a grouping
                let call = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
                if call {
                    depth_args += 1;
                    expect_start = false;
                } else if depth_args == 0 {
                    expect_start = true;
                }
            }
            b')' => {
                depth_args = depth_args.saturating_sub(usize::from(depth_args > 0 && is_call_close(expression, i)));
            }
            b'|' if depth_args == 0 => expect_start = true,
            c if c.is_ascii_alphabetic() && expect_start => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push(&expression[start..i]);
                expect_start = false;
                continue;
            }
            c if c.is_ascii_whitespace() => {}
            _ => {
                if depth_args == 0 {
                    expect_start = false;
                }
            }
        }
        i += 1;
    }
    out
}

/// Whether the `)` at `close` ends a function call's arguments (its `(` follows an identifier).
fn is_call_close(expression: &str, close: usize) -> bool {
    let bytes = expression.as_bytes();
    let mut depth = 0usize;
    let mut j = close;
    while j > 0 {
        j -= 1;
        match bytes[j] {
            b')' => depth += 1,
            b'(' if depth == 0 => return j > 0 && (bytes[j - 1].is_ascii_alphanumeric() || bytes[j - 1] == b'_'),
            b'(' => depth -= 1,
            _ => {}
        }
    }
    false
}

/// Whether `path` is an element of type `ty` (`Some(false)`: it is not), following data types,
/// choices and content references; `None` when a definition on the way is not known locally.
pub(crate) fn element_path_exists(reg: &Registry, ty: &str, path: &str) -> Option<bool> {
    let segs: Vec<&str> = path.split('.').collect();
    if segs.first() != Some(&ty) {
        return Some(false);
    }
    walk(reg, reg.base(ty)?, ty.to_string(), 0, &segs[1..], 0)
}

/// `segs` below element `cur` (whose path is `prefix`) of `sd`.
fn walk(reg: &Registry, sd: &StructureDef, prefix: String, cur: usize, segs: &[&str], depth: u32) -> Option<bool> {
    let Some((seg, rest)) = segs.split_first() else { return Some(true) };
    if depth > 64 {
        return None;
    }
    let candidate = format!("{prefix}.{seg}");
    if let Some(idx) = sd.element_by_path(&candidate) {
        return walk(reg, sd, candidate, idx, rest, depth + 1);
    }
    let el = &sd.elements[cur];
    // a choice element named by one of its types: `valueQuantity` for `value[x]`
    for c in el.children.iter().map(|&c| &sd.elements[c]).filter(|c| c.choice) {
        let Some(suffix) = seg.strip_prefix(c.name.as_str()) else { continue };
        if let Some(t) = c.types.iter().find(|t| upper_first(&t.code) == suffix) {
            return walk(reg, reg.base(&t.code)?, t.code.clone(), 0, rest, depth + 1);
        }
    }
    // a content reference: continue at the element it reuses
    if let Some(target) = &el.content_ref {
        let target = target.trim_start_matches('#');
        let idx = sd.element_by_path(target)?;
        if idx == cur {
            return Some(false);
        }
        return walk(reg, sd, target.to_string(), idx, segs, depth + 1);
    }
    if cur == 0 {
        return Some(false);
    }
    // into the element's data type(s): a choice `value[x].coding` is fine if any of its types
    // has it (a backbone element's children are in this definition, found above)
    let mut unknown = false;
    for t in el.types.iter().filter(|t| !matches!(t.code.as_str(), "BackboneElement" | "Element")) {
        match reg.base(&t.code) {
            Some(tsd) => match walk(reg, tsd, t.code.clone(), 0, segs, depth + 1) {
                Some(true) => return Some(true),
                None => unknown = true,
                Some(false) => {}
            },
            None => unknown = true,
        }
    }
    if unknown {
        None
    } else {
        Some(false)
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_starts_of_search_expressions() {
        assert_eq!(path_starts("Patient.name | Practitioner.name"), vec!["Patient", "Practitioner"]);
        assert_eq!(path_starts("(ActivityDefinition.useContext.value as CodeableConcept)"), vec!["ActivityDefinition"]);
        assert_eq!(
            path_starts("CarePlan.subject.where(resolve() is Patient) | Condition.subject"),
            vec!["CarePlan", "Condition"]
        );
        assert_eq!(path_starts("Bundle.entry[0].resource"), vec!["Bundle"]);
        assert_eq!(
            path_starts("Observation.value.as(Quantity) | Observation.value.as(SampledData)"),
            vec!["Observation", "Observation"]
        );
    }
}
