"""The published JSON Schemas work in a validator we did not write: ajv 8, strict mode, default options.

One node process (cwd tests/foreign, where ajv and ajv-formats are pinned) compiles every
`standard/schemas/*.schema.json` with `new Ajv2020()` plus `addFormats`, counting anything
ajv prints (its strict-mode "log" warnings) as a failure (and again with `strict: true`, which makes
every strict check an error, strictRequired included), then validates every case of the
case suite and every example. Ajv's verdict must equal our schema layer's verdict (findings
from `standard.validator.schema_layer`, not the whole validator: structure, profile and
business rules are not JSON Schema), and ajv must reject every message our schema layer rejects.

Broken twins show the checks can fail: a schema still carrying one of our old `x-finding`
annotations, and one whose nodes lost their `type`, must be refused or warned about by the
same strict ajv; a schema with its rules weakened must make the verdicts disagree.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import orjson
import pytest

from standard import artefacts
from standard import catalogue as cat
from standard.validator import event_of, schema_layer
from tests.conftest import load_cases

# Messages on which ajv and our schema layer may disagree, each with the reason. Keep it short and
# say the same in docs/standard/index.md ("Using the schemas with another validator").
ALLOWED_DISAGREEMENTS: dict[str, str] = {}

NODE_SCRIPT = r"""
import fs from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const input = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
const printed = [];
for (const level of ["log", "info", "warn", "error", "debug"]) {
  console[level] = (...args) => printed.push(args.map(String).join(" "));
}

// Our finding codes from ajv's errors and the schema's side file (the recipe in docs/standard/index.md):
// the node is the error's schemaPath without "#" and its last segment (the keyword). An "if" error only
// says its "then" failed, and the errors inside a failed anyOf are its branches: the anyOf itself counts.
function findingCodes(errors, side) {
  const branches = errors.filter(e => e.keyword === "anyOf").map(e => e.schemaPath + "/");
  return errors
    .filter(e => e.keyword !== "if" && !branches.some(b => e.schemaPath.startsWith(b)))
    .map(e => {
      const segments = e.schemaPath.slice(1).split("/");
      const keyword = segments.pop() === "false schema" ? "false" : e.keyword;
      const node = side.nodes[segments.join("/")];
      return (node && node.finding) || side.defaults[keyword] || side.otherwise;
    });
}

function compile(schema, options) {
  // A fresh instance with the default options, as a vendor would write it (or with the options given).
  const ajv = options ? new Ajv2020(options) : new Ajv2020();
  addFormats(ajv);
  printed.length = 0;
  try {
    const validate = ajv.compile(schema);
    return { validate, error: null, printed: [...printed] };
  } catch (e) {
    return { validate: null, error: String(e.message), printed: [...printed] };
  }
}

const out = { compiled: {}, compiledAllStrict: {}, verdicts: {}, twins: {} };
const validators = {};
for (const [event, schema] of Object.entries(input.schemas)) {
  const { validate, error, printed: said } = compile(schema);
  out.compiled[event] = { error, printed: said };
  validators[event] = validate;
  // Every strict check as an error, strictRequired (off by default) included.
  const all = compile(schema, { strict: true });
  out.compiledAllStrict[event] = { error: all.error, printed: all.printed };
}
for (const item of input.items) {
  const validate = validators[item.event];
  if (!validate) continue;
  const valid = validate(item.data);
  const errors = validate.errors || [];
  out.verdicts[item.id] = {
    valid,
    errors: errors.map(e => `${e.schemaPath} ${e.message}`),
    codes: findingCodes(errors, input.findings[item.event]),
  };
}
for (const [name, twin] of Object.entries(input.twins)) {
  const { validate, error, printed: said } = compile(twin.schema);
  const verdicts = {};
  for (const item of input.items.filter(i => validate && i.event === twin.event)) {
    verdicts[item.id] = validate(item.data);
  }
  out.twins[name] = { error, printed: said, verdicts };
}
process.stdout.write(JSON.stringify(out));
"""


def _items() -> list[dict]:
    """Every case of the suite (validated against its message type's schema) and every example."""
    items = [{"id": f"case {cid}", "event": event, "data": test["data"]} for cid, event, test in load_cases()]
    for path in sorted(artefacts.EXAMPLES.glob("*.json")):
        doc = orjson.loads(path.read_bytes())
        items.append({"id": f"example {path.stem}", "event": event_of(doc), "data": doc})
    return items


def _strip(node, key: str, value):
    """A copy of a schema without every `key: value` pair."""
    if isinstance(node, list):
        return [_strip(n, key, value) for n in node]
    if isinstance(node, dict):
        return {k: _strip(v, key, value) for k, v in node.items() if not (k == key and v == value)}
    return node


def _twins(event: str) -> dict[str, dict]:
    schema = artefacts.schema(event)
    annotated = {**schema, "properties": {**schema["properties"], "entry": {
        **schema["properties"]["entry"], "x-finding": "profile-cardinality"}}}
    # Every profile's top-level required elements dropped: a rule our schema layer still enforces.
    weakened = {**schema, "$defs": {name: {k: v for k, v in d.items() if k != "required"}
                                    for name, d in schema["$defs"].items()}}
    return {
        "annotated": {"event": event, "schema": annotated},
        "untyped": {"event": event, "schema": _strip(schema, "type", "object")},
        "weakened": {"event": event, "schema": weakened},
    }


@pytest.fixture(scope="module")
def ajv_run(foreign_node: Path, tmp_path_factory) -> dict:
    items = _items()
    twin_event = "placement-started"
    payload = {
        "schemas": {e.code: artefacts.schema(e.code) for e in cat.EVENTS},
        "findings": {e.code: artefacts.schema_findings(e.code) for e in cat.EVENTS},
        "items": items,
        "twins": _twins(twin_event),
    }
    folder = tmp_path_factory.mktemp("ajv")
    (folder / "input.json").write_bytes(orjson.dumps(payload))
    proc = subprocess.run(["node", "--input-type=module", "-e", NODE_SCRIPT, str(folder / "input.json")],
                          cwd=foreign_node, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == "", proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    ours = {item["id"]: list(schema_layer.findings(item["event"], item["data"])) for item in items}
    return {"result": result, "ours": ours, "items": items, "twin_event": twin_event}


def test_every_schema_compiles_in_strict_mode_without_a_warning(ajv_run):
    compiled = ajv_run["result"]["compiled"]
    assert set(compiled) == {e.code for e in cat.EVENTS}
    problems = {event: c for event, c in compiled.items() if c["error"] or c["printed"]}
    assert problems == {}


def test_every_schema_also_passes_every_strict_check_as_an_error(ajv_run):
    compiled = ajv_run["result"]["compiledAllStrict"]
    assert set(compiled) == {e.code for e in cat.EVENTS}
    assert {event: c for event, c in compiled.items() if c["error"] or c["printed"]} == {}


def test_ajv_and_our_schema_layer_give_the_same_verdict_on_every_case_and_example(ajv_run):
    verdicts, ours = ajv_run["result"]["verdicts"], ajv_run["ours"]
    assert set(verdicts) == set(ours) == {i["id"] for i in ajv_run["items"]}
    disagreements = {
        item_id: {"ajv": verdicts[item_id]["errors"][:3] or "valid",
                  "ours": [f"{f.code} at {f.location}" for f in ours[item_id][:3]] or "valid"}
        for item_id in ours
        if verdicts[item_id]["valid"] == bool(ours[item_id]) and item_id not in ALLOWED_DISAGREEMENTS
    }
    assert disagreements == {}
    assert set(ALLOWED_DISAGREEMENTS) <= set(ours), "an allowed disagreement names a message that no longer exists"


def test_ajv_rejects_every_message_our_schema_layer_rejects(ajv_run):
    verdicts, ours = ajv_run["result"]["verdicts"], ajv_run["ours"]
    rejected_by_us = [item_id for item_id, found in ours.items() if found]
    assert len(rejected_by_us) > 50, "the case suite should exercise the schema layer"
    assert [item_id for item_id in rejected_by_us if verdicts[item_id]["valid"]] == []


def test_the_strict_checks_and_the_comparison_catch_broken_twins(ajv_run):
    twins, ours = ajv_run["result"]["twins"], ajv_run["ours"]
    assert "unknown keyword" in (twins["annotated"]["error"] or ""), twins["annotated"]
    assert any("strictTypes" in line for line in twins["untyped"]["printed"]), twins["untyped"]
    weakened = twins["weakened"]
    assert weakened["error"] is None and weakened["printed"] == []
    missed = [item_id for item_id, valid in weakened["verdicts"].items() if valid and ours[item_id]]
    assert missed, "a schema without its required rules should accept messages our schema layer rejects"


def test_ajv_errors_give_our_finding_codes_through_the_side_files(ajv_run):
    """A vendor using ajv reports the codes our schema layer reports, from `<event>.findings.json` alone."""
    verdicts, ours = ajv_run["result"]["verdicts"], ajv_run["ours"]
    rejected = [item_id for item_id, v in verdicts.items() if not v["valid"]]
    assert rejected
    wrong = {}
    for item_id in rejected:
        theirs, mine = verdicts[item_id]["codes"], {f.code for f in ours[item_id]}
        if not theirs or not set(theirs) <= mine:
            wrong[item_id] = {"ajv": theirs, "ours": sorted(mine)}
    assert wrong == {}
