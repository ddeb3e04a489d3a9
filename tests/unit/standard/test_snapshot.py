"""Snapshots: the differential applied to the HL7 R4 base in FHIR's order, and refusals of what widens the base."""

from __future__ import annotations

import orjson
import pytest

from standard import artefacts
from standard.errors import BuildError
from standard.generate.snapshot import HL7_SD, add_snapshots, vendored


def _sd(pid: str, type_: str, *diff: dict, base: str | None = None) -> dict:
    return {"resourceType": "StructureDefinition", "id": pid, "url": f"urn:test:{pid}", "type": type_,
            "baseDefinition": base or HL7_SD + type_,
            "differential": {"element": [{"id": type_, "path": type_}, *diff]}}


def _el(eid: str, **values) -> dict:
    path = ".".join(step.split(":")[0] for step in eid.split("."))
    return {"id": eid, "path": path, **values}


def _ids(sd: dict) -> list[str]:
    return [e["id"] for e in sd["snapshot"]["element"]]


def _element(sd: dict, eid: str) -> dict:
    return next(e for e in sd["snapshot"]["element"] if e["id"] == eid)


def test_datatype_children_follow_their_parent_and_slices_follow_the_children():
    sd = _sd("p", "Patient",
             _el("Patient.identifier:a.value", min=1),  # out of order on purpose
             _el("Patient.identifier", slicing={"discriminator": [{"type": "pattern", "path": "system"}],
                                                "rules": "open"}),
             _el("Patient.identifier.system", min=1),
             _el("Patient.identifier:a", sliceName="a", max="1"),
             _el("Patient.identifier:a.system", patternUri="urn:a"))
    add_snapshots([sd])
    ids = _ids(sd)
    start = ids.index("Patient.identifier")
    assert ids[start:start + 18] == [
        "Patient.identifier", *(f"Patient.identifier.{n}" for n in
                                ("id", "extension", "use", "type", "system", "value", "period", "assigner")),
        "Patient.identifier:a", *(f"Patient.identifier:a.{n}" for n in
                                  ("id", "extension", "use", "type", "system", "value", "period", "assigner"))]
    assert ids[start + 18] == "Patient.active"
    assert _element(sd, "Patient.identifier:a")["min"] == 0 and "slicing" not in _element(sd, "Patient.identifier:a")
    assert _element(sd, "Patient.identifier:a.system")["patternUri"] == "urn:a"
    assert _element(sd, "Patient.identifier:a.value")["min"] == 1
    assert _element(sd, "Patient.identifier.system")["base"]["path"] == "Identifier.system"
    assert [d["id"] for d in sd["differential"]["element"]] == [
        "Patient", "Patient.identifier", "Patient.identifier.system", "Patient.identifier:a",
        "Patient.identifier:a.system", "Patient.identifier:a.value"]


def test_a_slice_of_a_backbone_element_carries_its_children():
    sd = _sd("t", "Task",
             _el("Task.input", slicing={"discriminator": [{"type": "pattern", "path": "type"}], "rules": "open"}),
             _el("Task.input:x", sliceName="x", min=1),
             _el("Task.input:x.value[x]", type=[{"code": "string"}]))
    add_snapshots([sd])
    ids = _ids(sd)
    assert ids[ids.index("Task.input:x"):ids.index("Task.input:x") + 6] == [
        "Task.input:x", "Task.input:x.id", "Task.input:x.extension", "Task.input:x.modifierExtension",
        "Task.input:x.type", "Task.input:x.value[x]"]
    assert _element(sd, "Task.input:x.value[x]")["type"] == [{"code": "string"}]
    assert len(_element(sd, "Task.input.value[x]")["type"]) > 40  # the unsliced element keeps every type


def test_a_derived_profile_starts_from_its_parent_whatever_the_order():
    parent = _sd("parent", "Patient", _el("Patient.birthDate", min=1))
    child = _sd("child", "Patient", _el("Patient.gender", min=1), base="urn:test:parent")
    add_snapshots([child, parent])
    assert _element(child, "Patient.birthDate")["min"] == 1 and _element(child, "Patient.gender")["min"] == 1
    assert _element(parent, "Patient.gender")["min"] == 0


def test_invariants_add_to_the_base_and_name_their_profile():
    sd = _sd("p", "Patient", _el("Patient.gender", constraint=[{"key": "p-1", "severity": "error",
                                                               "human": "h", "expression": "true"}]))
    add_snapshots([sd])
    keys = [(c["key"], c.get("source")) for c in _element(sd, "Patient.gender")["constraint"]]
    assert ("ele-1", "http://hl7.org/fhir/StructureDefinition/Element") in keys and ("p-1", "urn:test:p") in keys


def test_a_logical_reference_keeps_the_base_targets():
    sd = _sd("m", "MessageHeader", _el("MessageHeader.sender", type=[{"code": "Reference"}]))
    add_snapshots([sd])
    assert _element(sd, "MessageHeader.sender")["type"][0]["targetProfile"] == [
        HL7_SD + "Practitioner", HL7_SD + "PractitionerRole", HL7_SD + "Organization"]


@pytest.mark.parametrize(("diff", "says"), [
    (_el("Patient.birthDate", max="*"), "wider than the base's 0..1"),
    (_el("Patient.link.other", min=0), "wider than the base's 1..1"),
    (_el("Patient.gender", min=1, max="0"), "min 1 is above max 0"),
    (_el("Patient.identifier.colour", min=1), "has no element 'colour'"),
    (_el("Patient.deceased[x]", type=[{"code": "Quantity"}]), "type Quantity is not one of the base's"),
    (_el("Patient.identifier:a", sliceName="a"), "which has no slicing"),
    (_el("Patient.managingOrganization", type=[{"code": "Reference", "targetProfile": [HL7_SD + "Location"]}]),
     "Location) is not allowed by the base"),
    (_el("Patient.deceased[x].value", min=1), "constrain it to one type"),
    (_el("Patient.identifier", fixedPeriod={}, colour="red"), "does not know how to apply 'colour'"),
])
def test_what_widens_or_misnames_the_base_is_refused_naming_profile_and_element(diff, says):
    with pytest.raises(BuildError) as e:
        add_snapshots([_sd("SGX-Test", "Patient", diff)])
    assert says in str(e.value) and "SGX-Test" in str(e.value) and diff["id"] in str(e.value)


def test_a_base_chain_that_loops_is_refused():
    a = _sd("a", "Patient", base="urn:test:b")
    b = _sd("b", "Patient", base="urn:test:a")
    with pytest.raises(BuildError, match="loops back"):
        add_snapshots([a, b])


def test_every_package_snapshot_holds_its_differential_in_tree_order():
    for path in sorted(artefacts.PACKAGE.glob("StructureDefinition-*.json")):
        sd = orjson.loads(path.read_bytes())
        elements = sd["snapshot"]["element"]
        ids = [e["id"] for e in elements]
        assert len(ids) == len(set(ids)), path.name
        seen = {ids[0]}
        for e in elements[1:]:  # every element comes after its parent (a slice's parent is the resource's)
            assert e["id"].rpartition(".")[0] in seen, (path.name, e["id"])
            seen.add(e["id"])
            name = e["id"].rsplit(".", 1)[-1]
            if ":" in name:  # a slice comes after the element it slices
                assert e["id"].rsplit(":", 1)[0] in seen, (path.name, e["id"])
        base_ids = [e["id"] for e in vendored(sd["type"])["snapshot"]["element"]]
        assert [i for i in ids if i in set(base_ids)] == base_ids, path.name  # nothing lost, base order kept
        used = {m["identity"] for e in elements for m in e.get("mapping", [])}
        assert used == {m["identity"] for m in sd["mapping"]}, path.name  # every mapping used is declared
        by_id = {e["id"]: e for e in elements}
        positions = [ids.index(d["id"]) for d in sd["differential"]["element"]]
        assert positions == sorted(positions), path.name
        for d in sd["differential"]["element"]:
            snap = by_id[d["id"]]
            for key, value in d.items():
                if key == "type":
                    assert [t["code"] for t in snap["type"]] == [t["code"] for t in value], (path.name, d["id"])
                    for got, want in zip(snap["type"], value, strict=True):
                        assert got.items() >= want.items(), (path.name, d["id"])
                elif key == "constraint":
                    assert all({**c, "source": sd["url"]} in snap["constraint"] for c in value), (path.name, d["id"])
                else:
                    assert snap[key] == value, (path.name, d["id"], key)


def test_vendored_base_definitions_hold_only_fhir_r4_elements():
    """Every element name of the vendored definitions is one the fhir.resources models know (nothing added by
    the package they were extracted from, such as its server's own Meta elements)."""
    from standard import fhirmodel
    from standard.generate.snapshot import BASE_DIR

    files = sorted(BASE_DIR.glob("StructureDefinition-*.json"))
    assert len(files) >= 15
    for path in files:
        sd = orjson.loads(path.read_bytes())
        elements = sd["snapshot"]["element"]
        types = {elements[0]["path"]: sd["type"]}
        for e in elements[1:]:
            parent, _, name = e["path"].rpartition(".")
            if parent not in types or name.endswith("[x]"):
                continue  # below a choice or a content reference: named by the element above
            types[e["path"]] = fhirmodel.element(types[parent], name).type_name  # KeyError if not FHIR's


def test_build_without_a_vendored_definition_says_which_and_what_to_do(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from sgx.cli import cli
    from standard.generate import snapshot

    for path in snapshot.BASE_DIR.glob("StructureDefinition-*.json"):
        if path.name != "StructureDefinition-Period.json":
            (tmp_path / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(snapshot, "BASE_DIR", tmp_path)
    snapshot.vendored.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["standard", "build", "--check"])
    finally:
        snapshot.vendored.cache_clear()
    assert result.exit_code == 1
    assert "StructureDefinition-Period.json is missing" in result.output and "re-extract" in result.output
    assert not isinstance(result.exception, BuildError)  # handled: a message, not a traceback
