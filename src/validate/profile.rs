//! Profiles: what a StructureDefinition snapshot adds to the base definition.
//!
//! The walk follows the profile's element tree and gathers the matching values from the instance
//! (an element can match many values, in many parents). On each element we check what the
//! profile may tighten — cardinality, allowed types, fixed and pattern values, required bindings,
//! reference targets, invariants, and the profiles of the element's types when we know them — and
//! skip what it inherits unchanged from the base, because the structure walk reports that already.
//!
//! Slicing is resolved per parent value: each value goes to the first slice whose discriminators
//! it matches (value/pattern on a path, or the type of a choice element); a slice whose
//! discriminating value cannot be read from the snapshot (`profile`, `exists`, `resolve()`) is not
//! checked at all rather than guessed, so it never produces a false error.

use serde_json::Value;

use super::fhirpath::children;
use super::registry::{Element, ExtensionContext, Inherited, Kind, Slicing, StructureDef};
use super::UnknownExtensions;
use crate::diagnostics::{IssueCode, Severity};

const VITALSIGNS: &str = "http://hl7.org/fhir/StructureDefinition/vitalsigns";
use super::structure::MAX_DEPTH;
use super::walker::{Res, Walker};

/// One value an element of the profile applies to.
#[derive(Clone)]
pub(crate) struct Item<'v> {
    /// The value (`None` for a primitive that only has its `_name` twin).
    value: Option<&'v Value>,
    /// The `_name` twin of a primitive (its id and extensions).
    twin: Option<&'v Value>,
    expr: String,
    /// The type of a choice element's value (from the JSON key).
    ty: Option<String>,
    /// The resource the value is in.
    res: Res<'v>,
}

impl<'r> Walker<'r> {
    /// Check the profiles a resource claims in `meta.profile`.
    pub(crate) fn claimed_profiles(&mut self, resource: &Value, rt: &str, expr: &str) {
        let Some(profiles) = resource.pointer("/meta/profile").and_then(Value::as_array) else {
            return;
        };
        for p in profiles.iter().filter_map(Value::as_str) {
            self.against(resource, rt, expr, p);
        }
    }

    /// R4 applies some core profiles by content, whatever the resource claims: an Observation
    /// with a vital sign's LOINC code must meet that vital sign's profile (`bodytemp`, `bp`, ...;
    /// as the HL7 reference validator's `ObservationValidator` does), and one in the vital-signs
    /// category without such a code the generic `vitalsigns` profile.
    pub(crate) fn profiles_by_content(&mut self, resource: &Value, expr: &str) {
        let reg = self.reg;
        if reg.by_code.is_empty() {
            return;
        }
        let codings = resource.pointer("/code/coding").and_then(Value::as_array);
        let by_code = codings.into_iter().flatten().find_map(|c| {
            let (s, k) = (c.get("system")?.as_str()?, c.get("code")?.as_str()?);
            reg.by_code.get(&format!("{s}|{k}"))
        });
        let vital_category = || {
            resource.get("category").and_then(Value::as_array).into_iter().flatten().any(|cc| {
                cc.get("coding").and_then(Value::as_array).into_iter().flatten().any(|c| {
                    c.get("code").and_then(Value::as_str) == Some("vital-signs")
                        && c.get("system").and_then(Value::as_str)
                            == Some("http://terminology.hl7.org/CodeSystem/observation-category")
                })
            })
        };
        let url = match by_code {
            Some(u) => u.as_str(),
            None if vital_category() && reg.profile(VITALSIGNS).is_some() => VITALSIGNS,
            None => return,
        };
        let claimed = resource
            .pointer("/meta/profile")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|p| p.as_str() == Some(url)));
        if !claimed {
            self.against(resource, "Observation", expr, url);
        }
    }

    /// Check one resource against one profile URL.
    pub(crate) fn against(&mut self, resource: &Value, rt: &str, expr: &str, url: &str) {
        let reg = self.reg;
        match reg.profile(url) {
            None => self.issue(
                Severity::Information,
                IssueCode::NotSupported,
                expr,
                format!("profile {url} is not known locally, so only base R4 was checked; add its FHIR package (--package) to check it"),
            ),
            Some(sd) if sd.type_name != rt => self.err(
                IssueCode::Invalid,
                expr,
                format!("profile {url} is for {} resources, but this is a {rt}", sd.type_name),
            ),
            Some(sd) if !sd.is_constraint => {} // a base definition: the structure walk did it
            Some(sd) => {
                let res = Res { resource, root: None, bundle: None };
                let item = Item { value: Some(resource), twin: None, expr: expr.to_string(), ty: None, res };
                self.profile_element(sd, 0, std::slice::from_ref(&item));
            }
        }
    }

    /// An extension whose definition we know is checked against it wherever it occurs: its
    /// content, and whether it may be used here (`parent`: the definition path of the element
    /// that holds it). An extension we do not know is reported as the settings say (the HL7
    /// reference validator's default is an information hint, see [`UnknownExtensions`]).
    pub(crate) fn extension_definition(&mut self, ext: &Value, expr: &str, parent: Option<&str>, res: Res<'_>) {
        let Some(url) = ext.get("url").and_then(Value::as_str) else {
            return;
        };
        let reg = self.reg;
        match reg.profile(url).filter(|sd| sd.is_constraint && sd.type_name == "Extension") {
            Some(sd) => {
                if let Some(parent) = parent {
                    self.extension_context(sd, expr, parent);
                }
                let item = Item { value: Some(ext), twin: None, expr: expr.to_string(), ty: None, res };
                self.profile_element(sd, 0, std::slice::from_ref(&item));
            }
            // Relative URLs name the parts of a complex extension, checked by its definition.
            None if super::walker::is_absolute(url) && parent.is_some() => self.unknown_extension(url, expr),
            None => {}
        }
    }

    fn unknown_extension(&mut self, url: &str, expr: &str) {
        // The reference validator always allows these (`InstanceValidator.allowUnknownExtension`).
        let allowed = url.contains("nema.org") || url.starts_with("http://hl7.org/fhir/tools/StructureDefinition/");
        let severity = match self.settings.unknown_extensions {
            UnknownExtensions::Ignore => return,
            UnknownExtensions::Error if !allowed => Severity::Error,
            UnknownExtensions::Warning if !allowed => Severity::Warning,
            _ => Severity::Information,
        };
        self.issue(
            severity,
            IssueCode::Extension,
            expr,
            format!("unknown extension {url}: no definition of it is loaded, so its content and context were not checked (add its package with --package)"),
        );
    }

    /// `StructureDefinition.context`: the extension must be used on one of the elements (or
    /// types) it names. Only a certain mismatch is reported: where the place cannot be told
    /// (a primitive's `_name`, `fhirpath` contexts, extensions on extensions), it is accepted.
    fn extension_context(&mut self, sd: &StructureDef, expr: &str, parent: &str) {
        if sd.contexts.is_empty() {
            return;
        }
        let instance = self.instance_path(expr);
        let reg = self.reg;
        let parent_kind = reg.base(parent).map(|b| b.kind);
        let fits = |c: &ExtensionContext| -> bool {
            let e = c.expression.as_str();
            match c.kind.as_str() {
                "element" => {
                    e == parent
                        || Some(e) == instance.as_deref()
                        || e == "Element"
                        || e == "Base"
                        || (matches!(e, "Resource" | "DomainResource") && parent_kind == Some(Kind::Resource))
                        || (e == "BackboneElement" && parent.contains('.'))
                        || parent == "Element"
                        || parent == "Extension"
                }
                _ => true,
            }
        };
        if sd.contexts.iter().any(fits) {
            return;
        }
        let allowed: Vec<String> = sd.contexts.iter().map(|c| c.expression.clone()).collect();
        let here = instance.unwrap_or_else(|| parent.to_string());
        self.err(
            IssueCode::BusinessRule,
            expr,
            format!(
                "extension {} is not allowed here ({here}); its definition allows it on {}",
                sd.url,
                allowed.join(", ")
            ),
        );
    }

    /// `Patient.name[0].extension[1]` → `Patient.name` (the element path of the extension's
    /// holder), also inside Bundles and contained resources.
    fn instance_path(&self, expr: &str) -> Option<String> {
        let (rt, start) = self.resources.last()?;
        let rest = expr.get(*start..)?;
        let rest = rest.rsplit_once('.').map_or("", |(p, _)| p);
        let mut out = rt.clone();
        let mut depth = 0;
        for c in rest.chars() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ if depth == 0 => out.push(c),
                _ => {}
            }
        }
        Some(out.replace("._", "."))
    }

    fn profile_element(&mut self, sd: &'r StructureDef, idx: usize, items: &[Item<'_>]) {
        if self.depth > MAX_DEPTH {
            return;
        }
        self.depth += 1;
        let el = &sd.elements[idx];
        let base = el.inherited.as_ref();
        for item in items {
            self.element_rules(sd, el, base, item);
        }
        for &ci in &el.children {
            let child = &sd.elements[ci];
            if !child.relevant {
                continue;
            }
            if child.name == "value" && items.iter().all(|i| i.value.is_some_and(|v| !v.is_object())) {
                continue; // `<primitive>.value` is the JSON value itself
            }
            let child_base = child.inherited.as_ref();
            let mut all = Vec::new();
            for item in items {
                let found = gather(item, child);
                self.cardinality(sd, child, child_base, &found, &item.expr, None);
                if let (Some(slicing), false) = (&child.slicing, child.slices.is_empty()) {
                    self.slices(sd, child, slicing, &found, &item.expr);
                }
                all.extend(found);
            }
            if !all.is_empty() {
                self.profile_element(sd, ci, &all);
            }
        }
        self.depth -= 1;
    }

    fn cardinality(
        &mut self,
        sd: &StructureDef,
        el: &Element,
        base: Option<&Inherited>,
        found: &[Item<'_>],
        parent_expr: &str,
        slice: Option<&str>,
    ) {
        let tighter_min = base.is_none_or(|b| el.min > b.min) || slice.is_some();
        let tighter_max = base.is_none_or(|b| match (el.max, b.max) {
            (Some(p), Some(q)) => p < q,
            (Some(_), None) => true,
            _ => false,
        }) || slice.is_some();
        let too_few = tighter_min && found.len() < el.min as usize;
        let too_many = tighter_max && el.max.is_some_and(|m| found.len() > m as usize);
        if !too_few && !too_many {
            return;
        }
        let at = format!("{parent_expr}.{}", el.name);
        let what = match slice {
            Some(s) => format!("slice '{s}' of {}", el.path),
            None => el.path.clone(),
        };
        let profile = sd.url.rsplit('/').next().unwrap_or(&sd.url);
        if too_few && found.len() < el.min as usize {
            self.err(
                IssueCode::Required,
                &at,
                format!("{what}: minimum {} required by profile {profile}, found {}", el.min, found.len()),
            );
        }
        if too_many {
            let msg = if el.max == Some(0) {
                format!("{what} is not allowed by profile {profile}")
            } else {
                format!("{what}: at most {} allowed by profile {profile}, found {}", el.max_label(), found.len())
            };
            self.err(IssueCode::Structure, &at, msg);
        }
    }

    fn element_rules(&mut self, sd: &'r StructureDef, el: &Element, base: Option<&Inherited>, item: &Item<'_>) {
        let profile = sd.url.rsplit('/').next().unwrap_or(&sd.url);
        let Some(v) = item.value else { return };
        if let Some(f) = &el.fixed {
            if v != f {
                self.err(
                    IssueCode::Value,
                    &item.expr,
                    format!("must be exactly {f} (fixed by profile {profile}), found {v}"),
                );
            }
        }
        if let Some(p) = &el.pattern {
            if !matches_pattern(p, v) {
                self.err(IssueCode::Value, &item.expr, format!("must match {p} (pattern of profile {profile})"));
            }
        }
        self.invariants(el, v, &item.expr, Some((profile, base)), item.res);
        if let (Some(max), Some(s)) = (el.max_length, v.as_str()) {
            if s.chars().count() > max {
                self.err(
                    IssueCode::TooLong,
                    &item.expr,
                    format!("at most {max} characters allowed by profile {profile}, found {}", s.chars().count()),
                );
            }
        }
        let ty: Option<&str> = item.ty.as_deref().or_else(|| el.types.first().map(|t| t.code.as_str()));
        if let Some(t) = item.ty.as_deref() {
            if !el.types.is_empty() && !el.types.iter().any(|x| x.code.eq_ignore_ascii_case(t)) {
                let allowed: Vec<&str> = el.types.iter().map(|x| x.code.as_str()).collect();
                self.err(
                    IssueCode::Structure,
                    &item.expr,
                    format!("type {t} is not allowed here by profile {profile} (allowed: {})", allowed.join(", ")),
                );
            }
        }
        let Some(ty) = ty else { return };
        if let Some(vs) = &el.required_binding {
            if base.is_none_or(|b| b.binding.as_ref() != Some(vs)) {
                self.binding(vs, ty, v, &item.expr);
            }
        }
        if ty == "Reference" {
            self.reference_target(&el.types, v, &item.expr);
        }
        // The profiles of the element's type (extension definitions, datatype profiles).
        let reg = self.reg;
        for t in el.types.iter().filter(|t| t.code.eq_ignore_ascii_case(ty)) {
            for p in &t.profiles {
                if let Some(psd) = reg.profile(p).filter(|psd| psd.is_constraint && !std::ptr::eq(*psd, sd)) {
                    let sub =
                        Item { value: item.value, twin: item.twin, expr: item.expr.clone(), ty: None, res: item.res };
                    self.profile_element(psd, 0, std::slice::from_ref(&sub));
                }
            }
        }
    }

    fn slices(&mut self, sd: &'r StructureDef, el: &Element, slicing: &Slicing, found: &[Item<'_>], parent_expr: &str) {
        let mut matched: Vec<Vec<Item<'_>>> = vec![Vec::new(); el.slices.len()];
        let checkable: Vec<bool> = el
            .slices
            .iter()
            .map(|&s| slicing.discriminators.iter().all(|d| discriminating_value(sd, s, &d.kind, &d.path).is_some()))
            .collect();
        for item in found {
            let mut hit = false;
            for (k, &s) in el.slices.iter().enumerate() {
                if checkable[k] && slice_matches(sd, s, slicing, item) {
                    matched[k].push(item.clone());
                    hit = true;
                    break;
                }
            }
            if !hit {
                self.near_miss(sd, el, slicing, &checkable, item);
            }
            if !hit && slicing.closed && checkable.iter().all(|c| *c) {
                let names: Vec<&str> = el.slices.iter().filter_map(|&s| sd.elements[s].slice_name.as_deref()).collect();
                self.err(
                    IssueCode::Structure,
                    &item.expr,
                    format!(
                        "matches none of the slices of {} ({}), and the slicing is closed",
                        el.path,
                        names.join(", ")
                    ),
                );
            }
        }
        for (k, &s) in el.slices.iter().enumerate() {
            if !checkable[k] {
                continue;
            }
            let slice = &sd.elements[s];
            self.cardinality(sd, slice, None, &matched[k], parent_expr, slice.slice_name.as_deref());
            if !matched[k].is_empty() {
                self.profile_element(sd, s, &matched[k]);
            }
        }
    }
}

impl Walker<'_> {
    /// A value that fits no slice but whose discriminating value is almost that of a slice
    /// (`.../NamingSystem/BSN` for `.../bsn`, a trailing slash, http for https) is almost certainly a
    /// typo that makes the slice's rules silently not apply: warn, since the profile allows it.
    fn near_miss(&mut self, sd: &StructureDef, el: &Element, slicing: &Slicing, checkable: &[bool], item: &Item<'_>) {
        let Some(v) = item.value else { return };
        for (k, &s) in el.slices.iter().enumerate() {
            if !checkable[k] {
                continue;
            }
            for d in slicing.discriminators.iter().filter(|d| d.path != "$this" || d.kind != "type") {
                let expected = match discriminating_value(sd, s, &d.kind, &d.path) {
                    Some((Value::String(e), _)) => e.clone(),
                    Some((Value::Object(o), _)) => match o.get("system") {
                        Some(Value::String(e)) => e.clone(),
                        _ => continue,
                    },
                    _ => continue,
                };
                let (path, expr_suffix) = if d.path == "$this" {
                    ("system", "system".to_string())
                } else {
                    (d.path.as_str(), d.path.clone())
                };
                let mut found = Vec::new();
                children(v, path, &mut found);
                for actual in found.iter().filter_map(|x| x.as_str()) {
                    if actual != expected && similar(actual, &expected) {
                        let slice = sd.elements[s].slice_name.as_deref().unwrap_or("?");
                        self.issue(
                            Severity::Warning,
                            IssueCode::Value,
                            &format!("{}.{expr_suffix}", item.expr),
                            format!(
                                "'{actual}' looks like a misspelling of '{expected}', the {path} of slice '{slice}' of {}; as written, the value is not recognised as {slice} and the slice's rules do not apply",
                                el.path
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// Equal after normalising case, scheme and trailing slashes, or within two edits.
/// Called for every value that fits no slice, against every slice: the cheap answers (equal,
/// or lengths too far apart) are found without allocating.
fn similar(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> &str {
        let s = s.trim().trim_end_matches('/');
        s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s)
    }
    let (a, b) = (norm(a), norm(b));
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    // Lowercasing keeps the byte length.
    if a.len().min(b.len()) < 12 || a.len().abs_diff(b.len()) > 2 {
        return false;
    }
    // Levenshtein distance, bounded. A common prefix and suffix do not change the distance,
    // and near misses of canonical URLs differ in a few characters: the table is only built
    // for what lies between them (usually a handful of characters, not the whole URL).
    let same = |x: &char, y: &char| x.eq_ignore_ascii_case(y);
    let prefix: usize = a.chars().zip(b.chars()).take_while(|(x, y)| same(x, y)).map(|(x, _)| x.len_utf8()).sum();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    let suffix: usize =
        a.chars().rev().zip(b.chars().rev()).take_while(|(x, y)| same(x, y)).map(|(x, _)| x.len_utf8()).sum();
    let (a, b) = (&a[..a.len() - suffix], &b[..b.len() - suffix]);
    let lower = |s: &str| s.chars().map(|c| c.to_ascii_lowercase()).collect::<Vec<char>>();
    let (a, b) = (lower(a), lower(b));
    if a.len().min(b.len()) == 0 {
        return a.len().max(b.len()) <= 2;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        // The distance never falls below a row's least value.
        if cur.iter().min().is_some_and(|&m| m > 2) {
            return false;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()] <= 2
}

/// The values of element `el` in one parent value.
fn gather<'v>(parent: &Item<'v>, el: &Element) -> Vec<Item<'v>> {
    let mut out = Vec::new();
    // A primitive's id and extensions live in its `_name` twin.
    let Some(obj) = parent.value.filter(|v| v.is_object()).or(parent.twin).and_then(Value::as_object) else {
        return out;
    };
    let mut add = |key: &str, twin_key: Option<&str>, ty: Option<String>| {
        let value = obj.get(key);
        let twin = match twin_key {
            Some(t) => obj.get(t),
            None => obj.get(&format!("_{key}")),
        };
        // The expression is rendered only for elements that are present.
        let base = || format!("{}.{key}", parent.expr);
        match (value, twin) {
            (Some(Value::Array(a)), t) => {
                let base = base();
                for (i, x) in a.iter().enumerate() {
                    let tw = t.and_then(|t| t.get(i)).filter(|x| !x.is_null());
                    if !x.is_null() || tw.is_some() {
                        out.push(Item {
                            value: (!x.is_null()).then_some(x),
                            twin: tw,
                            expr: format!("{base}[{i}]"),
                            ty: ty.clone(),
                            res: parent.res,
                        });
                    }
                }
            }
            (None, Some(Value::Array(t))) => {
                let base = base();
                for (i, tw) in t.iter().enumerate().filter(|(_, x)| !x.is_null()) {
                    out.push(Item {
                        value: None,
                        twin: Some(tw),
                        expr: format!("{base}[{i}]"),
                        ty: ty.clone(),
                        res: parent.res,
                    });
                }
            }
            (None, None) | (Some(Value::Null), None) => {}
            (v, tw) => {
                out.push(Item { value: v.filter(|x| !x.is_null()), twin: tw, expr: base(), ty, res: parent.res })
            }
        }
    };
    if el.choice {
        for key in obj.keys() {
            if let Some(suffix) = key.strip_prefix(el.name.as_str()) {
                if suffix.starts_with(|c: char| c.is_ascii_uppercase()) {
                    let mut ty = suffix.to_string();
                    // valueString → string, valueQuantity → Quantity: primitives are lower-case
                    if let Some(first) = ty.get(0..1) {
                        let lower = format!("{}{}", first.to_lowercase(), &ty[1..]);
                        if super::primitive::is_primitive(&lower) {
                            ty = lower;
                        }
                    }
                    add(key, None, Some(ty));
                }
            }
        }
    } else {
        add(&el.name, Some(&el.twin_key), None);
    }
    out
}

/// The value a slice is recognised by, for one discriminator.
fn discriminating_value<'a>(sd: &'a StructureDef, slice: usize, kind: &str, path: &str) -> Option<(&'a Value, bool)> {
    let s = &sd.elements[slice];
    match kind {
        "type" => (path == "$this" && !s.types.is_empty()).then_some((&Value::Null, true)),
        "value" | "pattern" => {
            if path == "$this" {
                return s.fixed.as_ref().map(|f| (f, true)).or_else(|| s.pattern.as_ref().map(|p| (p, false)));
            }
            // Follow the path through the slice's children.
            let mut cur = slice;
            let mut found = true;
            for seg in path.split('.') {
                match sd.elements[cur].children.iter().find(|&&c| sd.elements[c].name == seg) {
                    Some(&c) => cur = c,
                    None => {
                        found = false;
                        break;
                    }
                }
            }
            if found {
                let e = &sd.elements[cur];
                if let Some(v) = e.fixed.as_ref().map(|f| (f, true)).or_else(|| e.pattern.as_ref().map(|p| (p, false)))
                {
                    return Some(v);
                }
            }
            // Or inside the slice's own pattern (`patternIdentifier: {system: ...}` for path `system`).
            let mut pv = s.pattern.as_ref().or(s.fixed.as_ref());
            for seg in path.split('.') {
                pv = pv.and_then(|v| match v {
                    Value::Array(a) => a.first().and_then(|x| x.get(seg)),
                    other => other.get(seg),
                });
            }
            pv.map(|v| (v, false))
        }
        _ => None,
    }
}

fn slice_matches(sd: &StructureDef, slice: usize, slicing: &Slicing, item: &Item<'_>) -> bool {
    let s = &sd.elements[slice];
    slicing.discriminators.iter().all(|d| {
        if d.kind == "type" {
            return item.ty.as_deref().is_some_and(|t| s.types.iter().any(|x| x.code.eq_ignore_ascii_case(t)));
        }
        let Some((expected, exact)) = discriminating_value(sd, slice, &d.kind, &d.path) else {
            return false;
        };
        let Some(v) = item.value else { return false };
        let mut cur = vec![v];
        if d.path != "$this" {
            for seg in d.path.split('.') {
                let mut next = Vec::new();
                for x in cur {
                    children(x, seg, &mut next);
                }
                cur = next;
            }
        }
        cur.iter().any(|x| if exact { *x == expected } else { matches_pattern(expected, x) })
    })
}

/// FHIR pattern semantics: every property of the pattern is present in the value with a matching
/// value; each item of a pattern array matches some item of the value's array.
pub(crate) fn matches_pattern(pattern: &Value, v: &Value) -> bool {
    match (pattern, v) {
        (Value::Object(p), Value::Object(o)) => {
            p.iter().all(|(k, pv)| o.get(k).is_some_and(|ov| matches_pattern(pv, ov)))
        }
        (Value::Array(p), Value::Array(o)) => p.iter().all(|pv| o.iter().any(|ov| matches_pattern(pv, ov))),
        (Value::Object(_), Value::Array(o)) => o.iter().any(|ov| matches_pattern(pattern, ov)),
        (p, o) => p == o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pattern_semantics() {
        let p = json!({"coding": [{"system": "http://loinc.org", "code": "8480-6"}]});
        let v = json!({"coding": [{"system": "x", "code": "y"}, {"system": "http://loinc.org", "code": "8480-6", "display": "Systolic"}], "text": "t"});
        assert!(matches_pattern(&p, &v));
        assert!(!matches_pattern(&p, &json!({"coding": [{"system": "http://loinc.org", "code": "8462-4"}]})));
    }

    #[test]
    fn near_misses() {
        assert!(similar("http://fhir.nl/fhir/NamingSystem/BSN", "http://fhir.nl/fhir/NamingSystem/bsn"));
        assert!(similar("https://fhir.nl/fhir/NamingSystem/bsn/", "http://fhir.nl/fhir/NamingSystem/bsn"));
        assert!(similar("http://fhir.nl/fhir/NamingSystem/bns", "http://fhir.nl/fhir/NamingSystem/bsn"));
        assert!(!similar("http://fhir.nl/fhir/NamingSystem/agb-z", "http://fhir.nl/fhir/NamingSystem/big"));
        // Two edits are near, three are not (also when the lengths are equal).
        assert!(similar("http://example.org/fhir/abcdef", "http://example.org/fhir/abxyef"));
        assert!(similar("http://example.org/fhir/abcdef", "https://Example.org/fhir/abcdefgh"));
        assert!(!similar("http://example.org/fhir/abcdef", "http://example.org/fhir/axyzef"));
        assert!(!similar("http://example.org/fhir/abcdef", "http://example.org/fhir/abcdefghi"));
        assert!(!similar("http://fhir.nl/fhir/NamingSystem/uzi-nr-pers", "http://fhir.nl/fhir/NamingSystem/ura"));
        assert!(similar("http://example.org/fhir/ääbcdef", "http://example.org/fhir/äbcdef"));
        assert!(similar("http://example.org/fhir/aaaaaa", "http://example.org/fhir/aaaa"));
        assert!(!similar("http://example.org/fhir/aaaaaa", "http://example.org/fhir/aaa"));
    }

    /// Levenshtein distance over the whole (lowercased) strings, as the near-miss check
    /// computed it before it left out the common prefix and suffix.
    fn full_distance(a: &str, b: &str) -> usize {
        let (a, b): (Vec<char>, Vec<char>) =
            (a.chars().map(|c| c.to_ascii_lowercase()).collect(), b.chars().map(|c| c.to_ascii_lowercase()).collect());
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for i in 1..=a.len() {
            let mut cur = vec![i; b.len() + 1];
            for j in 1..=b.len() {
                cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + usize::from(a[i - 1] != b[j - 1]));
            }
            prev = cur;
        }
        prev[b.len()]
    }

    proptest::proptest! {
        /// Leaving out the common prefix and suffix never changes the answer.
        #[test]
        fn near_miss_agrees_with_the_whole_distance(
            stem in "http://[a-z]{3,8}\\.org/fhir/",
            a in "[a-cA-Cä/]{0,10}",
            b in "[a-cA-Cä/]{0,10}",
            tail in "[a-c]{0,4}",
        ) {
            let (x, y) = (format!("{stem}{a}{tail}"), format!("{stem}{b}{tail}"));
            let norm = |s: &str| s.trim().trim_end_matches('/').trim_start_matches("http://").to_owned();
            let (nx, ny) = (norm(&x), norm(&y));
            let expected = nx.eq_ignore_ascii_case(&ny)
                || (nx.len().min(ny.len()) >= 12 && nx.len().abs_diff(ny.len()) <= 2 && full_distance(&nx, &ny) <= 2);
            proptest::prop_assert_eq!(similar(&x, &y), expected, "{} vs {}", x, y);
        }
    }
}
