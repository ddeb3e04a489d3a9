"""Snapshots of the standard's StructureDefinitions, computed from the published FHIR R4 base definitions.

A FHIR tool validates against a profile's ``snapshot``: the full list of elements of the resource with the
profile's constraints applied. The differential (written by `conformance.structure_definition`) says only what
the profile changes; this module applies it to the snapshot of the profile's base, which is either the HL7 R4
definition of the resource (vendored in ``standard/source/fhir-r4-base``) or the snapshot of another profile of
the standard. The rules followed (FHIR R4, profiling.html):

- the elements keep the base's order; children of a datatype (``identifier.system``) are listed only when the
  differential constrains one of them, copied from the datatype's own snapshot, right after their parent;
- a slice comes after the sliced element and its children (and after earlier slices), starts as a copy of the
  sliced element with its children, without ``slicing`` and with ``min`` 0, and has ids ``identifier:name``;
- a differential element replaces what it states (cardinality, types, fixed and pattern values, binding,
  short, mustSupport, slicing) and adds its invariants to the base's; a type it names keeps the base's
  properties it does not restate (a logical reference keeps the base's target resources);
- a constraint may only narrow the base (cardinality, types, reference targets); breaking that is a
  BuildError naming the profile and element;
- the differential is put in the snapshot's order, as FHIR expects of both, and the mappings (RIM, v2, ...)
  the copied elements carry are declared as their source definitions declare them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from pathlib import Path

from standard.artefacts import read_json
from standard.errors import BuildError

BASE_DIR = Path(__file__).parents[1] / "source" / "fhir-r4-base"
HL7_SD = "http://hl7.org/fhir/StructureDefinition/"

Loader = Callable[[str], dict]
"""Returns the HL7 R4 StructureDefinition of a resource type or datatype, by name ("Patient", "Identifier")."""

_CARRIED = ("short", "min", "max", "binding", "mustSupport", "slicing", "sliceName", "contentReference")


@cache
def vendored(name: str) -> dict:
    """The HL7 R4 StructureDefinition `name` as vendored in standard/source/fhir-r4-base."""
    return read_json(BASE_DIR / f"StructureDefinition-{name}.json",
                     f": the profiles need the FHIR R4 base definition of {name}; re-extract the base definitions "
                     f"(see {BASE_DIR / 'README.md'})")


def add_snapshots(resources: list[dict], loader: Loader = vendored) -> None:
    """Give every StructureDefinition in `resources` its snapshot (in place), parents before children."""
    by_url = {r["url"]: r for r in resources if r["resourceType"] == "StructureDefinition"}
    types = {url: sd["type"] for url, sd in by_url.items()}
    done: dict[str, list[dict]] = {}

    def snapshot_of(sd: dict, chain: tuple[str, ...] = ()) -> list[dict]:
        url = sd["url"]
        if url in done:
            return done[url]
        if url in chain:
            raise BuildError(f"StructureDefinition {sd['id']}: its baseDefinition chain loops back to itself")
        base_url = sd["baseDefinition"]
        read: list[dict] = []  # the HL7 definitions this snapshot copies from, for their mapping declarations

        def reading(name: str) -> dict:
            read.append(loader(name))
            return read[-1]

        if base_url in by_url:
            base = snapshot_of(by_url[base_url], (*chain, url))
            read.append(by_url[base_url])
        elif base_url == HL7_SD + sd["type"]:
            base = reading(sd["type"])["snapshot"]["element"]
        else:
            raise BuildError(f"StructureDefinition {sd['id']}: baseDefinition {base_url} is neither a profile of "
                             f"this package nor the FHIR R4 definition of {sd['type']}")
        done[url] = apply_differential(sd, base, reading, types)
        _declare_mappings(sd, done[url], read)
        # FHIR tools expect the differential in the snapshot's order too (the profile data need not be).
        position = {e["id"]: i for i, e in enumerate(done[url])}
        sd["differential"]["element"].sort(key=lambda d: position[d["id"]])
        return done[url]

    for sd in by_url.values():
        sd["snapshot"] = {"element": snapshot_of(sd)}


def _declare_mappings(sd: dict, elements: list[dict], sources: list[dict]) -> None:
    """Declare the mappings (RIM, v2, ...) the copied elements use, as their source definitions declare them."""
    used = {m["identity"] for e in elements for m in e.get("mapping", [])}
    declared: dict[str, dict] = {}
    for source in sources:
        for m in source.get("mapping", []):
            declared.setdefault(m["identity"], m)
    missing = used - set(declared)
    if missing:
        raise BuildError(f"StructureDefinition {sd['id']}: mappings {', '.join(sorted(missing))} are used by its "
                         "elements but declared by none of the definitions they come from")
    sd["mapping"] = [copy.deepcopy(m) for identity, m in declared.items() if identity in used]


def apply_differential(sd: dict, base: list[dict], loader: Loader, types: dict[str, str]) -> list[dict]:
    """The snapshot of `sd`: its differential applied to a copy of the base snapshot `base`.

    Args:
        sd: the profile's StructureDefinition (with its differential).
        base: the snapshot elements of its baseDefinition (left untouched).
        loader: where datatype definitions come from when a datatype's children are constrained.
        types: resource type of every profile of the package, by url (to check reference targets).
    """
    elements = copy.deepcopy(base)
    where = f"StructureDefinition {sd['id']}"
    # Parents before children, so a choice narrowed to one type (event[x] to Coding) or a new slice exists
    # before its children are looked for; the sort is stable, so siblings keep the differential's order.
    for diff in sorted(sd["differential"]["element"], key=lambda d: d["id"].count(".")):
        here = f"{where}, element {diff['id']}"
        target = elements[_ensure(elements, diff["id"], loader, here)]
        if target["path"] != diff["path"]:
            raise BuildError(f"{here}: its path is {diff['path']}, the base says {target['path']}")
        _merge(target, diff, sd["url"], types, here)
    return elements


def _find(elements: list[dict], eid: str) -> int | None:
    return next((i for i, e in enumerate(elements) if e["id"] == eid), None)


def _subtree_end(elements: list[dict], start: int) -> int:
    """Index just past the element at `start`, its children and its slices."""
    eid = elements[start]["id"]
    end = start + 1
    while end < len(elements) and elements[end]["id"].startswith((f"{eid}.", f"{eid}:")):
        end += 1
    return end


def _ensure(elements: list[dict], eid: str, loader: Loader, where: str) -> int:
    """Index of element `eid`, adding it (a slice, or a datatype's children) when the base lists it not yet."""
    found = _find(elements, eid)
    if found is not None:
        return found
    parent_id, _, last = eid.rpartition(".")
    if not parent_id:
        raise BuildError(f"{where}: element {eid} is not below the profiled resource")
    name, _, slice_name = last.partition(":")
    if slice_name:
        return _add_slice(elements, f"{parent_id}.{name}", slice_name, loader, where)
    parent = _ensure(elements, parent_id, loader, where)
    if not any(e["id"].startswith(f"{parent_id}.") for e in elements):
        _expand_datatype(elements, parent, loader, where)
    found = _find(elements, eid)
    if found is None:
        raise BuildError(f"{where}: {elements[parent]['path']} has no element {name!r} in FHIR R4")
    return found


def _add_slice(elements: list[dict], sliced_id: str, slice_name: str, loader: Loader, where: str) -> int:
    sliced = _ensure(elements, sliced_id, loader, where)
    if "slicing" not in elements[sliced]:
        raise BuildError(f"{where}: slice {slice_name!r} of {sliced_id}, which has no slicing (discriminator)")
    end = _subtree_end(elements, sliced)
    slice_id = f"{sliced_id}:{slice_name}"
    template = [e for e in elements[sliced:end] if ":" not in e["id"][len(sliced_id):]]
    copies = []
    for e in template:
        c = copy.deepcopy(e)
        c["id"] = slice_id + e["id"][len(sliced_id):]
        copies.append(c)
    head = copies[0]
    head.pop("slicing", None)
    head["sliceName"] = slice_name
    head["min"] = 0  # a slice is optional until the profile says how many
    elements[end:end] = copies
    return end


def _expand_datatype(elements: list[dict], parent: int, loader: Loader, where: str) -> None:
    """List the children of a datatype element (from the datatype's snapshot) right after it."""
    el = elements[parent]
    if "contentReference" in el:
        raise BuildError(f"{where}: {el['id']} repeats another element ({el['contentReference']}); constraining "
                         "inside it is not supported")
    codes = sorted({t["code"] for t in el.get("type", [])})
    if len(codes) != 1:
        raise BuildError(f"{where}: {el['id']} has types {', '.join(codes)}; constrain it to one type before "
                         "constraining its children")
    if codes[0] in ("BackboneElement", "Element"):
        raise BuildError(f"{where}: {el['id']} has no children to constrain")
    datatype = loader(codes[0])["snapshot"]["element"]
    root_id, root_path = datatype[0]["id"], datatype[0]["path"]
    children = []
    for e in datatype[1:]:
        c = copy.deepcopy(e)
        c["id"] = el["id"] + e["id"][len(root_id):]
        c["path"] = el["path"] + e["path"][len(root_path):]
        children.append(c)
    elements[parent + 1:parent + 1] = children


def _cardinality(value: str) -> float:
    return float("inf") if value == "*" else int(value)


def _merge(target: dict, diff: dict, profile_url: str, types: dict[str, str], where: str) -> None:
    """Apply one differential element to its snapshot element, refusing anything that widens the base."""
    base_min, base_max = target.get("min", 0), target.get("max", "*")
    for key, value in diff.items():
        if key in ("id", "path"):
            continue
        if key == "type":
            target["type"] = _narrow_types(target.get("type", []), value, types, where)
        elif key == "constraint":
            target["constraint"] = [*target.get("constraint", []),
                                    *({**c, "source": profile_url} for c in value)]
        elif key.startswith(("fixed", "pattern")):
            for old in [k for k in target if k.startswith(("fixed", "pattern"))]:
                del target[old]
            target[key] = copy.deepcopy(value)
        elif key in _CARRIED:
            target[key] = copy.deepcopy(value)
        else:
            raise BuildError(f"{where}: the snapshot step does not know how to apply {key!r}")
    new_min, new_max = target.get("min", 0), target.get("max", "*")
    if new_min < base_min or _cardinality(new_max) > _cardinality(base_max):
        raise BuildError(f"{where}: cardinality {new_min}..{new_max} is wider than the base's {base_min}..{base_max}")
    if new_min > _cardinality(new_max):
        raise BuildError(f"{where}: min {new_min} is above max {new_max}")


def _narrow_types(base: list[dict], wanted: list[dict], types: dict[str, str], where: str) -> list[dict]:
    by_code = {t["code"]: t for t in base}
    out = []
    for t in wanted:
        if t["code"] not in by_code:
            raise BuildError(f"{where}: type {t['code']} is not one of the base's ({', '.join(by_code)})")
        merged = {**copy.deepcopy(by_code[t["code"]]), **copy.deepcopy(t)}
        allowed = by_code[t["code"]].get("targetProfile")
        for target in t.get("targetProfile", []) if allowed else []:
            target_type = types.get(target, target.removeprefix(HL7_SD))
            if HL7_SD + "Resource" not in allowed and HL7_SD + target_type not in allowed:
                raise BuildError(f"{where}: reference target {target} ({target_type}) is not allowed by the base")
        out.append(merged)
    return out
