//! One function per zib concept: how a model item becomes its nl-core resource(s).

use serde_json::{json, Value};

use super::datatypes::*;
use super::{meta, nl_core, Emitter, OVERDRACHT_BASE};
use crate::diagnostics::{Issue, IssueCode};
use crate::model::*;
use crate::terminology::{maps, uri};

const EXT_COMMENT: &str = "http://nictiz.nl/fhir/StructureDefinition/ext-Comment";
const EXT_CONTEXT_EPISODE: &str = "http://nictiz.nl/fhir/StructureDefinition/ext-Context-EpisodeOfCare";
const EXT_EPISODE_NAME: &str = "http://nictiz.nl/fhir/StructureDefinition/ext-EpisodeOfCare.EpisodeOfCareName";
const EXT_SOAP_LINE_CODE: &str = "http://nictiz.nl/fhir/StructureDefinition/ext-SOAPReport.SOAPLineCode";
const EXT_FLAG_DETAIL: &str = "http://hl7.org/fhir/StructureDefinition/flag-detail";
const EXT_EPISODE_FIRST: &str = "http://nictiz.nl/fhir/StructureDefinition/EpisodeOfCare-DateFirstEncounter";
const EXT_EPISODE_LAST: &str = "http://nictiz.nl/fhir/StructureDefinition/EpisodeOfCare-DateLastEncounter";
const EXT_AD_DISORDER: &str = "http://nictiz.nl/fhir/StructureDefinition/ext-AdvanceDirective.Disorder";
const EXT_PRODUCT_DESCRIPTION: &str = "http://nictiz.nl/fhir/StructureDefinition/ext-PharmaceuticalProduct.Description";
const EXT_DATA_ABSENT: &str = "http://hl7.org/fhir/StructureDefinition/data-absent-reason";
const EXT_TIME_INTERVAL_DURATION: &str = "http://nictiz.nl/fhir/StructureDefinition/ext-TimeInterval.Duration";
const EXT_TIME_INTERVAL_PERIOD: &str = "http://nictiz.nl/fhir/StructureDefinition/ext-TimeInterval.Period";
const EXT_PHARMACEUTICAL_TREATMENT: &str =
    "http://nictiz.nl/fhir/StructureDefinition/ext-PharmaceuticalTreatment.Identifier";
const MP_AGREEMENT: &str = "http://nictiz.nl/fhir/StructureDefinition/mp-MedicationAgreement";
const MP_USE: &str = "http://nictiz.nl/fhir/StructureDefinition/mp-MedicationUse2";
const OBS_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

fn ext_attention() -> String {
    format!("{OVERDRACHT_BASE}/StructureDefinition/ext-EpisodeOfCare.Attention")
}

pub(super) fn patient(e: &mut Emitter, p: &Patient, id: &str) -> Value {
    if let Some(r4) = &p.r4 {
        return pass_through(e, r4, id, DataCategory::Identification);
    }
    let mut o = Obj::with("Patient");
    o.set("id", json!(id)).set("meta", meta(&nl_core("Patient"), DataCategory::Identification));
    let mut ids = vec![];
    if let Some(b) = &p.bsn {
        ids.push(identifier(&Identifier::new(uri::BSN, b.as_str())));
    }
    ids.extend(p.identifiers.iter().map(identifier));
    o.set("identifier", array(ids));
    o.set("name", names(&p.names)).set("telecom", telecoms(&p.telecoms));
    if let Some(g) = p.gender {
        o.set("gender", json!(g.fhir_code()));
        if let Some(c) = &p.gender_code {
            o.set("_gender", code_specification(c));
        }
    }
    o.opt("birthDate", p.birth_date.as_ref().map(|w| json!(date_only(w))));
    match (&p.deceased_at, p.deceased) {
        (Some(w), _) => o.set("deceasedDateTime", json!(w.to_fhir())),
        (None, Some(b)) => o.set("deceasedBoolean", json!(b)),
        _ => &mut o,
    };
    o.set("address", addresses(&p.addresses));
    o.opt("maritalStatus", opt_concept(&p.marital_status));
    o.opt("active", p.active);
    let mut exts = vec![];
    if let Some(b) = &p.birth_place {
        exts.push(ext("http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress", address(b)));
    }
    if let Some(s) = &p.sex_for_clinical_use {
        exts.push(json!({
            "url": "http://hl7.org/fhir/StructureDefinition/patient-sexParameterForClinicalUse",
            "extension": [{"url": "value", "valueCodeableConcept": concept(s)}]
        }));
    }
    o.set("extension", array(exts));
    o.opt("multipleBirthBoolean", p.multiple_birth);
    o.set("communication", array(p.languages.iter().map(|l| json!({"language": concept(l)}))));
    let gps = e.references(&p.general_practitioner);
    o.set("generalPractitioner", gps);
    let org = e.opt_reference(&p.managing_organization);
    o.opt("managingOrganization", org);
    o.build()
}

/// A birth date is a FHIR `date`: a full date-time source value is cut to its date.
fn date_only(w: &When) -> String {
    match w {
        When::DateTime(dt, _) => dt.format("%Y-%m-%d").to_string(),
        other => other.to_fhir(),
    }
}

type Out = Vec<(Value, String, &'static str)>;

pub(super) fn item(e: &mut Emitter, item: &Item, ty: &str, id: &str) -> Out {
    let cat = item.category();
    let base = |profile: &str| {
        let mut o = Obj::with(ty);
        o.set("id", json!(id)).set("meta", meta(profile, cat));
        o
    };
    use ItemConcept as C;
    let single = |v: Value, name: &'static str| vec![(v, id.to_owned(), name)];
    match &item.concept {
        C::HealthProfessional(h) => {
            let mut o = base(&nl_core("HealthProfessional-Practitioner"));
            o.set("identifier", identifiers(&h.identifiers))
                .set("name", names(&h.names))
                .set("telecom", telecoms(&h.telecoms));
            o.set("address", addresses(&h.addresses));
            o.opt("gender", h.gender.map(|g| json!(g.fhir_code())));
            o.opt("birthDate", h.birth_date.as_ref().map(|w| json!(date_only(w))));
            let mut quals = vec![];
            for q in &h.qualifications {
                let mut x = Obj::new();
                x.set("identifier", identifiers(&q.identifiers));
                x.set("code", code_or_absent(&q.code));
                x.set("period", period(&q.period));
                let issuer = e.opt_reference(&q.issuer);
                x.opt("issuer", issuer);
                quals.push(x.build());
            }
            o.set("qualification", array(quals));
            single(o.build(), "HealthProfessional")
        }
        C::ProfessionalRole(r) => {
            let mut o = base(&nl_core("HealthProfessional-PractitionerRole"));
            o.set("identifier", identifiers(&r.identifiers));
            let p = e.opt_reference(&r.practitioner);
            o.opt("practitioner", p);
            let org = e.opt_reference(&r.organization);
            o.opt("organization", org);
            // nl-core puts the UZI role code (like the Vektis specialism) in `specialty`.
            let is_uzi_role = |c: &&Concept| c.coding_in(uri::UZI_ROLE).is_some();
            o.set("code", array(r.roles.iter().filter(|c| !is_uzi_role(c)).map(concept)));
            o.set("specialty", array(r.specialties.iter().chain(r.roles.iter().filter(is_uzi_role)).map(concept)));
            o.set("telecom", telecoms(&r.telecoms));
            single(o.build(), "HealthProfessionalRole")
        }
        C::HealthcareProvider(h) => {
            let mut o = base(&nl_core("HealthcareProvider-Organization"));
            o.set("identifier", identifiers(&h.identifiers));
            o.set("type", array(h.types.iter().map(concept)));
            o.str("name", h.name.as_deref());
            o.set("telecom", telecoms(&h.telecoms)).set("address", addresses(&h.addresses));
            let part = e.opt_reference(&h.part_of);
            o.opt("partOf", part);
            single(o.build(), "HealthcareProvider")
        }
        C::ContactPerson(c) => {
            let mut o = base(&nl_core("ContactPerson"));
            o.set("identifier", identifiers(&c.identifiers));
            o.set("patient", e.subject());
            o.set("relationship", array(c.roles.iter().chain(&c.relationships).map(concept)));
            o.set("name", names(&c.names)).set("telecom", telecoms(&c.telecoms));
            o.opt("gender", c.gender.map(|g| json!(g.fhir_code())));
            o.set("address", addresses(&c.addresses));
            single(o.build(), "ContactPerson")
        }
        C::Problem(p) => single(problem(e, p, base(&nl_core("Problem"))), "Problem"),
        C::LegalSituation(l) => {
            let (profile, category) = match l.kind {
                LegalKind::LegalStatus => {
                    ("LegalSituation-LegalStatus", Coding::new(uri::SNOMED, "303186005", Some("juridische status")))
                }
                LegalKind::Representation => {
                    ("LegalSituation-Representation", Coding::new(uri::SNOMED, "151701000146105", Some("type voogd")))
                }
            };
            let mut o = base(&nl_core(profile));
            o.set("identifier", identifiers(&l.identifiers));
            let active = l.period.end.is_none();
            o.set("clinicalStatus", json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": if active { "active" } else { "inactive" }}]}));
            o.set("category", json!([{"coding": [coding(&category)]}]));
            o.set("code", concept(&l.code));
            o.set("subject", e.subject());
            o.opt("onsetDateTime", when(&l.period.start)).opt("abatementDateTime", when(&l.period.end));
            if let Some(r) = &l.representative {
                let r = e.reference(r);
                o.set("asserter", r);
            }
            o.set("note", annotations(&l.notes));
            single(o.build(), "LegalSituation")
        }
        C::Episode(ep) => {
            let mut o = base(&nl_core("EpisodeOfCare"));
            let title = ep.title.clone().or_else(|| {
                ep.code
                    .as_ref()
                    .and_then(|c| c.text.clone().or_else(|| c.codings.first().and_then(|x| x.display.clone())))
            });
            let mut exts = vec![];
            if let Some(t) = &title {
                exts.push(ext(EXT_EPISODE_NAME, "valueString", json!(t)));
            }
            if let Some(a) = ep.attention {
                exts.push(ext(&ext_attention(), "valueBoolean", json!(a)));
            }
            exts.extend(ep.notes.iter().map(|n| ext(EXT_COMMENT, "valueString", json!(n))));
            // nl-core-EpisodeOfCare has no element for these zib dates: the zib extensions carry them.
            if let Some(w) = &ep.first_encounter {
                exts.push(ext(EXT_EPISODE_FIRST, "valueDateTime", json!(w.to_fhir())));
            }
            if let Some(w) = &ep.last_encounter {
                exts.push(ext(EXT_EPISODE_LAST, "valueDateTime", json!(w.to_fhir())));
            }
            o.set("extension", array(exts));
            o.set("identifier", identifiers(&ep.identifiers));
            o.set(
                "status",
                json!(ep.status.as_deref().unwrap_or(if ep.period.end.is_some() { "finished" } else { "active" })),
            );
            if let Some(c) = &ep.code {
                o.set("type", json!([concept(c)]));
            }
            // nl-core-EpisodeOfCare carries one diagnosis (the episode's concern): the first
            // linked problem. Further problems stay in the output as Conditions of their own.
            let mut diagnoses: Vec<Value> = vec![];
            for d in ep.diagnoses.iter().take(1) {
                let r = e.reference(d);
                if r.get("reference").is_some() || r.get("display").is_some() {
                    diagnoses.push(json!({"condition": r}));
                }
            }
            if ep.diagnoses.len() > 1 {
                e.outcome.push(
                    Issue::warning(
                        IssueCode::Incomplete,
                        format!(
                            "the episode links {} problems; nl-core-EpisodeOfCare carries one diagnosis, so only the first is linked (the others are still in the output)",
                            ep.diagnoses.len()
                        ),
                    )
                    .at(e.current_path.clone()),
                );
            }
            o.set("diagnosis", Value::Array(diagnoses));
            o.set("patient", e.subject());
            let org = e.opt_reference(&ep.organization);
            o.opt("managingOrganization", org);
            o.set("period", period(&ep.period));
            let cm = e.opt_reference(&ep.care_manager);
            o.opt("careManager", cm);
            single(o.build(), "EpisodeOfCare")
        }
        C::Contact(c) => {
            let mut o = base(&nl_core("Encounter"));
            o.set("identifier", identifiers(&c.identifiers));
            o.set("status", json!(c.status.as_deref().map(encounter_status).unwrap_or("unknown")));
            let class = c.class.clone().map(|mut x| {
                x.system = x.system.map(|s| e.term.system_uri(&s));
                x
            });
            o.set("class", class.map(|x| coding(&x)).unwrap_or_else(|| json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"})));
            o.set("type", array(c.types.iter().map(concept)));
            o.set("subject", e.subject());
            let eps = e.references(&c.episodes);
            o.set("episodeOfCare", eps);
            let parts: Vec<Value> = c.participants.iter().map(|p| json!({"individual": e.reference(p)})).collect();
            o.set("participant", array(parts));
            o.set("period", period(&c.period));
            o.set("reasonCode", array(c.reasons.iter().map(concept)));
            let mut diagnoses = vec![];
            for dx in &c.diagnoses {
                let r = e.reference(&dx.condition);
                if r.get("reference").is_none() && r.get("display").is_none() && r.get("identifier").is_none() {
                    continue;
                }
                let mut x = Obj::new();
                x.set("condition", r);
                x.opt("use", opt_concept(&dx.use_));
                x.opt("rank", dx.rank.filter(|n| *n > 0));
                diagnoses.push(x.build());
            }
            o.set("diagnosis", array(diagnoses));
            let sp = e.opt_reference(&c.service_provider);
            o.opt("serviceProvider", sp);
            single(o.build(), "Encounter")
        }
        C::JournalEntry(j) => journal(e, item, j, id),
        C::Observation(ob) if ob.kind == ObservationKind::TextResult => {
            single(text_result(e, ob, base(&nl_core("TextResult"))), "TextResult")
        }
        C::Observation(ob) => single(observation(e, ob, ty, id, cat), ob.kind.zib()),
        C::Allergy(a) => single(allergy(e, a, base(&nl_core("AllergyIntolerance"))), "AllergyIntolerance"),
        C::Alert(a) => {
            let mut o = base(&nl_core("Alert"));
            let mut exts = vec![];
            // Whether the alert's concern is in the output (flag-detail resolves to an entry).
            let mut detail_resolved = None;
            if let Some(d) = &a.detail {
                let r = e.reference(d);
                detail_resolved = Some(r.get("reference").is_some());
                exts.push(ext(EXT_FLAG_DETAIL, "valueReference", r));
            }
            exts.extend(a.notes.iter().map(|n| ext(EXT_COMMENT, "valueString", json!(n))));
            o.set("extension", array(exts));
            o.set("identifier", identifiers(&a.identifiers));
            o.set("status", json!(a.status.as_deref().unwrap_or("active")));
            o.set("category", array(alert_category(e, &a.category)));
            o.set("code", alert_code(&a.code, detail_resolved));
            o.set("subject", e.subject());
            o.set("period", period(&a.period));
            let au = e.opt_reference(&a.author);
            o.opt("author", au);
            single(o.build(), "Alert")
        }
        C::Product(p) => {
            let mut o = base(&nl_core("PharmaceuticalProduct"));
            if let Some(d) = &p.description {
                o.set("extension", json!([ext(EXT_PRODUCT_DESCRIPTION, "valueString", json!(d))]));
            }
            o.set("code", concept(&p.code));
            o.opt("form", opt_concept(&p.form));
            o.set("ingredient", array(p.ingredients.iter().map(|i| json!({"itemCodeableConcept": concept(&i.item)}))));
            single(o.build(), "PharmaceuticalProduct")
        }
        C::MedicationAgreement(m) => {
            single(medication_agreement(e, m, &item.key, base(MP_AGREEMENT)), "MedicationAgreement")
        }
        C::MedicationUse(m) => single(medication_use(e, m, base(MP_USE)), "MedicationUse"),
        C::Vaccination(v) => {
            let mut o = base(&nl_core("Vaccination-event"));
            o.set("identifier", identifiers(&v.identifiers));
            o.set("status", json!(v.status.as_deref().unwrap_or("completed")));
            o.set("vaccineCode", code_or_absent(&v.vaccine));
            o.set("patient", e.subject());
            match &v.date {
                Some(d) => o.set("occurrenceDateTime", json!(d.to_fhir())),
                None => o.set("_occurrenceDateTime", data_absent()),
            };
            o.opt("primarySource", v.primary_source);
            o.str("lotNumber", v.lot_number.as_deref());
            o.opt("doseQuantity", v.dose.as_ref().map(quantity));
            if let Some(p) = &v.performer {
                let r = e.reference(p);
                o.set("performer", json!([{"function": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0443", "code": "AP", "display": "Administering Provider"}]}, "actor": r}]));
            }
            o.set("note", annotations(&v.notes));
            single(o.build(), "Vaccination")
        }
        C::TreatmentDirective(t) => {
            let mut o = base(&nl_core("TreatmentDirective2"));
            o.opt("extension", t.comment.as_ref().map(|c| json!([ext(EXT_COMMENT, "valueString", json!(c))])));
            o.set("identifier", identifiers(&t.identifiers));
            o.set("status", json!(t.status.as_deref().unwrap_or("active")));
            o.set("scope", json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "treatment", "display": "Treatment"}]}));
            o.set("category", json!([{"coding": [{"system": uri::SNOMED, "code": "129125009", "display": "verrichting met expliciete context"}]}]));
            o.set("patient", e.subject());
            o.opt("dateTime", when(&t.date));
            o.set("policy", json!([{"uri": "https://wetten.overheid.nl/"}]));
            if let Some(v) = &t.verification {
                let mut ver = Obj::new();
                ver.set("verified", json!(v.verified.unwrap_or(false)));
                ver.opt("verificationDate", when(&v.date));
                let mut ve = ver.build();
                if let Some(w) = &v.with {
                    // zib VerifiedWith is a code; R4 verifiedWith is a reference: keep it as display.
                    ve["verifiedWith"] = json!({"display": w.text.clone().or_else(|| w.codings.first().and_then(|c| c.display.clone())).unwrap_or_default()});
                    if is_empty(&ve["verifiedWith"]) {
                        ve.as_object_mut().map(|m| m.shift_remove("verifiedWith"));
                    }
                }
                o.set("verification", json!([ve]));
            }
            let permitted = t.permitted.as_ref().and_then(|p| p.codings.iter().find_map(|c| c.code.clone()));
            let mut prov = Obj::new();
            prov.opt(
                "type",
                match permitted.as_deref() {
                    Some("NEE") => Some(json!("deny")),
                    Some("JA") | Some("JA_MAAR") => Some(json!("permit")),
                    _ => None,
                },
            );
            prov.set("period", period(&t.period));
            prov.set("code", json!([concept(&t.treatment)]));
            let exceptions: Vec<Value> = t
                .exceptions
                .iter()
                .map(|x| {
                    let mut p = Obj::new();
                    p.opt("type", x.type_.as_deref().filter(|s| *s == "permit" || *s == "deny").map(|s| json!(s)));
                    p.set("period", period(&x.period));
                    p.set("action", array(x.actions.iter().map(concept)));
                    p.set("code", array(x.codes.iter().map(concept)));
                    p.build()
                })
                .collect();
            prov.set("provision", array(exceptions));
            o.set("provision", prov.build());
            if permitted.as_deref() == Some("JA_MAAR") || t.restrictions.is_some() {
                let spec = t.restrictions.clone().unwrap_or_else(|| "ja, maar met beperkingen".into());
                o.set(
                    "modifierExtension",
                    json!([ext(
                        "http://nictiz.nl/fhir/StructureDefinition/ext-TreatmentDirective2.SpecificationOther",
                        "valueString",
                        json!(spec)
                    )]),
                );
            }
            single(o.build(), "TreatmentDirective")
        }
        C::AdvanceDirective(a) => {
            let mut o = base(&nl_core("AdvanceDirective"));
            let mut exts = vec![];
            if let Some(d) = &a.disorder {
                exts.push(ext(EXT_AD_DISORDER, "valueReference", e.reference(d)));
            }
            if let Some(c) = &a.comment {
                exts.push(ext(EXT_COMMENT, "valueString", json!(c)));
            }
            o.set("extension", array(exts));
            o.set("identifier", identifiers(&a.identifiers));
            o.set("status", json!(a.status.as_deref().unwrap_or("active")));
            o.set("scope", json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "adr", "display": "Advanced Care Directive"}]}));
            o.set("category", json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentcategorycodes", "code": "acd", "display": "Advance Directive"}]}]));
            o.set("patient", e.subject());
            o.opt("dateTime", when(&a.date));
            o.set("policy", json!([{"uri": "https://wetten.overheid.nl/"}]));
            let mut prov = Obj::new();
            if let Some(r) = &a.representative {
                let r = e.reference(r);
                prov.set("actor", json!([{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "RESPRSN", "display": "responsible party"}]}, "reference": r}]));
            }
            prov.opt("code", opt_concept(&a.directive_type).map(|c| json!([c])));
            o.set("provision", prov.build());
            single(o.build(), "AdvanceDirective")
        }
        C::Referral(r) => {
            let mut o = base(&format!("{OVERDRACHT_BASE}/StructureDefinition/Referral"));
            o.set("identifier", identifiers(&r.identifiers));
            o.set("status", json!(r.status.as_deref().unwrap_or("active")));
            o.set("intent", json!("order"));
            o.set(
                "category",
                json!([{"coding": [{"system": uri::SNOMED, "code": "3457005", "display": "Patient referral"}]}]),
            );
            o.opt("code", opt_concept(&r.requested_care));
            o.set("subject", e.subject());
            o.opt("authoredOn", when(&r.authored_on));
            let req = e.opt_reference(&r.requester);
            o.opt("requester", req);
            if let Some(p) = &r.performer {
                let p = e.reference(p);
                o.set("performer", json!([p]));
            }
            o.set("reasonCode", array(r.reasons.iter().map(concept)));
            let mut notes = vec![];
            if let Some(q) = &r.question {
                notes.push(format!("Hulpvraag: {q}"));
            }
            notes.extend(r.notes.iter().cloned());
            o.set("note", annotations(&notes));
            single(o.build(), "Referral")
        }
        C::Document(d) => {
            let mut o = base(&format!("{OVERDRACHT_BASE}/StructureDefinition/Document"));
            let mut ids = d.identifiers.iter();
            o.opt("masterIdentifier", ids.next().map(identifier));
            o.set("identifier", array(ids.map(identifier)));
            o.set("status", json!(d.status.as_deref().unwrap_or("current")));
            o.opt("type", opt_concept(&d.type_));
            o.set("subject", e.subject());
            o.opt("date", d.date.as_ref().map(|w| json!(instant(w))));
            let authors = e.references(&d.authors);
            o.set("author", authors);
            o.str("description", d.description.as_deref());
            let mut att = Obj::new();
            att.str("contentType", d.content_type.as_deref()).str("language", d.language.as_deref());
            att.str("data", d.data.as_deref()).str("url", d.url.as_deref()).str("title", d.title.as_deref());
            o.set("content", json!([{"attachment": att.build()}]));
            let mut ctx = Obj::new();
            if let Some(enc) = &d.encounter {
                let r = e.reference(enc);
                ctx.set("encounter", json!([r]));
            }
            let related = e.references(&d.related);
            ctx.set("related", related);
            o.set("context", ctx.build());
            single(o.build(), "Document")
        }
        C::R4(r) => single(pass_through(e, &r.resource, id, cat), "R4 pass-through"),
    }
}

/// An R4 resource passed on as it is: our id, our data-category label, references rewritten.
fn pass_through(e: &mut Emitter, resource: &Value, id: &str, cat: DataCategory) -> Value {
    {
        {
            let mut v = resource.clone();
            if let Some(m) = v.as_object_mut() {
                m.insert("id".into(), json!(id));
                let meta_v = m.entry("meta").or_insert_with(|| json!({}));
                if let Some(mm) = meta_v.as_object_mut() {
                    mm.shift_remove("versionId");
                    mm.shift_remove("lastUpdated");
                    let sec = mm.entry("security").or_insert_with(|| json!([]));
                    if let Some(a) = sec.as_array_mut() {
                        a.retain(|c| c.get("system").and_then(Value::as_str) != Some(DATA_CATEGORY_SYSTEM));
                        a.push(json!({"system": DATA_CATEGORY_SYSTEM, "code": cat.code(), "display": cat.display()}));
                    }
                }
            }
            rewrite_references(e, &mut v);
            v
        }
    }
}

/// A datetime for an `instant` element: dates are widened to midnight Dutch time.
fn instant(w: &When) -> String {
    match w {
        When::DateTime(..) => w.to_fhir(),
        other => other
            .start_date()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(When::local)
            .map(|x| x.to_fhir())
            .unwrap_or_else(|| other.to_fhir()),
    }
}

fn data_absent() -> Value {
    json!({"extension": [{"url": EXT_DATA_ABSENT, "valueCode": "unknown"}]})
}

/// A required CodeableConcept: the source's, or a data-absent-reason when it had none.
fn code_or_absent(c: &Concept) -> Value {
    if c.is_empty() {
        json!({"extension": [{"url": EXT_DATA_ABSENT, "valueCode": "unknown"}], "text": "onbekend"})
    } else {
        concept(c)
    }
}

/// `Flag.code` of nl-core-Alert. The zib names an alert either by an AlertName code or by its
/// concern (flag-detail), never both (zib-Alert-1/-2): an alert about a concern, or one known
/// only by its text, gets the profile's dataAbsentReason coding (`not-applicable`) with the
/// alert's text. The source's codes of an alert about a concern are the concern's own code
/// (the episode's ICPC, say), which the referenced resource carries; they stay here only when
/// that reference does not resolve in the output (`detail_resolved == Some(false)`), so that
/// nothing is lost.
fn alert_code(c: &Concept, detail_resolved: Option<bool>) -> Value {
    if c.codings.is_empty() || detail_resolved.is_some() {
        let mut codings = vec![
            json!({"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-applicable", "display": "Not Applicable"}),
        ];
        if detail_resolved == Some(false) {
            codings.extend(c.codings.iter().map(coding));
        }
        let text = c.text.clone().or_else(|| c.codings.iter().find_map(|x| x.display.clone()));
        let mut o = Obj::new();
        o.set("coding", Value::Array(codings));
        o.str("text", text.as_deref().or(Some("onbekend")));
        o.build()
    } else {
        concept(c)
    }
}

/// `Flag.category`: the zib AlertType (mappings/ConceptMap-alert-type-to-zib.json) in the
/// profile's alertType slice; a source category that is no alert type stays as a further
/// category.
fn alert_category(e: &Emitter, c: &Option<Concept>) -> Vec<Value> {
    let Some(c) = c.as_ref().filter(|c| !c.is_empty()) else {
        return vec![];
    };
    match e.term.translate_any(maps::ALERT_TYPE_TO_ZIB, &c.codings) {
        Some(t) => vec![json!({"coding": [coding(t)]})],
        None => vec![concept(c)],
    }
}

fn encounter_status(s: &str) -> &str {
    match s {
        "planned" | "arrived" | "triaged" | "in-progress" | "onleave" | "finished" | "cancelled"
        | "entered-in-error" | "unknown" => s,
        _ => "unknown",
    }
}

fn episode_ext(e: &mut Emitter, episode: &Option<Ref>) -> Value {
    match episode {
        Some(r) => {
            let r = e.reference(r);
            ext(EXT_CONTEXT_EPISODE, "valueReference", r)
        }
        None => Value::Null,
    }
}

fn problem(e: &mut Emitter, p: &Problem, mut o: Obj) -> Value {
    o.set("extension", array([episode_ext(e, &p.episode)]));
    o.set("identifier", identifiers(&p.identifiers));
    if let Some(cs) = &p.clinical_status {
        let code = match cs.as_str() {
            "active" | "recurrence" | "relapse" | "inactive" | "remission" | "resolved" => cs.as_str(),
            _ => "active",
        };
        o.set(
            "clinicalStatus",
            json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": code}]}),
        );
    }
    if let Some(vs) = &p.verification_status {
        let mut codings =
            vec![json!({"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": vs})];
        if let Some(z) = e.term.translate(
            maps::CONDITION_VERIFICATION_TO_ZIB,
            "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            vs,
        ) {
            codings.push(coding(z));
        }
        o.set("verificationStatus", json!({"coding": codings}));
    }
    o.opt("category", opt_concept(&p.problem_type).map(|c| json!([c])));
    o.set("code", code_or_absent(&p.code));
    o.set("bodySite", array(p.body_site.iter().map(concept)));
    o.set("subject", e.subject());
    o.opt("onsetDateTime", when(&p.onset)).opt("abatementDateTime", when(&p.abatement));
    o.opt("recordedDate", when(&p.recorded));
    let a = e.opt_reference(&p.asserter);
    o.opt("asserter", a);
    o.set("note", annotations(&p.notes));
    o.build()
}

fn allergy(e: &mut Emitter, a: &Allergy, mut o: Obj) -> Value {
    o.set("identifier", identifiers(&a.identifiers));
    if let Some(cs) = &a.clinical_status {
        let code = if matches!(cs.as_str(), "active" | "inactive" | "resolved") { cs.as_str() } else { "active" };
        o.set("clinicalStatus", json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": code}]}));
    }
    if let Some(vs) = &a.verification_status {
        let code = if matches!(vs.as_str(), "unconfirmed" | "confirmed" | "refuted" | "entered-in-error") {
            vs.as_str()
        } else {
            "unconfirmed"
        };
        o.set("verificationStatus", json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": code}]}));
    }
    o.str("type", a.type_.as_deref());
    o.set("category", array(a.categories.iter().map(|c| json!(c))));
    if !a.category_codes.is_empty() && a.categories.len() == a.category_codes.len() {
        o.set("_category", Value::Array(a.category_codes.iter().map(code_specification).collect()));
    }
    o.str("criticality", a.criticality.as_deref());
    o.set("code", code_or_absent(&a.code));
    o.set("patient", e.subject());
    o.opt("onsetDateTime", when(&a.onset));
    o.opt("recordedDate", when(&a.recorded));
    let rec = e.opt_reference(&a.recorder);
    o.opt("recorder", rec);
    let asr = e.opt_reference(&a.asserter);
    o.opt("asserter", asr);
    o.set("note", annotations(&a.notes));
    let reactions: Vec<Value> = a
        .reactions
        .iter()
        .map(|r| {
            let mut x = Obj::new();
            x.opt("substance", opt_concept(&r.substance));
            let manifest: Vec<Value> = if r.manifestations.is_empty() {
                vec![json!({"text": "onbekend", "extension": [{"url": EXT_DATA_ABSENT, "valueCode": "unknown"}]})]
            } else {
                r.manifestations.iter().map(concept).collect()
            };
            x.set("manifestation", Value::Array(manifest));
            x.str("description", r.description.as_deref());
            x.opt("onset", when(&r.onset));
            x.str("severity", r.severity.as_deref());
            x.opt("exposureRoute", opt_concept(&r.route));
            x.build()
        })
        .collect();
    o.set("reaction", array(reactions));
    o.build()
}

/// A fixed code: (system, code, display).
type FixedCode = (&'static str, &'static str, &'static str);
/// A fixed category: (system, code).
type FixedCategory = (&'static str, &'static str);

/// The profile, fixed category and fixed code of each observation kind (from the nl-core
/// StructureDefinitions).
fn observation_shape(kind: ObservationKind) -> (String, Option<FixedCategory>, Option<FixedCode>) {
    use ObservationKind::*;
    let vs = Some((OBS_CATEGORY, "vital-signs"));
    match kind {
        LaboratoryTestResult => (nl_core("LaboratoryTestResult"), Some((OBS_CATEGORY, "laboratory")), None),
        BloodPressure => (
            nl_core("BloodPressure"),
            vs,
            Some((uri::LOINC, "85354-9", "Blood pressure panel with all children optional")),
        ),
        BodyWeight => (nl_core("BodyWeight"), vs, Some((uri::LOINC, "29463-7", "Body weight"))),
        BodyHeight => (nl_core("BodyHeight"), vs, Some((uri::LOINC, "8302-2", "Body height"))),
        HeadCircumference => {
            (nl_core("HeadCircumference"), vs, Some((uri::LOINC, "9843-4", "Head Occipital-frontal circumference")))
        }
        BodyTemperature => (nl_core("BodyTemperature"), vs, Some((uri::LOINC, "8310-5", "Body temperature"))),
        HeartRate => (nl_core("HeartRate"), vs, Some((uri::LOINC, "8867-4", "Heart rate"))),
        O2Saturation => (
            nl_core("O2Saturation"),
            vs,
            Some((uri::LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")),
        ),
        AlcoholUse => {
            (nl_core("AlcoholUse"), None, Some((uri::SNOMED, "228273003", "bevinding betreffende alcoholgebruik")))
        }
        TobaccoUse => (
            nl_core("TobaccoUse"),
            None,
            Some((uri::SNOMED, "365980008", "bevinding betreffende tabakgebruik en blootstelling aan tabaksrook")),
        ),
        DrugUse => (nl_core("DrugUse"), None, Some((uri::SNOMED, "228366006", "bevinding betreffende drugsgebruik"))),
        LivingSituation => (nl_core("LivingSituation"), None, Some((uri::SNOMED, "365508006", "woonsituatie"))),
        FunctionalOrMentalStatus => (nl_core("FunctionalOrMentalStatus"), Some((uri::SNOMED, "118228005")), None),
        DevelopmentChild => (nl_core("DevelopmentChild"), None, None),
        // emitted as a DiagnosticReport by `text_result`; this shape is its Observation fallback
        TextResult => (nl_core("LaboratoryTestResult"), Some((OBS_CATEGORY, "laboratory")), None),
    }
}

/// zib TextResult (nl-core-TextResult, a DiagnosticReport): a result reported as text, such
/// as an imaging report. Which result codes are text results is data
/// (mappings/ConceptMap-diagnostic-result-to-zib.json); a CT report is not a laboratory
/// result. The text goes in `conclusion`, a coded value in `conclusionCode`; what a
/// DiagnosticReport cannot hold (interpretation, reference ranges, components) is reported.
fn text_result(e: &mut Emitter, ob: &Observation, mut o: Obj) -> Value {
    o.set("extension", array([episode_ext(e, &ob.episode)]));
    o.set("identifier", identifiers(&ob.identifiers));
    const STATUSES: &[&str] = &[
        "registered",
        "partial",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "appended",
        "cancelled",
        "entered-in-error",
        "unknown",
    ];
    o.set("status", json!(ob.status.as_deref().filter(|s| STATUSES.contains(s)).unwrap_or("final")));
    o.set("code", code_or_absent(&ob.code));
    o.set("subject", e.subject());
    let enc = e.opt_reference(&ob.encounter);
    o.opt("encounter", enc);
    match (&ob.effective, &ob.effective_period) {
        (Some(w), _) => o.set("effectiveDateTime", json!(w.to_fhir())),
        (None, Some(p)) => o.set("effectivePeriod", period(p)),
        _ => &mut o,
    };
    o.opt("issued", ob.issued.as_ref().map(|w| json!(instant(w))));
    let perf = e.references(&ob.performers);
    o.set("performer", perf);
    let mut conclusion: Vec<String> = vec![];
    match &ob.value {
        Some(ObsValue::Text(t)) => conclusion.push(t.clone()),
        Some(ObsValue::Concept(c)) => {
            o.set("conclusionCode", json!([concept(c)]));
        }
        Some(ObsValue::Quantity(q)) => conclusion.push(
            [q.comparator.clone(), q.value.as_ref().map(|v| v.as_str().to_owned()), q.unit.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Some(ObsValue::Boolean(b)) => conclusion.push(if *b { "ja" } else { "nee" }.to_owned()),
        Some(ObsValue::Integer(i)) => conclusion.push(i.to_string()),
        Some(ObsValue::DateTime(w)) => conclusion.push(w.to_fhir()),
        Some(ObsValue::Period(p)) => conclusion.push(format!(
            "{} – {}",
            p.start.as_ref().map(When::to_fhir).unwrap_or_default(),
            p.end.as_ref().map(When::to_fhir).unwrap_or_default()
        )),
        None => {}
    }
    conclusion.extend(ob.notes.iter().cloned());
    let conclusion = conclusion.into_iter().filter(|t| !t.trim().is_empty()).collect::<Vec<_>>().join("\n\n");
    if !conclusion.is_empty() {
        o.set("conclusion", json!(conclusion));
    } else if ob.value.is_none() {
        if let Some(code) = &ob.data_absent {
            o.set("_conclusion", json!({"extension": [{"url": EXT_DATA_ABSENT, "valueCode": code}]}));
        }
    }
    if !ob.interpretation.is_empty() || !ob.reference_ranges.is_empty() || !ob.components.is_empty() {
        e.outcome.push(
            Issue::warning(
                IssueCode::Incomplete,
                "a text result (nl-core-TextResult, a DiagnosticReport) has no place for the interpretation, reference ranges or components of the source result: they are not in the output",
            )
            .at(e.current_path.clone()),
        );
    }
    o.build()
}

fn observation(e: &mut Emitter, ob: &Observation, ty: &str, id: &str, cat: DataCategory) -> Value {
    let mut kind = ob.kind;
    if kind == ObservationKind::BloodPressure {
        let has = |code: &str| ob.components.iter().any(|c| c.code.has(uri::LOINC, code));
        if !(has("8480-6") && has("8462-4")) {
            e.outcome.push(
                Issue::warning(IssueCode::Incomplete, "blood pressure without systolic and diastolic components: emitted as a general result (nl-core-LaboratoryTestResult)")
                    .at(e.current_path.clone()),
            );
            kind = ObservationKind::LaboratoryTestResult;
        }
    }
    let (profile, category, fixed_code) = observation_shape(kind);
    let mut o = Obj::with(ty);
    o.set("id", json!(id)).set("meta", meta(&profile, cat));
    o.set("extension", array([episode_ext(e, &ob.episode)]));
    o.set("identifier", identifiers(&ob.identifiers));
    o.set("status", json!(ob.status.as_deref().unwrap_or("final")));
    o.opt("category", category.map(|(s, c)| json!([{"coding": [{"system": s, "code": c}]}])));
    let mut code = ob.code.clone();
    if let Some((s, c, d)) = fixed_code {
        if !code.has(s, c) {
            code.codings.insert(0, Coding::new(s, c, Some(d)));
        }
    }
    o.set("code", code_or_absent(&code));
    o.set("subject", e.subject());
    let enc = e.opt_reference(&ob.encounter);
    o.opt("encounter", enc);
    let vital = category.map(|(_, c)| c) == Some("vital-signs");
    match (&ob.effective, &ob.effective_period) {
        (Some(w), _) => o.set("effectiveDateTime", json!(w.to_fhir())),
        (None, Some(p)) if !vital => o.set("effectivePeriod", period(p)),
        (None, Some(p)) if p.start.is_some() => {
            o.set("effectiveDateTime", json!(p.start.as_ref().map(|w| w.to_fhir())))
        }
        _ if vital => match &ob.issued {
            Some(w) => o.set("effectiveDateTime", json!(w.to_fhir())),
            None => o.set("_effectiveDateTime", data_absent()),
        },
        _ => &mut o,
    };
    o.opt("issued", ob.issued.as_ref().map(|w| json!(instant(w))));
    let perf = e.references(&ob.performers);
    o.set("performer", perf);
    if let Some(v) = &ob.value {
        // Lifestyle and living-situation zibs code their value; free text goes in its text.
        let coded_kind = matches!(
            kind,
            ObservationKind::TobaccoUse
                | ObservationKind::AlcoholUse
                | ObservationKind::DrugUse
                | ObservationKind::LivingSituation
        );
        match v {
            ObsValue::Text(t) if coded_kind => {
                o.set("valueCodeableConcept", json!({"text": t}));
            }
            other => set_value(&mut o, other),
        }
    }
    if ob.value.is_none() && ob.components.is_empty() {
        if let Some(code) = &ob.data_absent {
            o.set(
                "dataAbsentReason",
                json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": code}]}),
            );
        }
    }
    o.set("interpretation", array(ob.interpretation.iter().map(concept)));
    o.set("note", annotations(&ob.notes));
    o.opt("bodySite", opt_concept(&ob.body_site));
    o.opt("method", opt_concept(&ob.method));
    let ranges: Vec<Value> = ob
        .reference_ranges
        .iter()
        .map(|r| {
            let mut x = Obj::new();
            x.opt("low", r.low.as_ref().map(quantity)).opt("high", r.high.as_ref().map(quantity));
            x.opt("type", opt_concept(&r.type_)).str("text", r.text.as_deref());
            x.build()
        })
        .collect();
    o.set("referenceRange", array(ranges));
    let comps: Vec<Value> = ob
        .components
        .iter()
        .map(|c| {
            let mut x = Obj::new();
            x.set("code", code_or_absent(&c.code));
            if let Some(v) = &c.value {
                set_value(&mut x, v);
            }
            x.set("interpretation", array(c.interpretation.iter().map(concept)));
            x.build()
        })
        .collect();
    o.set("component", array(comps));
    o.build()
}

fn journal(e: &mut Emitter, item: &Item, j: &JournalEntry, id: &str) -> Out {
    let cat = item.category();
    let mut out = vec![];
    let mut sections = vec![];
    let subject = e.subject();
    let enc = e.opt_reference(&j.encounter);
    let author = e.opt_reference(&j.author);
    let episode = episode_ext(e, &j.episode);
    for (i, line) in j.lines.iter().enumerate() {
        let line_key = format!("{}/line/{i}", item.key);
        let line_id = e.id_for("Observation", &line_key);
        let code = e
            .term
            .translate(maps::SOAP_LINE_CODE, uri::JOURNAL_LINE_TYPE, line.kind.letter())
            .cloned()
            .unwrap_or_else(|| Coding::new(uri::JOURNAL_LINE_TYPE, line.kind.letter(), None));
        let mut o = Obj::with("Observation");
        o.set("id", json!(line_id)).set("meta", meta(&nl_core("SOAPReport.SOAPLine"), cat));
        let mut exts = vec![episode.clone()];
        if let Some(c) = &line.code {
            exts.push(ext(EXT_SOAP_LINE_CODE, "valueCodeableConcept", concept(c)));
        }
        o.set("extension", array(exts));
        o.set("identifier", identifiers(&line.identifiers));
        o.set("status", json!("final"));
        o.set("code", json!({"coding": [coding(&code)]}));
        o.set("subject", subject.clone());
        o.opt("encounter", enc.clone());
        o.opt("effectiveDateTime", when(&j.date));
        o.opt("performer", author.clone().map(|a| json!([a])));
        o.set("valueString", json!(line.text));
        let reference = match e.opts.ref_style {
            super::RefStyle::Urn => format!("urn:uuid:{line_id}"),
            super::RefStyle::Relative => format!("Observation/{line_id}"),
        };
        sections.push(json!({
            "title": line.kind.letter(),
            "code": {"coding": [coding(&code)]},
            "entry": [{"reference": reference, "type": "Observation"}],
        }));
        out.push((o.build(), line_id, "SOAPLine"));
    }
    let mut c = Obj::with("Composition");
    c.set("id", json!(id)).set("meta", meta(&nl_core("SOAPReport"), cat));
    c.set("extension", array([episode]));
    c.opt("identifier", j.identifiers.first().map(identifier));
    c.set("status", json!("final"));
    c.set(
        "type",
        json!({"coding": [{"system": uri::SNOMED, "code": "11591000146107", "display": "patiëntcontactverslag"}]}),
    );
    c.set("subject", subject);
    c.opt("encounter", enc);
    match &j.date {
        Some(d) => c.set("date", json!(d.to_fhir())),
        None => c.set("_date", data_absent()),
    };
    match author {
        Some(a) => c.set("author", json!([a])),
        None => c.set(
            "author",
            json!([{"display": "onbekend", "extension": [{"url": EXT_DATA_ABSENT, "valueCode": "unknown"}]}]),
        ),
    };
    c.set("title", json!(j.title.clone().unwrap_or_else(|| journal_title(j))));
    c.set("section", Value::Array(sections));
    out.insert(0, (c.build(), id.to_owned(), "SOAPReport"));
    out
}

/// A Composition title that says which contact it reports ("Contactverslag 2019-03-12"),
/// with the contact's type where the lines have a code.
fn journal_title(j: &JournalEntry) -> String {
    let date = j.date.as_ref().map(date_only);
    let diagnosis = j
        .lines
        .iter()
        .find_map(|l| l.code.as_ref())
        .and_then(|c| c.text.clone().or_else(|| c.codings.first().and_then(|x| x.display.clone())));
    match (date, diagnosis) {
        (Some(d), Some(x)) => format!("Contactverslag {d}: {x}"),
        (Some(d), None) => format!("Contactverslag {d}"),
        (None, Some(x)) => format!("Contactverslag: {x}"),
        (None, None) => "Contactverslag".to_owned(),
    }
}

fn dosage(d: &Dosage) -> Value {
    let mut o = Obj::new();
    o.opt("sequence", d.sequence);
    o.str("text", d.text.as_deref());
    o.set("additionalInstruction", array(d.additional_instructions.iter().map(concept)));
    let mut repeat = Obj::new();
    repeat
        .opt("frequency", d.frequency)
        .opt("period", d.period.as_ref().map(Decimal::to_json))
        .str("periodUnit", d.period_unit.as_deref());
    let repeat = repeat.build();
    if !is_empty(&repeat) {
        o.set("timing", json!({"repeat": repeat}));
    }
    match (&d.as_needed_for, d.as_needed) {
        (Some(c), _) => o.set("asNeededCodeableConcept", concept(c)),
        (None, Some(b)) => o.set("asNeededBoolean", json!(b)),
        _ => &mut o,
    };
    o.opt("route", opt_concept(&d.route));
    if let Some(q) = &d.dose {
        o.set("doseAndRate", json!([{"doseQuantity": quantity(q)}]));
    }
    o.build()
}

fn medication_x(e: &mut Emitter, o: &mut Obj, m: &MedicationRef) {
    match m {
        MedicationRef::Product(r) => {
            let r = e.reference(r);
            o.set("medicationReference", r);
        }
        MedicationRef::Code(c) => {
            o.set("medicationCodeableConcept", code_or_absent(c));
        }
    }
}

/// MP9 MedicationAgreement. The period of use is the agreement's ext-TimeInterval.Period (with
/// the duration in it); every agreement belongs to a pharmaceutical treatment
/// (ext-PharmaceuticalTreatment.Identifier): the source's, or, where the source has none (the
/// Professional Summary, MP 6.x prescriptions), one of its own per agreement, derived like our
/// resource ids so that converting the same record again gives the same identifier.
fn medication_agreement(e: &mut Emitter, m: &MedicationAgreement, key: &str, mut o: Obj) -> Value {
    let mut exts = vec![];
    if !m.period_of_use.is_empty() || m.duration.is_some() {
        let mut p = Obj::new();
        if let Some(dur) = &m.duration {
            p.set("extension", json!([ext(EXT_TIME_INTERVAL_DURATION, "valueDuration", quantity(dur))]));
        }
        p.opt("start", when(&m.period_of_use.start)).opt("end", when(&m.period_of_use.end));
        exts.push(ext(EXT_TIME_INTERVAL_PERIOD, "valuePeriod", p.build()));
    }
    let treatment = match &m.treatment {
        Some(t) => identifier(t),
        None => json!({
            "system": "urn:ietf:rfc:3986",
            "value": format!("urn:uuid:{}", e.id_for("PharmaceuticalTreatment", key)),
        }),
    };
    exts.push(ext(EXT_PHARMACEUTICAL_TREATMENT, "valueIdentifier", treatment));
    o.set("extension", Value::Array(exts));
    o.set("identifier", identifiers(&m.identifiers));
    let status = match (m.status.as_deref(), m.stopped) {
        (_, Some(true)) => "stopped",
        (
            Some(
                s @ ("active" | "on-hold" | "cancelled" | "completed" | "entered-in-error" | "stopped" | "draft"
                | "unknown"),
            ),
            _,
        ) => s,
        _ => "unknown",
    };
    o.set("status", json!(status));
    o.set("intent", json!("order"));
    // MP9 MedicationAgreementCode (the category slice medicationAgreementCode).
    o.set(
        "category",
        json!([{"coding": [{"system": uri::SNOMED, "code": "33633005", "display": "voorschrijven van geneesmiddel"}]}]),
    );
    medication_x(e, &mut o, &m.medication);
    o.set("subject", e.subject());
    let enc = e.opt_reference(&m.encounter);
    o.opt("encounter", enc);
    o.opt("authoredOn", when(&m.authored_on));
    let req = e.opt_reference(&m.prescriber);
    o.opt("requester", req);
    let rec = e.opt_reference(&m.recorder);
    o.opt("recorder", rec);
    o.set("reasonCode", array(m.reasons.iter().map(concept)));
    o.set("note", annotations(&m.notes));
    if let Some(d) = &m.dispense {
        let mut x = Obj::new();
        x.set("validityPeriod", period(&d.validity));
        x.opt("numberOfRepeatsAllowed", d.repeats.filter(|n| *n >= 0));
        x.opt("quantity", d.quantity.as_ref().map(quantity));
        x.opt("expectedSupplyDuration", d.expected_duration.as_ref().map(quantity));
        let p = e.opt_reference(&d.performer);
        x.opt("performer", p);
        let x = x.build();
        if !is_empty(&x) {
            o.set("dispenseRequest", x);
        }
    }
    o.set("dosageInstruction", array(m.dosages.iter().map(dosage)));
    o.build()
}

fn medication_use(e: &mut Emitter, m: &MedicationUse, mut o: Obj) -> Value {
    o.set("identifier", identifiers(&m.identifiers));
    const STATUSES: &[&str] =
        &["active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown", "not-taken"];
    let status = m.status.as_deref().filter(|s| STATUSES.contains(s)).unwrap_or("unknown");
    o.set("status", json!(status));
    o.set("category", json!({"coding": [{"system": uri::SNOMED, "code": "422979000", "display": "bevinding betreffende gedrag met betrekking tot medicatieregime"}]}));
    medication_x(e, &mut o, &m.medication);
    o.set("subject", e.subject());
    if !m.period_of_use.is_empty() || m.duration.is_some() {
        let mut p = Obj::new();
        if let Some(d) = &m.duration {
            p.set("extension", json!([ext(EXT_TIME_INTERVAL_DURATION, "valueDuration", quantity(d))]));
        }
        p.opt("start", when(&m.period_of_use.start)).opt("end", when(&m.period_of_use.end));
        o.set("effectivePeriod", p.build());
    }
    o.opt("dateAsserted", when(&m.asserted));
    let inf = e.opt_reference(&m.informant);
    o.opt("informationSource", inf);
    o.set("reasonCode", array(m.reasons.iter().map(concept)));
    o.set("note", annotations(&m.notes));
    o.set("dosage", array(m.dosages.iter().map(dosage)));
    if let Some(u) = m.use_indicator {
        o.set(
            "extension",
            json!([ext(
                "http://nictiz.nl/fhir/StructureDefinition/ext-MedicationUse2.UseIndicator",
                "valueBoolean",
                json!(u)
            )]),
        );
    }
    o.build()
}

/// Rewrites `reference` strings in a passed-through R4 resource to the ids we assigned.
fn rewrite_references(e: &mut Emitter, v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("reference") {
                if let Some(key) = crate::source::fhir_types::reference_key(r, "") {
                    let original = r.clone();
                    let resolved = e.reference(&Ref::to(key));
                    match resolved.get("reference").and_then(Value::as_str) {
                        Some(new) => {
                            m.insert("reference".into(), json!(new));
                        }
                        None => {
                            // Not in the record: a dangling reference would break the
                            // receiving server's transaction, so keep it as text.
                            m.shift_remove("reference");
                            if !m.contains_key("display") && !m.contains_key("identifier") {
                                m.insert("display".into(), json!(format!("{original} (not included in this record)")));
                            }
                        }
                    }
                }
            }
            for (_, child) in m.iter_mut() {
                rewrite_references(e, child);
            }
        }
        Value::Array(a) => {
            for child in a.iter_mut() {
                rewrite_references(e, child);
            }
        }
        _ => {}
    }
}
