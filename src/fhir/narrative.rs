//! A generated Dutch narrative for every emitted resource.
//!
//! A receiver without nl-core rendering (a plain FHIR viewer, a server's HTML view) shows
//! `text.div` and nothing else, so every resource we emit carries one: a heading with the
//! zib's Dutch name and a table of what the resource says, made from the resource itself
//! (after mapping, so it never says more or less than the structured data). `text.status` is
//! `generated`. Every value is escaped: the div is safe XHTML whatever the source contained.
//! A resource passed on from an R4 source keeps its own narrative when it has one.

use serde_json::{json, Value};

const XHTML: &str = "http://www.w3.org/1999/xhtml";

/// (label, path) rows per resource type. A path is dot-separated; a trailing `*` matches a
/// choice element (`value*` is valueQuantity, valueString, ...).
fn rows(resource_type: &str) -> &'static [(&'static str, &'static str)] {
    match resource_type {
        "Patient" => &[
            ("Naam", "name"),
            ("Identificatie", "identifier"),
            ("Geslacht", "gender"),
            ("Geboortedatum", "birthDate"),
            ("Overleden", "deceased*"),
            ("Adres", "address"),
            ("Contactgegevens", "telecom"),
            ("Huisarts", "generalPractitioner"),
        ],
        "Practitioner" => &[
            ("Naam", "name"),
            ("Identificatie", "identifier"),
            ("Kwalificatie", "qualification.code"),
            ("Contactgegevens", "telecom"),
        ],
        "PractitionerRole" => &[
            ("Zorgverlener", "practitioner"),
            ("Specialisme", "specialty"),
            ("Rol", "code"),
            ("Organisatie", "organization"),
        ],
        "Organization" => &[("Naam", "name"), ("Identificatie", "identifier"), ("Type", "type"), ("Adres", "address")],
        "RelatedPerson" => &[("Naam", "name"), ("Relatie", "relationship"), ("Contactgegevens", "telecom")],
        "Condition" => &[
            ("Probleem", "code"),
            ("Soort", "category"),
            ("Status", "clinicalStatus"),
            ("Verificatie", "verificationStatus"),
            ("Begin", "onset*"),
            ("Einde", "abatement*"),
            ("Toelichting", "note.text"),
        ],
        "EpisodeOfCare" => &[
            ("Episode", "extension.valueString"),
            ("Code", "type"),
            ("Status", "status"),
            ("Periode", "period"),
            ("Eerste/laatste contact", "extension.valueDateTime"),
            ("Diagnose", "diagnosis.condition"),
        ],
        "Encounter" => &[
            ("Soort contact", "type"),
            ("Status", "status"),
            ("Periode", "period"),
            ("Deelnemer", "participant.individual"),
            ("Reden", "reasonCode"),
            ("Diagnose", "diagnosis.condition"),
        ],
        "Composition" => &[("Titel", "title"), ("Datum", "date"), ("Auteur", "author"), ("Regels", "section.title")],
        "Observation" => &[
            ("Bepaling", "code"),
            ("Uitslag", "value*"),
            ("Onderdelen", "component"),
            ("Datum", "effective*"),
            ("Interpretatie", "interpretation"),
            ("Referentiewaarde", "referenceRange"),
            ("Geen waarde", "dataAbsentReason"),
            ("Code", "extension.valueCodeableConcept"),
            ("Status", "status"),
            ("Toelichting", "note.text"),
        ],
        "DiagnosticReport" => &[
            ("Onderzoek", "code"),
            ("Uitslag", "conclusion"),
            ("Conclusie", "conclusionCode"),
            ("Datum", "effective*"),
            ("Status", "status"),
        ],
        "AllergyIntolerance" => &[
            ("Stof", "code"),
            ("Categorie", "category"),
            ("Ernst", "criticality"),
            ("Status", "clinicalStatus"),
            ("Reactie", "reaction.manifestation"),
            ("Begin", "onset*"),
            ("Toelichting", "note.text"),
        ],
        "Flag" => &[("Alert", "code"), ("Soort", "category"), ("Status", "status"), ("Periode", "period")],
        "Medication" => &[("Product", "code"), ("Vorm", "form"), ("Ingrediënt", "ingredient.item*")],
        "MedicationRequest" => &[
            ("Geneesmiddel", "medication*"),
            ("Status", "status"),
            ("Gebruiksinstructie", "dosageInstruction.text"),
            ("Gebruiksperiode", "extension.valuePeriod"),
            ("Afleveren", "dispenseRequest.quantity"),
            ("Voorgeschreven op", "authoredOn"),
            ("Voorschrijver", "requester"),
            ("Reden", "reasonCode"),
            ("Toelichting", "note.text"),
        ],
        "MedicationStatement" => &[
            ("Geneesmiddel", "medication*"),
            ("Status", "status"),
            ("Gebruiksperiode", "effectivePeriod"),
            ("Dosering", "dosage.text"),
            ("Reden", "reasonCode"),
        ],
        "Immunization" => {
            &[("Vaccin", "vaccineCode"), ("Datum", "occurrence*"), ("Status", "status"), ("Toelichting", "note.text")]
        }
        "Consent" => &[
            ("Behandeling", "provision.code"),
            ("Toegestaan", "provision.type"),
            ("Uitzondering", "provision.provision.code"),
            ("Uitzondering toegestaan", "provision.provision.type"),
            ("Soort wilsverklaring", "category"),
            ("Datum", "dateTime"),
            ("Status", "status"),
        ],
        "ServiceRequest" => &[
            ("Gevraagde zorg", "code"),
            ("Reden", "reasonCode"),
            ("Datum", "authoredOn"),
            ("Verwijzer", "requester"),
            ("Toelichting", "note.text"),
        ],
        "DocumentReference" => &[
            ("Soort document", "type"),
            ("Beschrijving", "description"),
            ("Titel", "content.attachment.title"),
            ("Datum", "date"),
        ],
        _ => &[("Code", "code"), ("Status", "status")],
    }
}

/// The zib's Dutch name for a resource, by its profile (falls back to the resource type).
fn title(resource: &Value, resource_type: &str) -> &'static str {
    let profile = resource.pointer("/meta/profile/0").and_then(Value::as_str).unwrap_or("");
    let zib = profile.rsplit('/').next().unwrap_or("");
    let by_profile = match zib {
        "nl-core-SOAPReport.SOAPLine" => Some("SOEP-regel"),
        "nl-core-SOAPReport" => Some("Contactverslag (SOEP)"),
        "nl-core-LaboratoryTestResult" => Some("Uitslag"),
        "nl-core-TextResult" => Some("Tekstuitslag"),
        "nl-core-BloodPressure" => Some("Bloeddruk"),
        "nl-core-BodyWeight" => Some("Lichaamsgewicht"),
        "nl-core-BodyHeight" => Some("Lichaamslengte"),
        "nl-core-BodyTemperature" => Some("Lichaamstemperatuur"),
        "nl-core-HeartRate" => Some("Hartfrequentie"),
        "nl-core-O2Saturation" => Some("O2-saturatie"),
        "nl-core-TreatmentDirective2" => Some("Behandelaanwijzing"),
        "nl-core-AdvanceDirective" => Some("Wilsverklaring"),
        "nl-core-LegalSituation-LegalStatus" => Some("Juridische status"),
        "nl-core-LegalSituation-Representation" => Some("Vertegenwoordiging"),
        "nl-core-Alert" => Some("Alert"),
        _ => None,
    };
    by_profile.unwrap_or(match resource_type {
        "Patient" => "Patiënt",
        "Practitioner" => "Zorgverlener",
        "PractitionerRole" => "Zorgverlenersrol",
        "Organization" => "Zorgaanbieder",
        "RelatedPerson" => "Contactpersoon",
        "Condition" => "Probleem",
        "EpisodeOfCare" => "Episode",
        "Encounter" => "Contact",
        "Composition" => "Verslag",
        "Observation" => "Observatie",
        "DiagnosticReport" => "Uitslag",
        "AllergyIntolerance" => "Allergie/intolerantie",
        "Flag" => "Alert",
        "Medication" => "Farmaceutisch product",
        "MedicationRequest" => "Medicatieafspraak",
        "MedicationStatement" => "Medicatiegebruik",
        "Immunization" => "Vaccinatie",
        "Consent" => "Wilsverklaring",
        "ServiceRequest" => "Verwijzing",
        "DocumentReference" => "Document",
        _ => "Gegevens",
    })
}

/// Adds a generated narrative unless the resource has one already.
pub fn add(resource: &mut Value) {
    if resource.get("text").is_some() {
        return;
    }
    let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
        return;
    };
    let div = render(resource, rt);
    if let Some(m) = resource.as_object_mut() {
        m.insert("text".into(), json!({"status": "generated", "div": div}));
    }
}

fn render(resource: &Value, rt: &str) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("<div xmlns=\"");
    out.push_str(XHTML);
    out.push_str("\"><p><b>");
    escape_into(title(resource, rt), &mut out);
    out.push_str("</b></p>");
    let mut any = false;
    for (label, path) in rows(rt) {
        let mut values = Vec::new();
        collect(resource, path, &mut values);
        values.retain(|v| !v.is_empty());
        values.dedup();
        if values.is_empty() {
            continue;
        }
        if !any {
            out.push_str("<table>");
            any = true;
        }
        out.push_str("<tr><th>");
        escape_into(label, &mut out);
        out.push_str("</th><td>");
        escape_into(&values.join("; "), &mut out);
        out.push_str("</td></tr>");
    }
    if any {
        out.push_str("</table>");
    }
    out.push_str("</div>");
    out
}

/// The display texts at `path` (arrays are followed).
fn collect(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Array(a) => {
            for x in a {
                collect(x, path, out);
            }
            return;
        }
        Value::Object(_) => {}
        _ => return,
    }
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let Some(m) = v.as_object() else { return };
    let children: Vec<(&String, &Value)> = match head.strip_suffix('*') {
        Some(stem) => m.iter().filter(|(k, _)| k.starts_with(stem) && k.len() > stem.len()).collect(),
        None => m.get_key_value(head).into_iter().collect(),
    };
    for (key, child) in children {
        match rest {
            Some(r) => collect(child, r, out),
            None => show(key, child, out),
        }
    }
}

/// One element as text.
fn show(key: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| show(key, x, out)),
        Value::String(s) if s.len() > 16 && s.as_bytes().get(10) == Some(&b'T') => out.push(date_part(s)),
        Value::String(s) => out.push(code_text(key, s)),
        Value::Bool(b) => out.push(if *b { "ja" } else { "nee" }.to_owned()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Object(_) => out.push(complex(v)),
        Value::Null => {}
    }
}

/// Dutch words for the codes a reader meets most.
fn code_text(key: &str, s: &str) -> String {
    let w = match (key, s) {
        ("gender", "male") => "man",
        ("gender", "female") => "vrouw",
        ("gender", "other") => "anders",
        ("gender", "unknown") => "onbekend",
        ("type", "permit") => "ja",
        ("type", "deny") => "nee",
        ("status", "active") => "actief",
        ("status", "inactive") => "niet actief",
        ("status", "finished") => "afgerond",
        ("status", "completed") => "afgerond",
        ("status", "final") => "definitief",
        ("status", "preliminary") => "voorlopig",
        ("status", "stopped") => "gestopt",
        ("status", "cancelled") => "geannuleerd",
        ("status", "entered-in-error") => "foutief ingevoerd",
        ("status", "unknown") => "onbekend",
        ("criticality", "high") => "hoog",
        ("criticality", "low") => "laag",
        // FHIR status codings without a display (condition, allergy)
        ("coding", "active") => "actief",
        ("coding", "inactive") => "niet actief",
        ("coding", "resolved") => "genezen",
        ("coding", "recurrence") => "recidief",
        ("coding", "remission") => "in remissie",
        ("coding", "confirmed") => "bevestigd",
        ("coding", "provisional") => "voorlopig",
        ("coding", "unconfirmed") => "onbevestigd",
        ("coding", "refuted") => "weerlegd",
        ("coding", "differential") => "differentiaaldiagnose",
        _ => return s.to_owned(),
    };
    w.to_owned()
}

fn complex(v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    // CodeableConcept
    if v.get("coding").is_some() || (v.get("text").is_some() && v.as_object().is_some_and(|m| m.len() <= 2)) {
        if let Some(t) = s("text") {
            return t.to_owned();
        }
        let codings = v.get("coding").and_then(Value::as_array).into_iter().flatten();
        let parts: Vec<String> = codings
            .filter_map(|c| {
                let code = c.get("code").and_then(Value::as_str).map(|x| code_text("coding", x));
                c.get("display").and_then(Value::as_str).map(str::to_owned).or(code)
            })
            .collect();
        return parts.into_iter().next().unwrap_or_default();
    }
    // Reference: only what a person can read
    if v.get("reference").is_some() || v.get("type").is_some_and(Value::is_string) && v.get("display").is_some() {
        return s("display").unwrap_or("").to_owned();
    }
    // Quantity
    if let Some(n) = v.get("value").filter(|x| x.is_number()) {
        let unit = s("unit").or(s("code")).unwrap_or("");
        let cmp = s("comparator").unwrap_or("");
        return format!("{cmp}{n} {unit}").trim().to_owned();
    }
    // Period
    if v.get("start").is_some() || v.get("end").is_some() {
        let start = s("start").map(date_part).unwrap_or_else(|| "…".into());
        let end = s("end").map(date_part).unwrap_or_else(|| "…".into());
        return format!("{start} – {end}");
    }
    // HumanName
    if v.get("family").is_some() || v.get("given").is_some() {
        if let Some(t) = s("text") {
            return t.to_owned();
        }
        let given: Vec<&str> =
            v.get("given").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        return format!("{} {}", given.join(" "), s("family").unwrap_or("")).trim().to_owned();
    }
    // Address
    if v.get("line").is_some() || v.get("city").is_some() {
        let lines: Vec<&str> =
            v.get("line").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let mut parts = vec![lines.join(" ")];
        parts.push(format!("{} {}", s("postalCode").unwrap_or(""), s("city").unwrap_or("")).trim().to_owned());
        if let Some(c) = s("country") {
            parts.push(c.to_owned());
        }
        return parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(", ");
    }
    // ContactPoint, Identifier
    if let Some(val) = s("value") {
        return val.to_owned();
    }
    // Range, reference range
    if v.get("low").is_some() || v.get("high").is_some() {
        let low = v.get("low").map(complex).unwrap_or_default();
        let high = v.get("high").map(complex).unwrap_or_default();
        return format!("{low} – {high}");
    }
    // A component: its code and value
    if let Some(code) = v.get("code") {
        let mut parts = vec![complex(code)];
        if let Some((_, val)) = v.as_object().and_then(|m| m.iter().find(|(k, _)| k.starts_with("value"))) {
            let mut x = vec![];
            show("value", val, &mut x);
            parts.extend(x);
        }
        return parts.join(": ");
    }
    s("text").unwrap_or("").to_owned()
}

/// `2024-03-01T10:15:00+01:00` → `2024-03-01 10:15` (dates as they are).
fn date_part(s: &str) -> String {
    match s.get(..16) {
        Some(head) if s.len() > 16 && s.as_bytes().get(10) == Some(&b'T') => head.replacen('T', " ", 1),
        _ => s.to_owned(),
    }
}

/// Escapes text for XHTML element content and quoted attribute values (control characters,
/// which XHTML does not allow, become spaces). The one HTML escape of the crate.
pub fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_the_div_is_xhtml() {
        let mut r = json!({
            "resourceType": "Condition",
            "meta": {"profile": ["http://nictiz.nl/fhir/StructureDefinition/nl-core-Problem"]},
            "code": {"text": "<script>alert('x')</script> & co"},
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "onsetDateTime": "2024-03-01T10:15:00+01:00",
            "note": [{"text": "\"quoted\""}]
        });
        add(&mut r);
        assert_eq!(r["text"]["status"], "generated");
        let div = r["text"]["div"].as_str().expect("div");
        assert!(div.starts_with("<div xmlns=\"http://www.w3.org/1999/xhtml\">"), "{div}");
        assert!(!div.contains("<script>"), "{div}");
        assert!(div.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"), "{div}");
        assert!(div.contains("<th>Begin</th><td>2024-03-01 10:15</td>"), "{div}");
        assert!(div.contains("&quot;quoted&quot;"), "{div}");
        // Well-formed: every opened tag closes (a tiny check without an XML parser).
        for tag in ["div", "p", "b", "table", "tr", "th", "td"] {
            assert_eq!(div.matches(&format!("<{tag}")).count(), div.matches(&format!("</{tag}>")).count(), "{tag}");
        }
    }

    #[test]
    fn an_existing_narrative_is_kept() {
        let mut r = json!({"resourceType": "Patient", "text": {"status": "extensions", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}});
        add(&mut r);
        assert_eq!(r["text"]["status"], "extensions");
    }

    #[test]
    fn a_patient_reads_in_dutch() {
        let mut r = json!({"resourceType": "Patient", "name": [{"given": ["Anna"], "family": "Bakker"}], "gender": "female", "birthDate": "1938-04-12"});
        add(&mut r);
        let div = r["text"]["div"].as_str().expect("div");
        assert!(div.contains("<b>Patiënt</b>"), "{div}");
        assert!(div.contains("<td>Anna Bakker</td>"), "{div}");
        assert!(div.contains("<td>vrouw</td>"), "{div}");
    }
}
