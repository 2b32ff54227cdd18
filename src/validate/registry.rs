//! The definitions the validator knows, compiled once into a form that is fast to walk.
//!
//! Input is always standard FHIR conformance JSON — StructureDefinition snapshots, ValueSets,
//! CodeSystems — whether it comes from the tables embedded at build time (generated into
//! `profiles/r4/` by `scripts/gen-validation-tables.py`) or from a FHIR package a user adds. One
//! compiler for both keeps the shipped tables and user packages behaving identically.
//!
//! A snapshot is a flat list of elements; we turn it into a tree (children and slices per element,
//! found through the element ids) and precompute the JSON keys each element accepts, including the
//! expansions of choice elements (`value[x]` → `valueQuantity`, ...).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::fhirpath::Expr;

/// FNV-1a: the registry's keys are short strings looked up on every element of every resource,
/// where SipHash's DoS resistance buys nothing (the keys come from the definitions, not the input).
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;
pub(crate) type FastSet<T> = HashSet<T, BuildHasherDefault<Fnv>>;

/// What a profile element inherits from the base element with the same path; the profile walk
/// re-checks only what the profile changed (the structure walk reports the rest).
#[derive(Debug, Clone, Default)]
pub(crate) struct Inherited {
    pub min: u32,
    pub max: Option<u32>,
    pub binding: Option<String>,
    pub invariant_keys: Vec<String>,
}

/// `StructureDefinition`, only the parts the validator reads. Unknown fields are ignored, so a full
/// definition from a package deserialises into this as well as a stripped one.
#[derive(Debug, Deserialize)]
pub(crate) struct RawStructureDefinition {
    pub url: String,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub derivation: Option<String>,
    #[serde(default, rename = "abstract")]
    pub is_abstract: bool,
    #[serde(default)]
    pub snapshot: Option<RawSnapshot>,
    /// Where an extension may be used.
    #[serde(default)]
    pub context: Vec<ExtensionContext>,
}

/// `StructureDefinition.context`: where an extension may be used (`element` + a path or type
/// name, `extension` + a URL, or `fhirpath`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ExtensionContext {
    #[serde(rename = "type")]
    pub kind: String,
    pub expression: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawSnapshot {
    pub element: Vec<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Primitive,
    Complex,
    Resource,
}

/// An allowed type of an element.
#[derive(Debug, Clone)]
pub(crate) struct TypeRef {
    /// FHIR type name (`string`, `HumanName`, `Reference`); FHIRPath system types are mapped to
    /// the nearest FHIR primitive (`System.String` → `string`).
    pub code: String,
    /// `type.profile`: profiles the value must conform to (extension definitions, datatype profiles).
    pub profiles: Vec<String>,
    /// `type.targetProfile`: what a Reference may point to.
    pub targets: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Discriminator {
    pub kind: String,
    pub path: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Slicing {
    pub discriminators: Vec<Discriminator>,
    pub closed: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Invariant {
    pub key: String,
    pub human: String,
    pub expr: Expr,
}

#[derive(Debug, Clone)]
pub(crate) struct Element {
    pub id: String,
    pub path: String,
    /// Last path segment without `[x]`.
    pub name: String,
    pub choice: bool,
    pub slice_name: Option<String>,
    pub min: u32,
    /// `None` is `*`.
    pub max: Option<u32>,
    pub types: Vec<TypeRef>,
    /// Path of the element whose definition this one reuses (`#Questionnaire.item`).
    pub content_ref: Option<String>,
    pub fixed: Option<Value>,
    pub pattern: Option<Value>,
    /// Canonical of a value set bound with strength `required` (version stripped).
    pub required_binding: Option<String>,
    pub slicing: Option<Slicing>,
    pub invariants: Vec<Invariant>,
    /// Regex of a primitive's value (only on `<primitive>.value` elements of the base types).
    pub regex: Option<Regex>,
    /// `maxLength`: the most characters a string value may have (R4: 1 MiB on `string.value`).
    pub max_length: Option<usize>,
    pub children: Vec<usize>,
    pub slices: Vec<usize>,
    /// JSON key → (child element index, type code for choice expansions).
    pub keys: FastMap<String, (usize, Option<String>)>,
    /// `_name`: the key of a primitive's id and extensions.
    pub twin_key: String,
    /// For profile elements: the base element with the same path, if there is one.
    pub inherited: Option<Inherited>,
    /// For profile elements: whether this element or anything below it adds to the base
    /// definition; the profile walk skips the rest (most of a snapshot repeats the base).
    pub relevant: bool,
}

impl Element {
    pub fn max_label(&self) -> String {
        self.max.map_or_else(|| "*".to_string(), |m| m.to_string())
    }
    pub fn repeats(&self) -> bool {
        self.max.is_none_or(|m| m > 1)
    }
}

#[derive(Debug)]
pub(crate) struct StructureDef {
    pub url: String,
    pub type_name: String,
    pub kind: Kind,
    pub is_constraint: bool,
    pub is_abstract: bool,
    /// For extension definitions: where the extension may be used.
    pub contexts: Vec<ExtensionContext>,
    pub elements: Vec<Element>,
    by_path: FastMap<String, usize>,
}

impl StructureDef {
    pub fn root(&self) -> &Element {
        &self.elements[0]
    }
    pub fn element_by_path(&self, path: &str) -> Option<usize> {
        self.by_path.get(path).copied()
    }
    /// The `maxLength` of this primitive type's value, if it has one.
    pub fn value_max_length(&self) -> Option<usize> {
        let root = self.root();
        root.keys.get("value").and_then(|(i, _)| self.elements[*i].max_length)
    }
    /// The regex of this primitive type's value, if it is a primitive.
    pub fn value_regex(&self) -> Option<&Regex> {
        let root = self.root();
        root.keys.get("value").and_then(|(i, _)| self.elements[*i].regex.as_ref())
    }
}

/// Errors in definitions (embedded or from a package).
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error("StructureDefinition {url}: {message}")]
    Structure { url: String, message: String },
    #[error("cannot read definitions: {0}")]
    Json(#[from] serde_json::Error),
}

/// Everything known: base types and resources (by type name), profiles (by canonical URL),
/// value-set codes and complete code systems.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// All definitions; the maps below index into it.
    pub sds: Vec<StructureDef>,
    /// Definition per canonical URL.
    pub by_url: FastMap<String, usize>,
    /// Base definition (specialization) per type name: the hottest lookup of a validation run.
    pub base_of: FastMap<String, usize>,
    /// Value set URL → (system, code) pairs, for value sets we could expand.
    pub valuesets: FastMap<String, FastSet<(String, String)>>,
    /// Complete code systems: URL → codes.
    pub codesystems: FastMap<String, FastSet<String>>,
    /// Search parameters: canonical URL → type (`token`, `reference`, ...).
    pub search_params: FastMap<String, String>,
    /// Core profiles R4 applies by content: `system|code` of `Observation.code` → profile URL
    /// (the vital signs profiles, by their LOINC code).
    pub by_code: FastMap<String, String>,
    pending_valuesets: Vec<Value>,
}

const REGEX_EXT: &str = "http://hl7.org/fhir/StructureDefinition/regex";
const CORE_SD: &str = "http://hl7.org/fhir/StructureDefinition/";

/// R4 error invariants the walk checks in code rather than by their FHIRPath (which needs
/// `%resource`, `htmlChecks()` or `children()` of the model): `ele-1` and `ext-1` in the
/// structure walk, the Bundle rules in `Walker::bundle_rules`, the narrative rules in `xhtml`,
/// `dom-3` (which needs the FHIR types of strings) in `Walker::contained_referenced`.
pub(crate) const NATIVE_INVARIANTS: &[&str] = &[
    "ele-1", "ext-1", "bdl-1", "bdl-2", "bdl-3", "bdl-4", "bdl-5", "bdl-7", "bdl-8", "bdl-9", "bdl-10", "bdl-11",
    "bdl-12", "txt-1", "txt-2", "dom-3",
];

fn map_system_type(code: &str) -> &str {
    match code {
        "http://hl7.org/fhirpath/System.String" => "string",
        "http://hl7.org/fhirpath/System.Boolean" => "boolean",
        "http://hl7.org/fhirpath/System.Integer" => "integer",
        "http://hl7.org/fhirpath/System.Decimal" => "decimal",
        "http://hl7.org/fhirpath/System.Date" => "date",
        "http://hl7.org/fhirpath/System.DateTime" => "dateTime",
        "http://hl7.org/fhirpath/System.Time" => "time",
        other => other,
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn parse_element(raw: &Value, url: &str) -> Result<Element, DefinitionError> {
    let err = |m: String| DefinitionError::Structure { url: url.to_string(), message: m };
    let path = raw.get("path").and_then(Value::as_str).ok_or_else(|| err("element without path".into()))?;
    let id = raw.get("id").and_then(Value::as_str).unwrap_or(path).to_string();
    let last = path.rsplit('.').next().unwrap_or(path);
    let choice = last.ends_with("[x]");
    let name = last.trim_end_matches("[x]").to_string();
    let min = raw.get("min").and_then(Value::as_u64).unwrap_or(0) as u32;
    let max = match raw.get("max").and_then(Value::as_str) {
        None | Some("*") => None,
        Some(m) => Some(m.parse::<u32>().map_err(|_| err(format!("{id}: bad max {m:?}")))?),
    };
    let mut regex = None;
    let mut types = Vec::new();
    for t in raw.get("type").and_then(Value::as_array).into_iter().flatten() {
        let Some(code) = t.get("code").and_then(Value::as_str) else {
            continue;
        };
        for ext in t.get("extension").and_then(Value::as_array).into_iter().flatten() {
            if ext.get("url").and_then(Value::as_str) == Some(REGEX_EXT) {
                if let Some(re) = ext.get("valueString").and_then(Value::as_str) {
                    // The spec's regexes are implicitly anchored.
                    regex = Some(Regex::new(&format!("^(?:{re})$")).map_err(|e| err(format!("{id}: regex: {e}")))?);
                }
            }
        }
        types.push(TypeRef {
            code: map_system_type(code).to_string(),
            profiles: strings(t.get("profile")),
            targets: strings(t.get("targetProfile")),
        });
    }
    let mut fixed = None;
    let mut pattern = None;
    if let Some(obj) = raw.as_object() {
        for (k, v) in obj {
            if k.starts_with("fixed") {
                fixed = Some(v.clone());
            } else if k.starts_with("pattern") {
                pattern = Some(v.clone());
            }
        }
    }
    let required_binding = raw.get("binding").and_then(|b| {
        (b.get("strength").and_then(Value::as_str) == Some("required"))
            .then(|| b.get("valueSet").and_then(Value::as_str))
            .flatten()
            .map(|vs| vs.split('|').next().unwrap_or(vs).to_string())
    });
    let slicing = raw.get("slicing").map(|s| Slicing {
        discriminators: s
            .get("discriminator")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| {
                Some(Discriminator {
                    kind: d.get("type")?.as_str()?.to_string(),
                    path: d.get("path")?.as_str()?.to_string(),
                })
            })
            .collect(),
        closed: s.get("rules").and_then(Value::as_str) == Some("closed"),
    });
    let invariants = raw
        .get("constraint")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("severity").and_then(Value::as_str) == Some("error"))
        .filter_map(|c| {
            let key = c.get("key")?.as_str()?;
            // Checked natively by the structure walk.
            if NATIVE_INVARIANTS.contains(&key) {
                return None;
            }
            let expr = Expr::parse(c.get("expression")?.as_str()?)?;
            Some(Invariant {
                key: key.to_string(),
                human: c.get("human").and_then(Value::as_str).unwrap_or("").to_string(),
                expr,
            })
        })
        .collect();
    Ok(Element {
        id,
        path: path.to_string(),
        name,
        choice,
        slice_name: raw.get("sliceName").and_then(Value::as_str).map(str::to_string),
        min,
        max,
        types,
        content_ref: raw
            .get("contentReference")
            .and_then(Value::as_str)
            .map(|r| r.split_once('#').map_or(r, |(_, p)| p).to_string()),
        fixed,
        pattern,
        required_binding,
        slicing,
        invariants,
        regex,
        max_length: raw.get("maxLength").and_then(Value::as_u64).and_then(|m| usize::try_from(m).ok()),
        children: Vec::new(),
        slices: Vec::new(),
        keys: FastMap::default(),
        twin_key: format!("_{name}", name = last.trim_end_matches("[x]")),
        inherited: None,
        relevant: true,
    })
}

fn compile(raw: RawStructureDefinition) -> Result<StructureDef, DefinitionError> {
    let url = raw.url.clone();
    let snapshot = raw.snapshot.ok_or_else(|| DefinitionError::Structure {
        url: url.clone(),
        message: "no snapshot (generate one first)".into(),
    })?;
    let mut elements = Vec::with_capacity(snapshot.element.len());
    for e in &snapshot.element {
        elements.push(parse_element(e, &url)?);
    }
    if elements.is_empty() {
        return Err(DefinitionError::Structure { url, message: "empty snapshot".into() });
    }
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut by_path = FastMap::default();
    for i in 0..elements.len() {
        let id = elements[i].id.clone();
        if i > 0 {
            let parent = if let Some(slice) = &elements[i].slice_name {
                id.strip_suffix(&format!(":{slice}")).and_then(|p| by_id.get(p)).map(|&p| (p, true))
            } else {
                // The parent is the longest known id that is a prefix ending before a '.'.
                id.char_indices()
                    .filter(|&(_, c)| c == '.')
                    .map(|(pos, _)| &id[..pos])
                    .rev()
                    .find_map(|p| by_id.get(p))
                    .map(|&p| (p, false))
            };
            match parent {
                Some((p, true)) => elements[p].slices.push(i),
                Some((p, false)) => elements[p].children.push(i),
                None => return Err(DefinitionError::Structure { url, message: format!("element {id} has no parent") }),
            }
        }
        if elements[i].slice_name.is_none() && !id.contains(':') {
            by_path.insert(elements[i].path.clone(), i);
        }
        by_id.insert(id, i);
    }
    let kind = match raw.kind.as_str() {
        "primitive-type" => Kind::Primitive,
        "resource" => Kind::Resource,
        _ => Kind::Complex,
    };
    if kind == Kind::Resource {
        // R4 4.0.1 types `Resource.id` as `System.String` (with a `structuredefinition-fhir-type`
        // of `string`), a known technical error: a resource id is an `id`, and the HL7 reference
        // validator checks it against the `id` regex ([A-Za-z0-9\-\.]{1,64}) as well.
        let id_path = format!("{}.id", elements[0].path);
        for el in elements.iter_mut().filter(|e| e.path == id_path) {
            for t in el.types.iter_mut().filter(|t| t.code == "string") {
                t.code = "id".to_string();
            }
        }
    }
    for i in 0..elements.len() {
        let mut keys = FastMap::default();
        for &c in &elements[i].children {
            let child = &elements[c];
            if child.choice {
                for t in &child.types {
                    keys.insert(format!("{}{}", child.name, upper_first(&t.code)), (c, Some(t.code.clone())));
                }
            } else {
                keys.insert(child.name.clone(), (c, None));
            }
        }
        elements[i].keys = keys;
    }
    Ok(StructureDef {
        url,
        type_name: raw.type_name,
        kind,
        is_constraint: raw.derivation.as_deref() == Some("constraint"),
        is_abstract: raw.is_abstract,
        contexts: raw.context,
        elements,
        by_path,
    })
}

impl Registry {
    /// Add one conformance resource (other resource types are ignored). Returns whether it was used.
    pub fn add_resource(&mut self, v: Value) -> Result<bool, DefinitionError> {
        match v.get("resourceType").and_then(Value::as_str) {
            Some("StructureDefinition") => {
                if v.get("snapshot").is_none() || v.get("kind").and_then(Value::as_str) == Some("logical") {
                    return Ok(false);
                }
                let raw: RawStructureDefinition = serde_json::from_value(v)?;
                let sd = compile(raw)?;
                // A package may replace a shipped definition with the same URL.
                let idx = self.by_url.get(&sd.url).copied().unwrap_or(self.sds.len());
                if !sd.is_constraint {
                    self.base_of.insert(sd.type_name.clone(), idx);
                }
                self.by_url.insert(sd.url.clone(), idx);
                if idx == self.sds.len() {
                    self.sds.push(sd);
                } else {
                    self.sds[idx] = sd;
                }
                Ok(true)
            }
            Some("SearchParameter") => {
                let (Some(url), Some(ty)) =
                    (v.get("url").and_then(Value::as_str), v.get("type").and_then(Value::as_str))
                else {
                    return Ok(false);
                };
                self.search_params.insert(url.to_string(), ty.to_string());
                Ok(true)
            }
            Some("CodeSystem") => {
                let (Some(url), Some("complete")) =
                    (v.get("url").and_then(Value::as_str), v.get("content").and_then(Value::as_str))
                else {
                    return Ok(false);
                };
                let mut codes = FastSet::default();
                fn walk(cs: &Value, codes: &mut FastSet<String>) {
                    for c in cs.get("concept").and_then(Value::as_array).into_iter().flatten() {
                        if let Some(code) = c.get("code").and_then(Value::as_str) {
                            codes.insert(code.to_string());
                        }
                        walk(c, codes);
                    }
                }
                walk(&v, &mut codes);
                self.codesystems.insert(url.to_string(), codes);
                Ok(true)
            }
            Some("ValueSet") => {
                self.pending_valuesets.push(v);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Expand the value sets added so far (after all code systems are in). Value sets that use
    /// filters or unknown code systems stay unknown: their bindings are then not checked.
    pub fn finish(&mut self) {
        self.link_profiles_to_base();
        self.index_by_content();
        let pending = std::mem::take(&mut self.pending_valuesets);
        let by_url: HashMap<&str, &Value> = pending.iter().filter_map(|v| Some((v.get("url")?.as_str()?, v))).collect();
        for (url, vs) in &by_url {
            if let Some(codes) = self.expand(vs, &by_url, 0) {
                self.valuesets.insert((*url).to_string(), codes);
            }
        }
    }

    /// The core (`http://hl7.org/fhir/StructureDefinition/`) Observation profiles that fix
    /// `Observation.code` to a coding: R4 requires them of every Observation with that code.
    fn index_by_content(&mut self) {
        self.by_code.clear();
        for sd in self.sds.iter().filter(|sd| sd.is_constraint && sd.type_name == "Observation") {
            if !sd.url.starts_with(CORE_SD) {
                continue;
            }
            let Some(i) = sd.element_by_path("Observation.code") else { continue };
            let pattern = sd.elements[i].pattern.as_ref().or(sd.elements[i].fixed.as_ref());
            for c in pattern.and_then(|p| p.get("coding")).and_then(Value::as_array).into_iter().flatten() {
                if let (Some(s), Some(k)) =
                    (c.get("system").and_then(Value::as_str), c.get("code").and_then(Value::as_str))
                {
                    self.by_code.insert(format!("{s}|{k}"), sd.url.clone());
                }
            }
        }
    }

    /// Record, on every profile element, what the base element with the same path says.
    fn link_profiles_to_base(&mut self) {
        // per profile: (index in sds, per element (what it inherits, whether it is relevant))
        type Links = Vec<(Option<Inherited>, bool)>;
        let mut updates: Vec<(usize, Links)> = Vec::new();
        for (k, sd) in self.sds.iter().enumerate().filter(|(_, sd)| sd.is_constraint) {
            let base = self.base(&sd.type_name);
            let n = sd.elements.len();
            let mut out: Links = vec![(None, false); n];
            // Children come after their parents in a snapshot: walk backwards so that a parent
            // sees whether any of its children matter.
            for i in (0..n).rev() {
                let el = &sd.elements[i];
                let b = base.and_then(|base| base.element_by_path(&el.path).map(|j| &base.elements[j]));
                let relevant = self.tightens(el, b)
                    || el.children.iter().any(|&c| out[c].1)
                    || el.slices.iter().any(|&c| out[c].1);
                let inherited = b.map(|b| Inherited {
                    min: b.min,
                    max: b.max,
                    binding: b.required_binding.clone(),
                    invariant_keys: b.invariants.iter().map(|x| x.key.clone()).collect(),
                });
                out[i] = (inherited, relevant);
            }
            updates.push((k, out));
        }
        for (k, out) in updates {
            for (el, (inherited, relevant)) in self.sds[k].elements.iter_mut().zip(out) {
                el.inherited = inherited;
                el.relevant = relevant;
            }
        }
    }

    /// Whether a profile element adds anything to its base element `b` (None: no base element).
    fn tightens(&self, el: &Element, b: Option<&Element>) -> bool {
        let Some(b) = b else { return true };
        fn targets(e: &Element) -> Vec<&str> {
            let mut t: Vec<&str> = e.types.iter().flat_map(|t| t.targets.iter().map(String::as_str)).collect();
            t.sort_unstable();
            t
        }
        el.fixed.is_some()
            || el.pattern.is_some()
            || el.slice_name.is_some()
            || (el.slicing.is_some() && !el.slices.is_empty())
            || (el.required_binding.is_some() && el.required_binding != b.required_binding)
            || el.invariants.iter().any(|x| !b.invariants.iter().any(|y| y.key == x.key))
            || el.min > b.min
            || match (el.max, b.max) {
                (Some(p), Some(q)) => p < q,
                (Some(_), None) => true,
                _ => false,
            }
            || (el.choice && el.types.len() < b.types.len())
            || el.types.iter().any(|t| t.profiles.iter().any(|p| self.profile(p).is_some_and(|x| x.is_constraint)))
            || targets(el) != targets(b)
    }

    fn expand(&self, vs: &Value, all: &HashMap<&str, &Value>, depth: u32) -> Option<FastSet<(String, String)>> {
        if depth > 8 {
            return None;
        }
        let mut out = FastSet::default();
        if let Some(contains) = vs.pointer("/expansion/contains").and_then(Value::as_array) {
            fn walk(items: &[Value], out: &mut FastSet<(String, String)>) {
                for c in items {
                    if let (Some(s), Some(code)) =
                        (c.get("system").and_then(Value::as_str), c.get("code").and_then(Value::as_str))
                    {
                        out.insert((s.to_string(), code.to_string()));
                    }
                    if let Some(sub) = c.get("contains").and_then(Value::as_array) {
                        walk(sub, out);
                    }
                }
            }
            walk(contains, &mut out);
            return Some(out);
        }
        let compose = vs.get("compose")?;
        for inc in compose.get("include").and_then(Value::as_array)? {
            if inc.get("filter").is_some() {
                return None;
            }
            let mut part: Option<FastSet<(String, String)>> = None;
            if let Some(system) = inc.get("system").and_then(Value::as_str) {
                let codes: FastSet<(String, String)> = match inc.get("concept").and_then(Value::as_array) {
                    Some(concepts) => concepts
                        .iter()
                        .filter_map(|c| c.get("code").and_then(Value::as_str))
                        .map(|c| (system.to_string(), c.to_string()))
                        .collect(),
                    None => self.codesystems.get(system)?.iter().map(|c| (system.to_string(), c.clone())).collect(),
                };
                part = Some(codes);
            }
            for sub in inc.get("valueSet").and_then(Value::as_array).into_iter().flatten() {
                let sub_url = sub.as_str()?.split('|').next()?;
                let sub_codes = match self.valuesets.get(sub_url) {
                    Some(c) => c.clone(),
                    None => self.expand(all.get(sub_url)?, all, depth + 1)?,
                };
                part = Some(match part {
                    None => sub_codes,
                    Some(p) => p.intersection(&sub_codes).cloned().collect(),
                });
            }
            out.extend(part.unwrap_or_default());
        }
        for exc in compose.get("exclude").and_then(Value::as_array).into_iter().flatten() {
            let system = exc.get("system").and_then(Value::as_str)?;
            for c in exc.get("concept").and_then(Value::as_array)? {
                out.remove(&(system.to_string(), c.get("code")?.as_str()?.to_string()));
            }
        }
        Some(out)
    }

    /// The base definition of a type (`Patient`, `HumanName`, `string`).
    pub fn base(&self, type_name: &str) -> Option<&StructureDef> {
        self.base_of.get(type_name).map(|&i| &self.sds[i])
    }

    pub fn profile(&self, url: &str) -> Option<&StructureDef> {
        self.by_url.get(url.split('|').next().unwrap_or(url)).map(|&i| &self.sds[i])
    }

    /// The resource/data type a canonical URL constrains, if known (base URLs map to their name).
    pub fn type_of_profile<'a>(&'a self, url: &'a str) -> Option<&'a str> {
        if let Some(sd) = self.profile(url) {
            return Some(&sd.type_name);
        }
        url.strip_prefix("http://hl7.org/fhir/StructureDefinition/")
    }
}
