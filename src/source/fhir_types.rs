//! FHIR JSON data types (as STU3 GP systems send them) → model types.
//!
//! Each function takes what it maps from the element (see [`super::consume`]) and leaves
//! the rest to be reported. System URIs are normalised through the terminology table
//! (STU3 `http://hl7.org/fhir/v3/...` and `urn:oid:` forms become R4 canonical URIs).

use serde_json::Value;

use super::consume::*;
use crate::model::*;
use crate::terminology::ext;
use crate::terminology::Terminology;

const EXT_CODE_SPECIFICATION: &str = "http://nictiz.nl/fhir/StructureDefinition/code-specification";
const EXT_ADDRESS_TYPE: &str = "http://nictiz.nl/fhir/StructureDefinition/zib-AddressInformation-AddressType";
const EXT_TELECOM_TYPE: &str = "http://nictiz.nl/fhir/StructureDefinition/zib-ContactInformation-TelecomType";
const EXT_PRACTITIONERROLE_REF: &str = "http://nictiz.nl/fhir/StructureDefinition/practitionerrole-reference";
const EXT_MUNICIPALITY: &str = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-county";

pub fn term() -> &'static Terminology {
    Terminology::embedded()
}

pub fn coding(v: &mut Value) -> Coding {
    let system = take_str(v, "system").map(|s| term().system_uri(&s));
    let c = Coding { system, code: take_str(v, "code"), display: take_str(v, "display") };
    // userSelected/version carry no clinical meaning in the handover
    consume(v, "userSelected");
    consume(v, "version");
    c
}

pub fn concept(v: &mut Value) -> Concept {
    let mut codings = vec![];
    for (_, c) in elements(v, "coding") {
        codings.push(coding(c));
    }
    Concept { codings, text: take_str(v, "text") }
}

pub fn take_concept(v: &mut Value, key: &str) -> Option<Concept> {
    let c = concept(member(v, key)?);
    (!c.is_empty()).then_some(c)
}

pub fn take_concepts(v: &mut Value, key: &str) -> Vec<Concept> {
    elements(v, key).into_iter().map(|(_, c)| concept(c)).filter(|c| !c.is_empty()).collect()
}

/// The code-specification extension on a primitive (`_gender`, `_clinicalStatus`).
pub fn code_specification(v: &mut Value, primitive: &str) -> Option<Concept> {
    let underscore = format!("_{primitive}");
    let elem = member(v, &underscore)?;
    let mut ext = take_extension(elem, EXT_CODE_SPECIFICATION)?;
    take_concept(&mut ext, "valueCodeableConcept")
}

pub fn identifier(v: &mut Value) -> Option<Identifier> {
    let system = take_str(v, "system").map(|s| term().system_uri(&s));
    let value = take_str(v, "value")?;
    // `use` and `type` describe the local identifier's role in the sender's system.
    consume(v, "use");
    consume(v, "type");
    Some(Identifier { system, value: value.trim().to_owned() })
}

pub fn identifiers(v: &mut Value, key: &str) -> Vec<Identifier> {
    elements(v, key).into_iter().filter_map(|(_, i)| identifier(i)).collect()
}

pub fn when(v: &mut Value, key: &str, path: &str, out: &mut crate::diagnostics::Outcome) -> Option<When> {
    let s = v.get(key)?.as_str()?.to_owned();
    match When::parse(&s) {
        Ok(w) => {
            take(v, key);
            Some(w)
        }
        Err(e) => {
            out.push(
                crate::diagnostics::Issue::warning(crate::diagnostics::IssueCode::Value, e.to_string())
                    .at(format!("{path}.{key}")),
            );
            None
        }
    }
}

pub fn period(v: &mut Value, key: &str, path: &str, out: &mut crate::diagnostics::Outcome) -> Period {
    let p = format!("{path}.{key}");
    match member(v, key) {
        Some(m) => Period { start: when(m, "start", &p, out), end: when(m, "end", &p, out) },
        None => Period::default(),
    }
}

pub fn quantity(v: &mut Value) -> Quantity {
    Quantity {
        value: take_number(v, "value").and_then(|n| Decimal::parse(&n)),
        comparator: take_str(v, "comparator"),
        unit: take_str(v, "unit"),
        system: take_str(v, "system").map(|s| term().system_uri(&s)),
        code: take_str(v, "code"),
    }
}

pub fn take_quantity(v: &mut Value, key: &str) -> Option<Quantity> {
    member(v, key).map(quantity)
}

fn ext_string(e: Option<Value>) -> Option<String> {
    e.and_then(|mut e| take_str(&mut e, "valueString").or_else(|| take_str(&mut e, "valueCode")))
}

pub fn human_name(v: &mut Value) -> HumanName {
    let mut n = HumanName {
        use_: take_str(v, "use"),
        text: take_str(v, "text"),
        family: take_str(v, "family"),
        prefix: take_strings(v, "prefix"),
        suffix: take_strings(v, "suffix"),
        assembly_order: ext_string(take_extension(v, ext::ASSEMBLY_ORDER)),
        ..Default::default()
    };
    if let Some(f) = member(v, "_family") {
        n.own_name = ext_string(take_extension(f, ext::OWN_NAME));
        n.own_prefix = ext_string(take_extension(f, ext::OWN_PREFIX));
        n.partner_name = ext_string(take_extension(f, ext::PARTNER_NAME));
        n.partner_prefix = ext_string(take_extension(f, ext::PARTNER_PREFIX));
    }
    // given[] with a parallel _given[] of qualifiers (CL call name, IN initials, BR birth)
    let qualifiers: Vec<Option<String>> = match v.get_mut("_given").and_then(Value::as_array_mut) {
        Some(a) => a.iter_mut().map(|g| ext_string(take_extension(g, ext::EN_QUALIFIER))).collect(),
        None => vec![],
    };
    for (i, g) in take_strings(v, "given").into_iter().enumerate() {
        let kind = match qualifiers.get(i).and_then(|q| q.as_deref()) {
            Some("CL") => GivenKind::Call,
            Some("IN") => GivenKind::Initial,
            _ if g.ends_with('.') && g.len() <= 3 => GivenKind::Initial,
            _ => GivenKind::Given,
        };
        n.given.push(GivenName { value: g, kind });
    }
    // When the family name is only given as own name, keep the parts and drop the duplicate.
    if n.family.is_some() && n.partner_name.is_none() && n.own_prefix.is_none() && n.own_name == n.family {
        n.family = None;
    }
    n
}

pub fn address(v: &mut Value) -> Address {
    let mut a = Address {
        use_: take_str(v, "use"),
        type_: take_str(v, "type"),
        text: take_str(v, "text"),
        postal_code: take_str(v, "postalCode"),
        city: take_str(v, "city"),
        municipality: take_str(v, "district"),
        country: take_str(v, "country"),
        ..Default::default()
    };
    if let Some(mut e) = take_extension(v, EXT_ADDRESS_TYPE) {
        a.zib_type = take_concept(&mut e, "valueCodeableConcept").and_then(|c| c.codings.into_iter().next());
    }
    if let Some(c) = code_specification(v, "country") {
        a.country_code = c.codings.into_iter().next();
    }
    if let Some(d) = member(v, "_district") {
        if let Some(m) = ext_string(take_extension(d, EXT_MUNICIPALITY)) {
            a.municipality.get_or_insert(m);
        }
    }
    let mut parts_found = false;
    if let Some(lines) = v.get_mut("_line").and_then(Value::as_array_mut) {
        if let Some(l) = lines.first_mut() {
            a.street = ext_string(take_extension(l, ext::ADXP_STREET));
            a.house_number = ext_string(take_extension(l, ext::ADXP_HOUSE_NUMBER));
            a.house_number_letter = ext_string(take_extension(l, ext::ADXP_BUILDING_SUFFIX));
            a.house_number_addition = ext_string(take_extension(l, ext::ADXP_UNIT_ID));
            a.additional_info = ext_string(take_extension(l, ext::ADXP_ADDITIONAL));
            parts_found = a.street.is_some() || a.house_number.is_some();
        }
    }
    let lines = take_strings(v, "line");
    if !(parts_found && lines.len() == 1) {
        a.lines = lines;
    }
    a
}

pub fn telecom(v: &mut Value) -> Option<Telecom> {
    let mut t = Telecom {
        system: take_str(v, "system").unwrap_or_else(|| "other".into()),
        value: take_str(v, "value")?,
        use_: take_str(v, "use"),
        zib_type: None,
    };
    if let Some(mut e) = take_extension(v, EXT_TELECOM_TYPE) {
        t.zib_type = take_concept(&mut e, "valueCodeableConcept").and_then(|c| c.codings.into_iter().next());
    }
    consume(v, "rank");
    Some(t)
}

pub fn names(v: &mut Value, key: &str) -> Vec<HumanName> {
    elements(v, key).into_iter().map(|(_, n)| human_name(n)).collect()
}
pub fn addresses(v: &mut Value, key: &str) -> Vec<Address> {
    elements(v, key).into_iter().map(|(_, a)| address(a)).collect()
}
pub fn telecoms(v: &mut Value, key: &str) -> Vec<Telecom> {
    elements(v, key).into_iter().filter_map(|(_, t)| telecom(t)).collect()
}

/// The key a FHIR reference points at: `Type/id` (absolute URLs and `_history` are cut
/// down to that), or `#id` for contained resources (made unique by the caller's key).
pub fn reference_key(reference: &str, container: &str) -> Option<Key> {
    if let Some(local) = reference.strip_prefix('#') {
        return Some(format!("{container}#{local}"));
    }
    if reference.starts_with("urn:uuid:") || reference.starts_with("urn:oid:") {
        return Some(reference.to_owned());
    }
    let r = reference.split("/_history/").next().unwrap_or(reference);
    let parts: Vec<&str> = r.trim_end_matches('/').rsplitn(3, '/').collect();
    match parts.as_slice() {
        [id, ty, ..] if ty.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && !id.is_empty() => {
            Some(format!("{ty}/{id}"))
        }
        _ => None,
    }
}

/// A reference. A MedMij `practitionerrole-reference` extension next to a Practitioner
/// reference wins: nl-core (R4) refers to the PractitionerRole.
pub fn reference(v: &mut Value, container: &str) -> Ref {
    let mut r = Ref::default();
    if let Some(mut e) = take_extension(v, EXT_PRACTITIONERROLE_REF) {
        if let Some(inner) = member(&mut e, "valueReference") {
            let role = reference(inner, container);
            if role.key.is_some() {
                take_str(v, "reference");
                r.display = take_str(v, "display").or(role.display);
                r.key = role.key;
                r.identifier = member(v, "identifier").and_then(identifier);
                return r;
            }
        }
    }
    if let Some(s) = v.get("reference").and_then(Value::as_str) {
        if let Some(k) = reference_key(s, container) {
            r.key = Some(k);
            take(v, "reference");
        }
    }
    r.display = take_str(v, "display");
    r.identifier = member(v, "identifier").and_then(identifier);
    consume(v, "type");
    r
}

pub fn take_reference(v: &mut Value, key: &str, container: &str) -> Option<Ref> {
    let r = reference(member(v, key)?, container);
    (r.key.is_some() || r.display.is_some() || r.identifier.is_some()).then_some(r)
}

pub fn take_references(v: &mut Value, key: &str, container: &str) -> Vec<Ref> {
    elements(v, key)
        .into_iter()
        .map(|(_, r)| reference(r, container))
        .filter(|r| r.key.is_some() || r.display.is_some() || r.identifier.is_some())
        .collect()
}

/// Annotation texts (`note[]`), or a plain string member.
pub fn notes(v: &mut Value, key: &str) -> Vec<String> {
    if let Some(s) = take_str(v, key) {
        return vec![s];
    }
    elements(v, key)
        .into_iter()
        .filter_map(|(_, n)| {
            let t = take_str(n, "text");
            if t.is_some() {
                consume(n, "time");
                consume(n, "authorString");
                if let Some(a) = member(n, "authorReference") {
                    // authorship of a note is not carried over; its text is
                    take(a, "reference");
                    take(a, "display");
                }
            }
            t
        })
        .collect()
}

/// A FHIR observation/component value[x].
pub fn obs_value(v: &mut Value, path: &str, out: &mut crate::diagnostics::Outcome) -> Option<ObsValue> {
    if let Some(q) = take_quantity(v, "valueQuantity") {
        return Some(ObsValue::Quantity(q));
    }
    if let Some(c) = take_concept(v, "valueCodeableConcept") {
        return Some(ObsValue::Concept(c));
    }
    if let Some(s) = take_str(v, "valueString") {
        return Some(ObsValue::Text(s));
    }
    if let Some(b) = take_bool(v, "valueBoolean") {
        return Some(ObsValue::Boolean(b));
    }
    if let Some(i) = take_i64(v, "valueInteger") {
        return Some(ObsValue::Integer(i));
    }
    if let Some(w) = when(v, "valueDateTime", path, out) {
        return Some(ObsValue::DateTime(w));
    }
    if v.get("valuePeriod").is_some() {
        return Some(ObsValue::Period(period(v, "valuePeriod", path, out)));
    }
    None
}

pub fn dosage(v: &mut Value) -> Dosage {
    let mut d = Dosage {
        sequence: take_i64(v, "sequence"),
        text: take_str(v, "text"),
        additional_instructions: take_concepts(v, "additionalInstruction"),
        as_needed: take_bool(v, "asNeededBoolean"),
        as_needed_for: take_concept(v, "asNeededCodeableConcept"),
        route: take_concept(v, "route"),
        dose: take_quantity(v, "doseQuantity"),
        ..Default::default()
    };
    if let Some(t) = member(v, "timing") {
        if let Some(r) = member(t, "repeat") {
            d.frequency = take_i64(r, "frequency").and_then(|f| u32::try_from(f).ok());
            d.period = take_number(r, "period").and_then(|p| Decimal::parse(&p));
            d.period_unit = take_str(r, "periodUnit");
            if let Some(b) = member(r, "boundsPeriod") {
                let mut p = Period::default();
                // A bound that does not parse stays in place and is reported.
                for (key, slot) in [("start", &mut p.start), ("end", &mut p.end)] {
                    if let Some(w) = b.get(key).and_then(Value::as_str).and_then(|s| When::parse(s).ok()) {
                        take(b, key);
                        *slot = Some(w);
                    }
                }
                if !p.is_empty() {
                    d.bounds = Some(p);
                }
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_keys() {
        assert_eq!(reference_key("Patient/abc", "X").as_deref(), Some("Patient/abc"));
        assert_eq!(
            reference_key("https://x.org/fhir/STU3/Patient/e.1/_history/2", "X").as_deref(),
            Some("Patient/e.1")
        );
        assert_eq!(reference_key("#p1", "DocumentReference/d").as_deref(), Some("DocumentReference/d#p1"));
        assert_eq!(reference_key("nonsense", "X"), None);
    }

    #[test]
    fn dutch_names_and_addresses() {
        let mut n = json!({"use": "official", "family": "Patient-4", "given": ["Piet", "P."],
            "_given": [{"extension": [{"url": ext::EN_QUALIFIER, "valueCode": "CL"}]}, {"extension": [{"url": ext::EN_QUALIFIER, "valueCode": "IN"}]}],
            "_family": {"extension": [{"url": ext::OWN_NAME, "valueString": "Patient-4"}]}});
        let name = human_name(&mut n);
        assert_eq!(name.own_name.as_deref(), Some("Patient-4"));
        assert_eq!(name.family_name().as_deref(), Some("Patient-4"));
        assert_eq!(name.given[0].kind, GivenKind::Call);
        assert_eq!(name.given[1].kind, GivenKind::Initial);

        let mut a = json!({"line": ["Teststraat 2 L"], "_line": [{"extension": [
            {"url": ext::ADXP_STREET, "valueString": "Teststraat"}, {"url": ext::ADXP_HOUSE_NUMBER, "valueString": "2"},
            {"url": ext::ADXP_BUILDING_SUFFIX, "valueString": "L"}]}], "postalCode": "1234LL"});
        let addr = address(&mut a);
        assert_eq!(addr.street.as_deref(), Some("Teststraat"));
        assert_eq!(addr.house_number_letter.as_deref(), Some("L"));
        assert!(addr.lines.is_empty());
    }

    #[test]
    fn stu3_systems_are_normalised() {
        let mut c = json!({"coding": [{"system": "http://hl7.org/fhir/v3/ObservationInterpretation", "code": "A"}]});
        let c = concept(&mut c);
        assert_eq!(
            c.codings[0].system.as_deref(),
            Some("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation")
        );
    }
}
