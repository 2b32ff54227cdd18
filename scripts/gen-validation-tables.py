#!/usr/bin/env python3
"""Generate the compact validation tables in profiles/r4/ from the official definitions.

Why: the validator must run without ../shared/reference, but the official R4 and nl-core
definitions are ~50 MB, almost all of it prose. The validator needs only the structural part
of each StructureDefinition snapshot (paths, cardinality, types, fixed/pattern values, slicing,
required bindings, simple invariants) and the codes of the value sets that required bindings
point to. We keep the *standard* FHIR shapes (StructureDefinition, ValueSet, CodeSystem), only
stripped, so that the Rust loader reads the embedded tables and user-supplied FHIR packages with
one and the same code.

It also generates the snapshots of our own StructureDefinitions (profiles/StructureDefinition-
overdracht-*.json, authored as differentials) by applying the differential to the R4 base.

Usage (stdlib only):
    python3 scripts/gen-validation-tables.py [REFERENCE_DIR]
REFERENCE_DIR defaults to ../shared/reference relative to the repository root.
Outputs (minified JSON, deterministic):
    profiles/r4/base.json       R4 data types and resources (stripped StructureDefinitions)
    profiles/r4/nl-core.json    nl-core snapshots (stripped StructureDefinitions)
    profiles/r4/terminology.json  ValueSets (expanded) behind required bindings, and the
                                complete CodeSystems they use
    profiles/r4/search-parameters.json  the R4 SearchParameters, only url and type (for the
                                type of a CapabilityStatement's searchParam)
    profiles/r4/vitalsigns.json the R4 vital signs profiles (vitalsigns, bodytemp, bp, ...), which
                                R4 applies by content; written below as differentials from the
                                R4 specification's vital signs table (they are not in the
                                reference bundles) and expanded on the R4 Observation here
"""
import copy
import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "reference")
OUT = os.path.join(ROOT, "profiles", "r4")
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"

def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def error_invariant(c):
    """Every error invariant is shipped: the Rust side (src/validate/fhirpath.rs) compiles those
    whose FHIRPath it evaluates exactly and counts the rest (see its coverage test)."""
    return bool(c.get("expression")) and c.get("severity") == "error"


def strip_element(e, keep_all_bindings=False):
    out = {"id": e.get("id", e["path"]), "path": e["path"]}
    for k in ("sliceName", "min", "max", "contentReference", "maxLength"):
        if k in e:
            out[k] = e[k]
    if "type" in e:
        types = []
        for t in e["type"]:
            nt = {"code": t["code"]}
            for k in ("profile", "targetProfile"):
                if k in t:
                    nt[k] = t[k]
            regex = [x for x in t.get("extension", []) if x.get("url") == REGEX_EXT]
            if regex:
                nt["extension"] = regex
            types.append(nt)
        out["type"] = types
    for k, v in e.items():
        if k.startswith("fixed") or k.startswith("pattern"):
            out[k] = v
    if "slicing" in e:
        out["slicing"] = {k: e["slicing"][k] for k in ("discriminator", "rules") if k in e["slicing"]}
    b = e.get("binding")
    if b and b.get("valueSet") and (keep_all_bindings or b.get("strength") == "required"):
        out["binding"] = {"strength": b["strength"], "valueSet": b["valueSet"]}
    cons = [
        {k: c[k] for k in ("key", "severity", "human", "expression")}
        for c in e.get("constraint", [])
        if error_invariant(c) and not c["key"].startswith("ele-") and not c["key"].startswith("ext-")
    ]
    if cons:
        out["constraint"] = cons
    return out


def strip_sd(sd):
    out = {k: sd[k] for k in ("resourceType", "url", "name", "type", "kind", "abstract", "derivation", "baseDefinition", "context") if k in sd}
    out["snapshot"] = {"element": [strip_element(e) for e in sd["snapshot"]["element"]]}
    return out


def dump(name, data):
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
        f.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)}: {os.path.getsize(path)} bytes", file=sys.stderr)


# ---------------------------------------------------------------- R4 base
types = load(os.path.join(REF, "fhir-r4", "profiles-types.json"))
resources = load(os.path.join(REF, "fhir-r4", "profiles-resources.json"))
base = []
base_by_type = {}
for bundle in (types, resources):
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r.get("resourceType") != "StructureDefinition" or r.get("kind") == "logical":
            continue
        base.append(strip_sd(r))
        if r.get("derivation") != "constraint":
            base_by_type[r["type"]] = r

# ---------------------------------------------------------------- nl-core
nlcore = []
for path in sorted(glob.glob(os.path.join(REF, "nl-core-r4", "profiles", "*.json"))):
    nlcore.append(strip_sd(load(path)))


# ---------------------------------------------------------------- our own profiles
def apply_differential(sd):
    """Snapshot = base snapshot with each differential element merged over the element with the same id;
    differential elements that introduce new ids (slices) are inserted after their parent's subtree."""
    base_sd = base_by_type[sd["type"]]
    elems = [copy.deepcopy(e) for e in base_sd["snapshot"]["element"]]
    for e in elems:
        for k in ("mapping", "comment", "requirements", "alias", "definition"):
            e.pop(k, None)
    for d in sd["differential"]["element"]:
        did = d.get("id", d["path"])
        idx = next((i for i, e in enumerate(elems) if e["id"] == did), None)
        if idx is not None:
            merged = copy.deepcopy(d)
            if "constraint" in merged:  # constraints accumulate down the derivation chain
                merged["constraint"] = elems[idx].get("constraint", []) + merged["constraint"]
            elems[idx].update(merged)
            continue
        parent_id = did.rsplit(":", 1)[0] if "sliceName" in d else did.rsplit(".", 1)[0]
        pidx = next(i for i, e in enumerate(elems) if e["id"] == parent_id)
        end = pidx + 1
        while end < len(elems) and (elems[end]["id"].startswith(parent_id + ".") or elems[end]["id"].startswith(parent_id + ":")):
            end += 1
        new = copy.deepcopy(elems[pidx]) if "sliceName" in d else {"id": did, "path": d["path"], "min": 0, "max": "1"}
        new.pop("slicing", None)
        new.update(copy.deepcopy(d))
        new["id"] = did
        elems.insert(end, new)
    sd["snapshot"] = {"element": elems}
    return sd


for path in sorted(glob.glob(os.path.join(ROOT, "profiles", "StructureDefinition-overdracht-*.json"))):
    sd = load(path)
    apply_differential(sd)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(sd, f, ensure_ascii=False, indent=2)
        f.write("\n")
    print(f"snapshot generated in {os.path.relpath(path, ROOT)}", file=sys.stderr)

# ---------------------------------------------------------------- R4 vital signs profiles
# R4 section 8.1 "Vital Signs" (observation-vitalsigns): an Observation with one of these LOINC
# codes SHALL conform to the matching profile, whatever it claims (the HL7 reference validator's
# ObservationValidator applies them by code). Written as differentials: the constraints of the
# base profile `vitalsigns`, then what each specific profile adds (its LOINC code and units).
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
VS_BASE = "http://hl7.org/fhir/StructureDefinition/"


def loinc_pattern(code):
    return {"coding": [{"system": LOINC, "code": code}]}


def quantity(prefix, unit):
    """valueQuantity with value, unit, UCUM system and a unit code (fixed, or a value set)."""
    code = {"id": f"{prefix}.code", "path": f"{prefix}.code", "min": 1, "max": "1", "type": [{"code": "code"}]}
    if unit.startswith("http"):
        code["binding"] = {"strength": "required", "valueSet": unit}
    else:
        code["fixedCode"] = unit
    path = prefix.replace(":SystolicBP", "").replace(":DiastolicBP", "")
    return [
        {"id": prefix, "path": path, "type": [{"code": "Quantity"}]},
        {"id": f"{prefix}.value", "path": f"{path}.value", "min": 1, "max": "1", "type": [{"code": "decimal"}]},
        {"id": f"{prefix}.unit", "path": f"{path}.unit", "min": 1, "max": "1", "type": [{"code": "string"}]},
        {"id": f"{prefix}.system", "path": f"{path}.system", "min": 1, "max": "1", "type": [{"code": "uri"}],
         "fixedUri": UCUM},
        dict(code, path=f"{path}.code"),
    ]


VITALSIGNS = [
    {"id": "Observation", "path": "Observation", "constraint": [{
        "key": "vs-2", "severity": "error",
        "human": "If there is no component or hasMember element then either a value[x] or a data absent reason must be present.",
        "expression": "(component.empty() and hasMember.empty()) implies (dataAbsentReason.exists() or value.exists())"}]},
    {"id": "Observation.category", "path": "Observation.category", "min": 1,
     "slicing": {"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "open"}},
    {"id": "Observation.category:VSCat", "path": "Observation.category", "sliceName": "VSCat", "min": 1, "max": "1",
     "patternCodeableConcept": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}},
    {"id": "Observation.subject", "path": "Observation.subject", "min": 1,
     "type": [{"code": "Reference", "targetProfile": [VS_BASE + "Patient"]}]},
    {"id": "Observation.effective[x]", "path": "Observation.effective[x]", "min": 1,
     "type": [{"code": "dateTime"}, {"code": "Period"}], "constraint": [{
        "key": "vs-1", "severity": "error",
        "human": "if Observation.effective[x] is dateTime and has a value then that value shall be precise to the day",
        "expression": "($this as dateTime).toString().length() >= 8"}]},
    {"id": "Observation.component", "path": "Observation.component", "constraint": [{
        "key": "vs-3", "severity": "error", "human": "If there is no a value a data absent reason must be present",
        "expression": "value.exists() or dataAbsentReason.exists()"}]},
]

# (id, title, LOINC code, unit: a UCUM code or a required value set)
VITAL_PROFILES = [
    ("vitalspanel", "Vital Signs Panel", "85353-1", None),
    ("resprate", "Respiratory Rate", "9279-1", "/min"),
    ("heartrate", "Heart Rate", "8867-4", "/min"),
    ("oxygensat", "Oxygen Saturation", "2708-6", "%"),
    ("bodytemp", "Body Temperature", "8310-5", "http://hl7.org/fhir/ValueSet/ucum-bodytemp"),
    ("bodyheight", "Body Height", "8302-2", "http://hl7.org/fhir/ValueSet/ucum-bodylength"),
    ("headcircum", "Head Circumference", "9843-4", "http://hl7.org/fhir/ValueSet/ucum-bodylength"),
    ("bodyweight", "Body Weight", "29463-7", "http://hl7.org/fhir/ValueSet/ucum-bodyweight"),
    ("bmi", "Body Mass Index", "39156-5", "kg/m2"),
    ("bp", "Blood Pressure", "85354-9", None),
]


def vital_profile(pid, title, code, unit):
    diff = copy.deepcopy(VITALSIGNS)
    if code is not None:
        diff.append({"id": "Observation.code", "path": "Observation.code", "patternCodeableConcept": loinc_pattern(code)})
    if unit is not None:
        diff += quantity("Observation.value[x]", unit)
    if pid == "bp":
        diff.append({"id": "Observation.component", "path": "Observation.component", "min": 2,
                     "slicing": {"discriminator": [{"type": "pattern", "path": "code"}], "rules": "open"}})
        for name, loinc in (("SystolicBP", "8480-6"), ("DiastolicBP", "8462-4")):
            s = f"Observation.component:{name}"
            diff.append({"id": s, "path": "Observation.component", "sliceName": name, "min": 1, "max": "1"})
            diff.append({"id": f"{s}.code", "path": "Observation.component.code", "min": 1, "max": "1",
                         "patternCodeableConcept": loinc_pattern(loinc)})
            diff += quantity(f"{s}.value[x]", "mm[Hg]")
    sd = {"resourceType": "StructureDefinition", "url": VS_BASE + pid, "name": title.replace(" ", ""),
          "title": title, "type": "Observation", "kind": "resource", "abstract": False,
          "derivation": "constraint", "baseDefinition": VS_BASE + ("vitalsigns" if code else "Observation"),
          "differential": {"element": diff}}
    apply_differential(sd)
    return strip_sd(sd)


vitalsigns = [vital_profile("vitalsigns", "Vital Signs", None, None)] + [vital_profile(*p) for p in VITAL_PROFILES]

# ---------------------------------------------------------------- terminology
vs_bundle = load(os.path.join(REF, "fhir-r4", "valuesets.json"))
valuesets, codesystems = {}, {}
for entry in vs_bundle["entry"]:
    r = entry["resource"]
    if r["resourceType"] == "ValueSet":
        valuesets[r["url"]] = r
    elif r["resourceType"] == "CodeSystem":
        codesystems[r["url"]] = r


def cs_codes(cs):
    out = []

    def walk(concepts):
        for c in concepts:
            out.append(c["code"])
            walk(c.get("concept", []))

    walk(cs.get("concept", []))
    return out


def expand(url, seen=()):
    """[(system, code)] or None when the value set cannot be expanded locally."""
    vs = valuesets.get(url.split("|")[0])
    if vs is None or url in seen:
        return None
    codes = []
    compose = vs.get("compose", {})
    for inc in compose.get("include", []):
        if inc.get("filter"):
            return None
        part = None
        if "system" in inc:
            if "concept" in inc:
                part = [(inc["system"], c["code"]) for c in inc["concept"]]
            else:
                cs = codesystems.get(inc["system"])
                if cs is None or cs.get("content") != "complete":
                    return None
                part = [(inc["system"], c) for c in cs_codes(cs)]
        for sub in inc.get("valueSet", []):
            sub_codes = expand(sub, seen + (url,))
            if sub_codes is None:
                return None
            part = sub_codes if part is None else [c for c in part if c in set(sub_codes)]
        codes.extend(part or [])
    for exc in compose.get("exclude", []):
        if "concept" in exc and "system" in exc:
            drop = {(exc["system"], c["code"]) for c in exc["concept"]}
            codes = [c for c in codes if c not in drop]
        else:
            return None
    return codes


required = set()
for sd in base + nlcore + vitalsigns + [load(p) for p in glob.glob(os.path.join(ROOT, "profiles", "StructureDefinition-overdracht-*.json"))]:
    for e in sd["snapshot"]["element"]:
        b = e.get("binding")
        if b and b.get("strength") == "required" and b.get("valueSet"):
            required.add(b["valueSet"].split("|")[0])

terminology = []
used_systems = set()
for url in sorted(required):
    codes = expand(url)
    if codes is None:
        continue
    by_system = {}
    for system, code in codes:
        by_system.setdefault(system, []).append({"code": code})
    used_systems.update(by_system)
    terminology.append({
        "resourceType": "ValueSet",
        "url": url,
        "compose": {"include": [{"system": s, "concept": c} for s, c in by_system.items()]},
    })
for url in sorted(used_systems):
    cs = codesystems.get(url)
    if cs is None or cs.get("content") != "complete":
        continue
    terminology.append({
        "resourceType": "CodeSystem",
        "url": url,
        "content": "complete",
        "concept": [{"code": c} for c in cs_codes(cs)],
    })

dump("base.json", base)
dump("nl-core.json", nlcore)
dump("terminology.json", terminology)
dump("vitalsigns.json", vitalsigns)
search_parameters = [
    {"resourceType": "SearchParameter", "url": e["resource"]["url"], "type": e["resource"]["type"]}
    for e in load(os.path.join(REF, "fhir-r4", "search-parameters.json"))["entry"]
]
search_parameters.sort(key=lambda sp: sp["url"])
dump("search-parameters.json", search_parameters)
print(f"{len(base)} base definitions, {len(nlcore)} nl-core profiles, {len(required)} required value sets "
      f"({sum(1 for t in terminology if t['resourceType'] == 'ValueSet')} expandable locally)", file=sys.stderr)
