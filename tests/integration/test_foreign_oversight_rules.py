"""The published oversight rules and their JSON Schema work in a validator we did not write: ajv 8 (draft
2020-12, every strict check an error, `strictRequired` included, and any warning it prints a failure), as a host
authority or an auditor would check a rules file before trusting it. Broken twins show the check can fail: a rule
whose threshold is text, and a rules file without its version, must be refused by the same ajv; and a schema whose
`then` requires a property it does not declare beside it must not compile in that strict mode."""

from __future__ import annotations

import json
import subprocess

import orjson

from broker.oversight.rules import RULES_FILE, SCHEMA_FILE

NODE_SCRIPT = r"""
import fs from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const input = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
// Every strict check on; anything ajv prints (a strict-mode warning) counts as a failure.
for (const level of ["log", "info", "warn", "error", "debug"]) {
  console[level] = (...args) => { process.stderr.write(args.map(String).join(" ") + "\n"); };
}
const ajv = new Ajv2020({strict: true});
addFormats(ajv);
const validate = ajv.compile(input.schema);
const verdicts = {};
for (const [name, rules] of Object.entries(input.rules)) {
  verdicts[name] = validate(rules) ? [] : validate.errors.map(e => `${e.instancePath} ${e.message}`);
}
process.stdout.write(JSON.stringify(verdicts));
"""


def _run_ajv(tmp_path, foreign_node, schema: dict, rules: dict[str, dict]) -> subprocess.CompletedProcess:
    (tmp_path / "input.json").write_bytes(orjson.dumps({"schema": schema, "rules": rules}))
    return subprocess.run(["node", "--input-type=module", "-e", NODE_SCRIPT, str(tmp_path / "input.json")],
                          cwd=foreign_node, capture_output=True, text=True, timeout=120)


def _ajv_verdicts(tmp_path, foreign_node, rules: dict[str, dict]) -> dict[str, list[str]]:
    proc = _run_ajv(tmp_path, foreign_node, orjson.loads(SCHEMA_FILE.read_bytes()), rules)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_the_published_rules_pass_their_schema_in_strict_ajv_and_broken_twins_do_not(tmp_path, foreign_node):
    published = orjson.loads(RULES_FILE.read_bytes())
    text_threshold = json.loads(json.dumps(published))
    rate = next(r for r in text_threshold["rules"] if "per_child_year" in r)
    rate["per_child_year"] = str(rate["per_child_year"])
    no_version = {k: v for k, v in published.items() if k != "version"}
    verdicts = _ajv_verdicts(tmp_path, foreign_node, {"published": published, "text-threshold": text_threshold,
                                                      "no-version": no_version})
    assert verdicts["published"] == []
    assert verdicts["text-threshold"] and verdicts["no-version"]


def test_a_schema_whose_then_requires_an_undeclared_property_does_not_compile_in_strict_ajv(tmp_path, foreign_node):
    """The twin of the schema: the strict mode above is really on, so the published schema's passing means it
    declares every property each `then` requires."""
    schema = orjson.loads(SCHEMA_FILE.read_bytes())
    branch = schema["$defs"]["rule"]["allOf"][0]["then"]
    assert branch["required"] and set(branch["properties"]) == set(branch["required"])
    del branch["properties"]
    proc = _run_ajv(tmp_path, foreign_node, schema, {"published": orjson.loads(RULES_FILE.read_bytes())})
    assert proc.returncode != 0 and "strictRequired" in proc.stderr, proc.stderr[-2000:]
