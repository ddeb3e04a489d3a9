"""A run's report in every format it is read in: one line per test on the terminal, JSON for programs, JUnit XML
for a vendor's CI, and a self-contained HTML page (requirement, test, result, evidence). The evidence holds file
names, FHIRPath locations and finding codes, never values from a message."""

from __future__ import annotations

from datetime import UTC, datetime
from hashlib import sha256

import orjson
from jinja2 import Environment, select_autoescape
from lxml import etree

from conformance.model import Report, Result, TestRun
from standard import catalogue as cat

SYMBOL = {Result.PASS: "pass ", Result.FAIL: "FAIL ", Result.SKIP: "skip ", Result.ERROR: "ERROR"}


def terminal_line(run: TestRun) -> str:
    line = f"{SYMBOL[run.outcome.result]} {run.test.id:<11} {run.test.title}"
    if run.outcome.result is not Result.PASS and run.outcome.message:
        line += f"\n        {run.outcome.message}"
    for e in run.outcome.evidence[:5]:
        line += f"\n        - {e.where}: {e.what}"
    if len(run.outcome.evidence) > 5:
        line += f"\n        - and {len(run.outcome.evidence) - 5} more (see the report)"
    return line


def summary(report: Report) -> str:
    counts = ", ".join(f"{report.count(r)} {r.value}" for r in Result)
    return f"{report.suite.title}: {counts}; {'PASSED' if report.passed else 'FAILED'}"


def as_dict(report: Report) -> dict:
    return {
        "kit": report.suite.id, "title": report.suite.title, "standard": cat.VERSION,
        "finished": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "context": report.context, "passed": report.passed,
        "counts": {r.value: report.count(r) for r in Result},
        "tests": [{"group": r.group, "id": r.test.id, "title": r.test.title, "requirements": list(r.test.requirements),
                   "result": r.outcome.result.value, "message": r.outcome.message, "seconds": round(r.seconds, 4),
                   "evidence": [{"where": e.where, "what": e.what} for e in r.outcome.evidence]}
                  for r in report.runs],
    }


def as_json(report: Report) -> bytes:
    return orjson.dumps(as_dict(report), option=orjson.OPT_INDENT_2)


def digest(report_json: bytes) -> str:
    return "sha256:" + sha256(report_json).hexdigest()


def as_junit(report: Report) -> bytes:
    """JUnit XML as CI systems read it: one testsuite per group, failures and errors with their evidence."""
    root = etree.Element("testsuites", name=report.suite.title, tests=str(len(report.runs)),
                         failures=str(report.count(Result.FAIL)), errors=str(report.count(Result.ERROR)),
                         skipped=str(report.count(Result.SKIP)))
    for group in report.suite.groups:
        runs = [r for r in report.runs if r.group == group.id]
        suite = etree.SubElement(root, "testsuite", name=f"{report.suite.id}.{group.id}", tests=str(len(runs)),
                                 failures=str(sum(r.outcome.result is Result.FAIL for r in runs)),
                                 errors=str(sum(r.outcome.result is Result.ERROR for r in runs)),
                                 skipped=str(sum(r.outcome.result is Result.SKIP for r in runs)),
                                 time=f"{sum(r.seconds for r in runs):.3f}")
        for run in runs:
            case = etree.SubElement(suite, "testcase", classname=f"{report.suite.id}.{group.id}",
                                    name=f"{run.test.id} {run.test.title}", time=f"{run.seconds:.4f}")
            props = etree.SubElement(case, "properties")
            for requirement in run.test.requirements:
                etree.SubElement(props, "property", name="requirement", value=requirement)
            detail = "\n".join(f"{e.where}: {e.what}" for e in run.outcome.evidence)
            if run.outcome.result is Result.FAIL:
                etree.SubElement(case, "failure", message=run.outcome.message).text = detail
            elif run.outcome.result is Result.ERROR:
                etree.SubElement(case, "error", message=run.outcome.message).text = detail
            elif run.outcome.result is Result.SKIP:
                etree.SubElement(case, "skipped", message=run.outcome.message)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}: {{ 'passed' if passed else 'failed' }}</title>
<style>body{font-family:system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem 1.5rem;color:#0b0c0c}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #b1b4b6;padding:.3rem .5rem;text-align:left;
vertical-align:top}th{background:#f3f2f1}.pass{color:#00703c}.fail,.error{color:#d4351c;font-weight:bold}
.skip{color:#505a5f}ul{margin:.2rem 0;padding-left:1.2rem}code{font-size:.9em}</style></head><body>
<h1>{{ title }}: {{ 'passed' if passed else 'failed' }}</h1>
<p>Standard {{ standard }}, finished {{ finished }}.
{% for name, n in counts.items() %}{{ n }} {{ name }}{% if not loop.last %}, {% endif %}{% endfor %}.</p>
{% if context %}<table><tr><th colspan="2">Run</th></tr>{% for k, v in context.items() %}
<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}</table>{% endif %}
<h2>Tests</h2>
<table><tr><th>Test</th><th>Requirements</th><th>Result</th><th>Evidence</th></tr>
{% for t in tests %}<tr id="{{ t.id }}"><td><code>{{ t.id }}</code> {{ t.title }}</td>
<td>{% for r in t.requirements %}<code>{{ r }}</code> {% endfor %}</td>
<td class="{{ t.result }}">{{ t.result }}</td>
<td>{{ t.message }}{% if t.evidence %}<ul>{% for e in t.evidence %}<li><code>{{ e.where }}</code>: {{ e.what }}</li>
{% endfor %}</ul>{% endif %}</td></tr>{% endfor %}</table></body></html>"""


def as_html(report: Report) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(_HTML).render(**as_dict(report))
