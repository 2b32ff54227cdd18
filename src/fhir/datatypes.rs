//! Model building blocks → FHIR R4 data types (JSON), with the nl-core extensions that
//! carry the Dutch name and address parts.

use serde_json::{json, Map, Value};

use crate::model::*;
use crate::terminology::ext;

pub const EXT_CODE_SPECIFICATION: &str = "http://nictiz.nl/fhir/StructureDefinition/ext-CodeSpecification";
const EXT_ADXP_HOUSE_NUMBER_INDICATION: &str = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-direction";
const EXT_ADDRESS_TYPE: &str = "http://nictiz.nl/fhir/StructureDefinition/ext-AddressInformation.AddressType";

/// A JSON object builder that leaves out empty values, so that no `null`, `""`, `[]` or
/// `{}` ever reaches the output (FHIR forbids them).
#[derive(Default)]
pub struct Obj(Map<String, Value>);

impl Obj {
    pub fn new() -> Self {
        Obj(Map::new())
    }
    pub fn with(resource_type: &str) -> Self {
        let mut o = Obj::new();
        o.0.insert("resourceType".into(), Value::String(resource_type.into()));
        o
    }
    /// Sets `key` to `value` unless the value is empty.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        let v = value.into();
        if !is_empty(&v) {
            self.0.insert(key.to_owned(), v);
        }
        self
    }
    pub fn opt<T: Into<Value>>(&mut self, key: &str, value: Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.set(key, v);
        }
        self
    }
    pub fn str(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(s) = value.filter(|s| !s.trim().is_empty()) {
            self.0.insert(key.to_owned(), Value::String(s.to_owned()));
        }
        self
    }
    pub fn push(&mut self, key: &str, value: Value) -> &mut Self {
        if is_empty(&value) {
            return self;
        }
        match self.0.get_mut(key) {
            Some(Value::Array(a)) => a.push(value),
            _ => {
                self.0.insert(key.to_owned(), Value::Array(vec![value]));
            }
        }
        self
    }
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
    pub fn build(self) -> Value {
        Value::Object(self.0)
    }
}

pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.iter().all(is_empty),
        Value::Object(o) => o.values().all(is_empty),
        _ => false,
    }
}

pub fn array(items: impl IntoIterator<Item = Value>) -> Value {
    Value::Array(items.into_iter().filter(|v| !is_empty(v)).collect())
}

pub fn coding(c: &Coding) -> Value {
    let mut o = Obj::new();
    o.str("system", c.system.as_deref()).str("code", c.code.as_deref()).str("display", c.display.as_deref());
    o.build()
}

pub fn concept(c: &Concept) -> Value {
    let mut o = Obj::new();
    o.set("coding", array(c.codings.iter().map(coding)));
    o.str("text", c.text.as_deref());
    o.build()
}

pub fn opt_concept(c: &Option<Concept>) -> Option<Value> {
    c.as_ref().map(concept).filter(|v| !is_empty(v))
}

pub fn identifier(i: &Identifier) -> Value {
    let mut o = Obj::new();
    o.str("system", i.system.as_deref()).str("value", Some(&i.value));
    o.build()
}

pub fn identifiers(ids: &[Identifier]) -> Value {
    array(ids.iter().map(identifier))
}

pub fn ext(url: &str, value_key: &str, value: Value) -> Value {
    if is_empty(&value) {
        return Value::Null;
    }
    let mut m = Map::new();
    m.insert("url".into(), Value::String(url.into()));
    m.insert(value_key.into(), value);
    Value::Object(m)
}

fn string_ext(url: &str, value: Option<&str>) -> Value {
    match value.filter(|s| !s.is_empty()) {
        Some(s) => ext(url, "valueString", json!(s)),
        None => Value::Null,
    }
}

/// The primitive-extension companion (`_x`) holding a code-specification coding.
pub fn code_specification(c: &Coding) -> Value {
    json!({"extension": [ext(EXT_CODE_SPECIFICATION, "valueCodeableConcept", json!({"coding": [coding(c)]}))]})
}

pub fn human_name(n: &HumanName) -> Value {
    let mut o = Obj::new();
    o.set(
        "extension",
        array([match &n.assembly_order {
            Some(a) => ext(ext::ASSEMBLY_ORDER, "valueCode", json!(a)),
            None => Value::Null,
        }]),
    );
    o.str("use", n.use_.as_deref());
    let text = n.text.clone().or_else(|| {
        let given: Vec<&str> =
            n.given.iter().filter(|g| g.kind != GivenKind::Initial).map(|g| g.value.as_str()).collect();
        let family = n.family_name();
        let t = [given.join(" "), family.unwrap_or_default()]
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        (!t.is_empty()).then_some(t)
    });
    o.str("text", text.as_deref());
    o.str("family", n.family_name().as_deref());
    let family_parts = array([
        string_ext(ext::OWN_PREFIX, n.own_prefix.as_deref()),
        string_ext(ext::OWN_NAME, n.own_name.as_deref()),
        string_ext(ext::PARTNER_PREFIX, n.partner_prefix.as_deref()),
        string_ext(ext::PARTNER_NAME, n.partner_name.as_deref()),
    ]);
    if !is_empty(&family_parts) {
        o.set("_family", json!({ "extension": family_parts }));
    }
    if !n.given.is_empty() {
        o.set("given", array(n.given.iter().map(|g| json!(g.value))));
        let qualifiers: Vec<Value> = n
            .given
            .iter()
            .map(|g| match g.kind {
                GivenKind::Given => Value::Null,
                GivenKind::Call => {
                    json!({"extension": [ext(ext::EN_QUALIFIER, "valueCode", json!("CL"))]})
                }
                GivenKind::Initial => {
                    json!({"extension": [ext(ext::EN_QUALIFIER, "valueCode", json!("IN"))]})
                }
            })
            .collect();
        if qualifiers.iter().any(|q| !q.is_null()) {
            o.set("_given", Value::Array(qualifiers));
        }
    }
    o.set("prefix", array(n.prefix.iter().map(|p| json!(p))));
    o.set("suffix", array(n.suffix.iter().map(|p| json!(p))));
    o.build()
}

pub fn address(a: &Address) -> Value {
    let mut o = Obj::new();
    if let Some(t) = &a.zib_type {
        o.set("extension", json!([ext(EXT_ADDRESS_TYPE, "valueCodeableConcept", json!({"coding": [coding(t)]}))]));
    }
    o.str("use", a.use_.as_deref()).str("type", a.type_.as_deref()).str("text", a.text.as_deref());
    let has_parts = a.street.is_some() || a.house_number.is_some();
    if has_parts {
        let line = [
            a.street.as_deref(),
            a.house_number.as_deref(),
            a.house_number_letter.as_deref(),
            a.house_number_addition.as_deref(),
        ]
        .iter()
        .flatten()
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
        o.set("line", json!([line]));
        o.set(
            "_line",
            json!([{ "extension": array([
                string_ext(ext::ADXP_STREET, a.street.as_deref()),
                string_ext(ext::ADXP_HOUSE_NUMBER, a.house_number.as_deref()),
                string_ext(ext::ADXP_BUILDING_SUFFIX, a.house_number_letter.as_deref()),
                string_ext(ext::ADXP_UNIT_ID, a.house_number_addition.as_deref()),
                string_ext(EXT_ADXP_HOUSE_NUMBER_INDICATION, a.house_number_indication.as_deref()),
                string_ext(ext::ADXP_ADDITIONAL, a.additional_info.as_deref()),
            ]) }]),
        );
    } else {
        o.set("line", array(a.lines.iter().map(|l| json!(l))));
    }
    o.str("city", a.city.as_deref())
        .str("district", a.municipality.as_deref())
        .str("postalCode", a.postal_code.as_deref());
    o.str(
        "country",
        a.country.as_deref().or(a.country_code.as_ref().and_then(|c| c.display.as_deref().or(c.code.as_deref()))),
    );
    if let Some(c) = &a.country_code {
        if o.has("country") {
            o.set("_country", code_specification(c));
        }
    }
    o.build()
}

pub fn telecom(t: &Telecom) -> Value {
    let mut o = Obj::new();
    o.str("system", Some(&t.system));
    if let Some(c) = &t.zib_type {
        o.set("_system", code_specification(c));
    }
    o.str("value", Some(&t.value)).str("use", t.use_.as_deref());
    o.build()
}

pub fn names(ns: &[HumanName]) -> Value {
    array(ns.iter().map(human_name))
}
pub fn addresses(xs: &[Address]) -> Value {
    array(xs.iter().map(address))
}
pub fn telecoms(xs: &[Telecom]) -> Value {
    array(xs.iter().map(telecom))
}

pub fn when(w: &Option<When>) -> Option<Value> {
    w.as_ref().map(|w| json!(w.to_fhir()))
}

pub fn period(p: &Period) -> Value {
    let mut o = Obj::new();
    o.opt("start", when(&p.start)).opt("end", when(&p.end));
    o.build()
}

pub fn quantity(q: &Quantity) -> Value {
    let mut o = Obj::new();
    o.opt("value", q.value.as_ref().map(Decimal::to_json));
    // A source that gives only the UCUM code (as Nictiz's own conversion does) still says
    // which unit: R4's vital-signs profiles require `unit`, and a reader needs it.
    let unit = q
        .unit
        .as_deref()
        .or_else(|| q.code.as_deref().filter(|_| q.system.as_deref() == Some("http://unitsofmeasure.org")));
    o.str("comparator", q.comparator.as_deref()).str("unit", unit);
    if q.code.is_some() {
        o.str("system", q.system.as_deref()).str("code", q.code.as_deref());
    }
    o.build()
}

pub fn annotations(notes: &[String]) -> Value {
    array(notes.iter().map(|n| json!({ "text": n })))
}

/// Sets `value[x]` on `o` (also used for components).
pub fn set_value(o: &mut Obj, v: &ObsValue) {
    match v {
        ObsValue::Quantity(q) => o.set("valueQuantity", quantity(q)),
        ObsValue::Concept(c) => o.set("valueCodeableConcept", concept(c)),
        ObsValue::Text(t) => o.set("valueString", json!(t)),
        ObsValue::Boolean(b) => o.set("valueBoolean", json!(b)),
        ObsValue::Integer(i) => o.set("valueInteger", json!(i)),
        ObsValue::DateTime(w) => o.set("valueDateTime", json!(w.to_fhir())),
        ObsValue::Period(p) => o.set("valuePeriod", period(p)),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_never_reach_the_output() {
        let mut o = Obj::new();
        o.set("a", json!("")).set("b", json!([])).set("c", json!({"x": null})).str("d", Some("  ")).set("e", json!(0));
        assert_eq!(o.build(), json!({"e": 0}));
    }

    #[test]
    fn name_parts_become_nl_core_extensions() {
        let n = HumanName {
            own_prefix: Some("van".into()),
            own_name: Some("Putten".into()),
            given: vec![
                GivenName { value: "Johanna".into(), kind: GivenKind::Given },
                GivenName { value: "J.".into(), kind: GivenKind::Initial },
            ],
            ..Default::default()
        };
        let v = human_name(&n);
        assert_eq!(v["family"], "van Putten");
        assert_eq!(v["_family"]["extension"][0]["url"], ext::OWN_PREFIX);
        assert_eq!(v["_given"][0], Value::Null);
        assert_eq!(v["_given"][1]["extension"][0]["valueCode"], "IN");
        assert_eq!(v["text"], "Johanna van Putten");
    }
}
