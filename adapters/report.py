"""The run report: JSON for programs, a self-contained HTML page for the people who fix the data.

Neither carries a child's data: problems name the file, row or element, and field, never the value.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
from jinja2 import Environment

from adapters.base import Problem

_PAGE = Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Adapter report</title>
<style>body{font:16px/1.5 system-ui,sans-serif;margin:2rem;max-width:70rem}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #bbb;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#eee}
.ok{color:#0b6b0b}.bad{color:#a00}</style></head><body>
<h1>Adapter report</h1>
<p class="{{ 'bad' if problems else 'ok' }}">{{ problems|length }} finding{{ '' if problems|length == 1 else 's' }}
{%- if summary.dry_run %} (dry run: nothing was queued){% endif %}.</p>
<h2>Summary</h2><table>
<tr><th>Rows read</th><td>{{ summary.rows_read }}</td></tr>
{% for event, n in summary.messages_built.items() %}<tr><th>Built: {{ event }}</th><td>{{ n }}</td></tr>{% endfor %}
{% for key in ("unchanged", "out_of_scope", "sent", "waiting") %}{% if key in summary %}
<tr><th>{{ key.replace("_", " ")|capitalize }}</th><td>{{ summary[key] }}</td></tr>{% endif %}{% endfor %}
</table>
{% if by_code %}<h2>Findings by code</h2><table><tr><th>Code</th><th>Count</th></tr>
{% for code, n in by_code %}<tr><td>{{ code }}</td><td>{{ n }}</td></tr>{% endfor %}</table>
<h2>Findings</h2><table><tr><th>File</th><th>Row</th><th>Field</th><th>Code</th><th>What to do</th></tr>
{% for p in problems %}<tr><td>{{ p.file }}</td><td>{{ p.row or "" }}</td><td>{{ p.field or "" }}</td>
<td>{{ p.code }}</td><td>{{ p.message }}</td></tr>{% endfor %}</table>{% endif %}
</body></html>
""")


def write_report(path: Path, summary: dict, problems: list[Problem]) -> None:
    if path.suffix.lower() in {".html", ".htm"}:
        by_code = sorted(Counter(p.code for p in problems).items(), key=lambda kv: (-kv[1], kv[0]))
        path.write_text(_PAGE.render(summary=summary, problems=problems, by_code=by_code), encoding="utf-8")
    else:
        path.write_bytes(orjson.dumps({**summary, "problems": [p.__dict__ for p in problems]},
                                      option=orjson.OPT_INDENT_2))
