"""The committed artefacts are exactly what the profile definitions generate, and cover the whole catalogue."""

from __future__ import annotations

import io
import tarfile

import orjson

from standard import artefacts
from standard import catalogue as cat
from standard.generate.build import build, package_tarball


def test_committed_artefacts_are_not_stale():
    assert build(check=True) == []


def test_every_event_has_schema_message_definition_cases_and_example():
    for event in cat.EVENTS:
        assert (artefacts.SCHEMAS / f"{event.code}.schema.json").exists()
        assert (artefacts.PACKAGE / f"MessageDefinition-{event.code}.json").exists()
        assert (artefacts.CASES / f"{event.code}.json").exists()
        assert any(artefacts.EXAMPLES.glob(f"{event.code}-*.json")), event.code


def test_package_index_lists_every_resource_file_and_names_r4():
    index = orjson.loads((artefacts.PACKAGE / ".index.json").read_bytes())
    listed = {f["filename"] for f in index["files"]}
    on_disk = {p.name for p in artefacts.PACKAGE.glob("*.json")} - {"package.json", ".index.json"}
    assert listed == on_disk
    manifest = orjson.loads((artefacts.PACKAGE / "package.json").read_bytes())
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}


def test_every_profile_binding_and_target_points_at_a_published_resource():
    urls = {orjson.loads(p.read_bytes()).get("url") for p in artefacts.PACKAGE.glob("*.json")}
    for sd_file in artefacts.PACKAGE.glob("StructureDefinition-*.json"):
        sd = orjson.loads(sd_file.read_bytes())
        for element in sd["differential"]["element"]:
            vs = element.get("binding", {}).get("valueSet", "")
            if vs.startswith(cat.CANONICAL):
                assert vs in urls, (sd["id"], vs)
            for t in element.get("type", []):
                for target in t.get("targetProfile", []):
                    assert target in urls, (sd["id"], target)
        if sd["baseDefinition"].startswith(cat.CANONICAL):
            assert sd["baseDefinition"] in urls


def test_tarball_has_npm_layout():
    with tarfile.open(fileobj=io.BytesIO(package_tarball())) as tar:
        names = tar.getnames()
    assert "package/package.json" in names and "package/.index.json" in names
    assert all(n.startswith("package/") for n in names)


def test_schemas_are_valid_draft_2020_12():
    import jsonschema

    for path in artefacts.SCHEMAS.glob("*.schema.json"):
        schema = orjson.loads(path.read_bytes())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)
