"""The run report: JSON for programs, a self-contained HTML page for the people who fix the data.

Both are made from the same summary, so their counts agree (a test parses the page and compares). Neither
carries a child's data: problems name the file, row or element, and field, never the value. The page
explains every outcome a row can have and, for a dry run, shows what would be sent, about which setting
and to whom.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from jinja2 import Environment

from adapters.base import Problem
from adapters.outcomes import EXPLAINED, OUTCOMES, REASONS

TITLES = {"sent": "Sent", "unchanged": "Unchanged", "not_notifiable": "Not notifiable", "held_back": "Held back",
          "refused": "Refused"}

_PAGE = Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Adapter report</title>
<style>body{font:16px/1.5 system-ui,sans-serif;margin:2rem;max-width:70rem}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #bbb;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#eee}
td.n{text-align:right}.ok{color:#0b6b0b}.bad{color:#a00}</style></head><body>
<h1>Adapter report</h1>
<p class="{{ 'bad' if problems else 'ok' }}" id="verdict">{{ summary.findings.values()|sum }}
finding{{ '' if summary.findings.values()|sum == 1 else 's' }}
{%- if summary.dry_run %} (dry run: nothing was queued or sent; "sent" below means "would be sent"){% endif %}.</p>

<h2>Every row read, by outcome</h2>
<p>Each row of the files read ends in exactly one of these. A row that feeds several messages (a child's Header
row, say) takes the outcome that needs most attention: refused, then held back, then sent, then unchanged, then
not notifiable.</p>
<table id="rows"><tr><th>Outcome</th><th>Rows</th><th>What it means</th></tr>
<tr><th>Rows read</th><td class="n" data-key="rows_read">{{ summary.rows_read }}</td><td>All of them, in
the outcomes below.</td></tr>
{% for key in outcomes %}<tr><th>{{ titles[key] }}{% if key == "sent" and summary.dry_run %} (would be){% endif %}
</th><td class="n" data-key="rows.{{ key }}">{{ summary.rows[key] }}</td><td>{{ explained[key] }}</td></tr>
{% endfor %}</table>
{% if summary.not_notifiable %}<h3>Why rows are not notifiable</h3>
<table id="reasons"><tr><th>Reason</th><th>Rows</th><th>What it means</th></tr>
{% for reason, n in summary.not_notifiable.items() %}<tr><td>{{ reason }}</td>
<td class="n" data-key="not_notifiable.{{ reason }}">{{ n }}</td><td>{{ reasons[reason] }}</td></tr>
{% endfor %}</table>{% endif %}

<h2>Messages</h2>
<table id="messages"><tr><th>Messages</th><th>Count</th><th>What it means</th></tr>
{% for event, n in summary.messages_built.items() %}<tr><th>{{ event }}</th>
<td class="n" data-key="messages_built.{{ event }}">{{ n }}</td><td>built and validated{% if not summary.dry_run
%}, then queued in the outbox{% endif %}</td></tr>{% endfor %}
<tr><th>Unchanged</th><td class="n" data-key="unchanged">{{ summary.unchanged }}</td><td>messages not built
again: their facts were sent by an earlier run</td></tr>
<tr><th>Sent to the exchange</th><td class="n" data-key="sent">{{ summary.sent }}</td><td>handed to the
exchange by this run (including any left in the outbox by an earlier run){% if summary.dry_run %}; none in a dry
run{% endif %}</td></tr>
<tr><th>Waiting</th><td class="n" data-key="waiting">{{ summary.waiting }}</td><td>queued but not yet sent (the
exchange could not be reached); they go with the next run</td></tr></table>

<h2>{% if summary.dry_run %}What would be sent{% else %}What was sent{% endif %}, by event, setting and
recipient</h2>
{% if sending %}<table id="sending"><tr><th>Event</th><th>Setting (Ofsted URN)</th><th>Recipients</th>
<th>Messages</th></tr>
{% for s in sending %}<tr><td>{{ s.event }}</td><td>{{ s.setting }}{% if s.setting_name %} ({{ s.setting_name }})
{% endif %}</td><td>{{ s.recipients|join(", ") or "none resolvable" }}</td>
<td class="n" data-key="sending">{{ s.messages }}</td></tr>{% endfor %}</table>
<p>Recipients are those the exchange's routing rules give for the event and setting; the exchange also tells
placing authorities with other children at the setting when the event asks for it.</p>
{% else %}<p>Nothing.</p>{% endif %}

{% if by_code %}<h2>Findings by code</h2><table id="codes"><tr><th>Code</th><th>Count</th></tr>
{% for code, n in by_code %}<tr><td>{{ code }}</td><td class="n" data-key="findings.{{ code }}">{{ n }}</td></tr>
{% endfor %}</table>
<h2>Findings</h2><p>Each names the file, row and field (a spreadsheet's sheet in brackets); values are never
shown.</p><table id="findings"><tr><th>File</th><th>Row</th><th>Field</th><th>Code</th><th>What to do</th></tr>
{% for p in problems %}<tr><td>{{ p.file }}</td><td>{{ p.row or "" }}</td><td>{{ p.field or "" }}</td>
<td>{{ p.code }}</td><td>{{ p.message }}</td></tr>{% endfor %}</table>{% endif %}
</body></html>
""")


def sending_table(sending: dict[tuple[str, str], tuple[int, dict]], directory) -> list[dict]:
    """Messages built, by event and setting, with the recipients the exchange's routing rules give them (from
    one message of each group: the rules read the event, the setting and the child's placing authority)."""
    from broker.routing import facts_of, resolve

    rows = []
    for (event, urn), (n, sample) in sorted(sending.items()):
        setting = directory.setting(urn) if urn else None
        plan = resolve(facts_of(sample), directory, None)
        rows.append({"event": event, "setting": urn, "setting_name": setting.name if setting else "",
                     "recipients": [r.participant for r in plan.routes], "messages": n})
    return rows


def write_report(path: Path, summary: dict, problems: list[Problem], sending: list[dict] | None = None) -> None:
    sending = sending or []
    if path.suffix.lower() in {".html", ".htm"}:
        by_code = sorted(summary["findings"].items(), key=lambda kv: (-kv[1], kv[0]))
        path.write_text(_PAGE.render(summary=summary, problems=problems, by_code=by_code, sending=sending,
                                     outcomes=OUTCOMES, titles=TITLES, explained=EXPLAINED, reasons=REASONS),
                        encoding="utf-8")
    else:
        path.write_bytes(orjson.dumps({**summary, "sending": sending, "explained": EXPLAINED,
                                       "reasons": {k: REASONS[k] for k in summary["not_notifiable"]},
                                       "problems": [p.__dict__ for p in problems]}, option=orjson.OPT_INDENT_2))
