#!/usr/bin/env python3
"""Generate the element tables that the FHIR XML reader (src/source/fhir_xml/) needs.

Why: FHIR XML does not say which elements repeat or which primitives are numbers or booleans;
JSON does (arrays, JSON types). Turning XML into the FHIR JSON shape therefore needs, per type,
each element's name, whether it repeats (max != "1") and its type. This script keeps exactly
that from the official StructureDefinitions, one table per FHIR version:

    src/source/fhir_xml/r4-elements.json    from ../shared/reference/fhir-r4/profiles-{types,resources}.json
    src/source/fhir_xml/stu3-elements.json  from the STU3 (3.0.1) definitions, profiles-{types,resources}.json

Shape: {"TypeOrBackbonePath": {"element": "[*]type", ...}, ...}. A leading "*" means the element
repeats. Choice elements are expanded (valueQuantity, valueString, ...). A backbone element's type is
its own path ("Patient.contact"); a contentReference is resolved to the referenced path. Types whose
first letter is lower case are primitives ("xhtml" is the narrative div); "Resource" marks a resource
container (contained, Bundle.entry.resource, Parameters.parameter.resource).

Usage (stdlib only):
    python3 scripts/gen-fhir-xml-tables.py STU3_DIR [R4_DIR]
STU3_DIR holds profiles-types.json and profiles-resources.json of FHIR 3.0.1 (for example from the
npm package `fhir@3.3.1`, folder package/profiles/stu3/); R4_DIR defaults to ../shared/reference/fhir-r4.
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "src", "source", "fhir_xml")
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"


def load_sds(folder):
    sds = []
    for name in ("profiles-types.json", "profiles-resources.json"):
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            bundle = json.load(f)
        for e in bundle.get("entry", []):
            r = e.get("resource", {})
            if r.get("resourceType") == "StructureDefinition" and r.get("snapshot"):
                sds.append(r)
    return sds


def type_code(t):
    code = t.get("code") or ""
    if code.startswith("http://hl7.org/fhirpath/System."):
        for x in t.get("extension", []):
            if x.get("url") == FHIR_TYPE_EXT:
                return x.get("valueUrl") or x.get("valueUri") or "string"
        return "string"
    if not code:
        # STU3 writes the type of Element.id / Extension.url as an extension only
        for x in t.get("_code", {}).get("extension", []):
            if x.get("valueString"):
                return {"xsd:token": "string", "xsd:anyURI": "uri"}.get(x["valueString"], "string")
        return "string"
    return code


def generate(folder):
    sds = load_sds(folder)
    base = {}  # constraint profiles (SimpleQuantity, ...) → the type they constrain
    for sd in sds:
        if sd.get("derivation") == "constraint":
            base[sd["name"]] = sd["type"]
    table = {}
    for sd in sds:
        if sd.get("derivation") == "constraint" or sd.get("kind") == "logical":
            continue
        root = sd["type"]
        elements = sd["snapshot"]["element"]
        backbone = {e["path"] for e in elements if any(t.get("code") in ("BackboneElement", "Element") for t in e.get("type", []))
                    and any(x["path"].startswith(e["path"] + ".") for x in elements)}
        for e in elements:
            path = e["path"]
            if "." not in path:
                table.setdefault(root, {})
                continue
            parent, name = path.rsplit(".", 1)
            if e.get("max") == "0":
                continue
            repeats = "*" if e.get("max") not in ("1", None) else ""
            if "contentReference" in e:
                types = [e["contentReference"].lstrip("#").split("#")[-1]]
            elif path in backbone:
                types = [path]
            else:
                types = [type_code(t) for t in e.get("type", [])] or ["string"]
            types = [base.get(t, t) for t in types]
            owner = table.setdefault(parent, {})
            if name.endswith("[x]"):
                stem = name[:-3]
                for t in types:
                    owner[stem + t[0].upper() + t[1:]] = repeats + t
            else:
                owner[name] = repeats + types[0]
    return {k: table[k] for k in sorted(table)}


def write(name, table):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(table, f, separators=(",", ":"), sort_keys=True)
        f.write("\n")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    stu3 = sys.argv[1]
    r4 = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "..", "shared", "reference", "fhir-r4")
    write("stu3-elements.json", generate(stu3))
    write("r4-elements.json", generate(r4))


if __name__ == "__main__":
    main()
