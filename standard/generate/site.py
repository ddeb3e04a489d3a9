"""`sgx standard docs`: a static HTML site of the standard, readable without any FHIR tooling."""

from __future__ import annotations

from pathlib import Path

import orjson
from jinja2 import Environment, select_autoescape

from standard import catalogue as cat
from standard import terminology as term
from standard.generate.build import package_tarball
from standard.generate.examples import SCENARIOS
from standard.profiles import PROFILES, effective_elements
from standard.validator.findings import FINDING_CODES

_BASE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} - Safeguarding Exchange {{ version }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;color:#0b0c0c;line-height:1.45}
header{background:#1d3557;color:#fff;padding:.8rem 1.5rem}header a{color:#fff;margin-right:1rem}
main{max-width:72rem;margin:0 auto;padding:1rem 1.5rem}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{border:1px solid #b1b4b6;padding:.3rem .5rem;
text-align:left;vertical-align:top;font-size:.92rem}th{background:#f3f2f1}
code,pre{font-family:ui-monospace,monospace;font-size:.85rem}pre{background:#f3f2f1;padding:1rem;overflow:auto}
pre.wrap{white-space:pre-wrap;word-break:break-all}
.tag{display:inline-block;background:#e8f1f8;border-radius:3px;padding:0 .4rem;margin:0 .2rem .2rem 0}
dl.res{display:grid;grid-template-columns:16rem 1fr;gap:.2rem 1rem}dl.res dt{color:#505a5f}
section.card{border-left:4px solid #1d70b8;padding:.2rem 1rem;margin:1rem 0;background:#fafafa}
</style></head><body>
<header><strong>Safeguarding Exchange {{ version }}</strong> &nbsp;
<a href="{{ root }}index.html">Messages</a><a href="{{ root }}profiles.html">Profiles</a>
<a href="{{ root }}terminology.html">Code systems</a><a href="{{ root }}requirements.html">Requirements</a>
<a href="{{ root }}findings.html">Finding codes</a><a href="{{ root }}signatures.html">Signatures</a>
<a href="{{ root }}oversight.html">Oversight rules</a>
<a href="{{ root }}{{ tgz }}">Download package</a></header>
<main>{{ body }}</main></body></html>"""

_INDEX = """<h1>Safeguarding Exchange standard</h1>
<p>FHIR R4 messages for sharing safeguarding information about children placed in residential settings in England,
between placing local authorities, host local authorities and their LADOs, host ICBs, Ofsted, CQC, police and
providers. Canonical base <code>{{ canonical }}</code>; FHIR {{ fhir }}; package <code>{{ package }}</code>.</p>
<p>Download: <a href="{{ tgz }}">{{ tgz }}</a> (FHIR npm package with profiles, terminology, MessageDefinitions,
examples), the <a href="schemas/">JSON Schemas</a> (draft 2020-12, standard keywords only: they compile in strict
validators such as ajv 8; the finding code of each schema node is in the <code>&lt;event&gt;.findings.json</code>
beside each schema, by JSON pointer) and the <a href="cases/">case suite</a>.</p>
<h2>Messages</h2><table><tr><th>Event</th><th>Sent by</th><th>Routed to</th><th>Focus</th><th>Legal basis</th></tr>
{% for e in events %}<tr><td><a href="message/{{ e.code }}.html">{{ e.display }}</a><br><code>{{ e.code }}</code></td>
<td>{% for s in e.senders %}<span class="tag">{{ s }}</span>{% endfor %}</td>
<td>{% for r in e.recipients %}<span class="tag">{{ r.role }}{% if r.of != 'setting' %} of {{ r.of }}{% endif %}
{% if r.condition %} when {{ r.condition }}{% endif %}</span>{% endfor %}</td>
<td>{{ profiles[e.focus_profile].type }} (<a href="profile/{{ e.focus_profile }}.html">{{ e.focus_profile }}</a>)</td>
<td>{{ e.legal_basis }}</td></tr>{% endfor %}</table>"""

_MESSAGE = """<h1>{{ e.display }} <code>{{ e.code }}</code></h1><p>{{ e.purpose }}</p>
<table><tr><th>Legal basis</th><td>{{ e.legal_basis }}</td></tr>
<tr><th>Timeliness</th><td>{{ e.timeliness }}</td></tr>
<tr><th>Who sends</th><td>{% for s in e.senders %}<span class="tag">{{ roles[s].display }}</span>{% endfor %}</td></tr>
<tr><th>Who receives</th><td><ul>{% for r in e.recipients %}<li>{{ roles[r.role].display }}{% if r.of == 'child' %}
of the child the message names{% elif r.of == 'children-at-setting' %}: every placing authority with a child at the
setting now, each told only of its own children{% elif r.of == 'sender' %}: the sender of the message it answers,
only if the responder received that message, and never with a child{% endif %}
{% if r.condition %} (only when {{ r.condition }}){% endif %}</li>{% endfor %}</ul></td></tr>
<tr><th>Category</th><td>{{ e.category }}; response required: {{ e.response_required }}</td></tr>
<tr><th>Acknowledged by</th><td>{% if e.acknowledge_working_days %}each recipient within
{{ e.acknowledge_working_days }} working day(s) after the day of delivery, by the end of the day (weekends and
England's bank holidays not counted); overdue after, on both sides{% else %}not acknowledged{% endif %}
</td></tr>
<tr><th>Sensitivity labels</th><td>{% for s in e.sensitivity %}<span class="tag">{{ s }}</span>
{% else %}none{% endfor %}</td></tr>
<tr><th>Requirements</th><td>{% for r in e.requirements %}<a class="tag" href="../requirements.html#{{ r }}">{{ r }}</a>
{% endfor %}</td></tr>
<tr><th>Definitions</th><td><a href="../schemas/{{ e.code }}.schema.json">JSON Schema</a>
(<a href="../schemas/{{ e.code }}.findings.json">finding codes of its nodes</a>) &middot;
MessageDefinition <code>{{ e.definition_url }}</code></td></tr></table>
<h2>Contents</h2><table><tr><th>Resource</th><th>Profile</th><th>Needed</th></tr>
{% for pid, need in contents %}<tr><td>{{ profiles[pid].type }}</td>
<td><a href="../profile/{{ pid }}.html">{{ profiles[pid].title }}</a></td><td>{{ need }}</td></tr>{% endfor %}</table>
{% for name, example, rendered in examples %}<h2>Example: {{ name }}</h2>
{% for rtype, facts in rendered %}<section class="card"><h3>{{ rtype }}</h3><dl class="res">
{% for k, v in facts %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl></section>{% endfor %}
<details><summary>As JSON</summary><pre>{{ example }}</pre></details>{% endfor %}"""

_PROFILE = """<h1>{{ p.title }} <code>{{ p.id }}</code></h1><p>{{ p.description }}</p>
<p>Constrains FHIR R4 <code>{{ p.type }}</code>{% if p.base %}, based on
<a href="{{ p.base }}.html">{{ p.base }}</a>{% endif %}. Canonical <code>{{ p.url }}</code>.</p>
<table><tr><th>Element</th><th>Card.</th><th>Constraint</th><th>Meaning</th></tr>
{% for el in elements %}<tr><td><code>{{ p.type }}.{{ el.path }}</code></td>
<td>{{ el.min if el.min is not none else '' }}..{{ el.max if el.max is not none else '' }}</td>
<td>{% if el.fixed is not none %}fixed <code>{{ el.fixed }}</code><br>{% endif %}
{% if el.binding %}{{ el.strength }} binding to <a href="../terminology.html#{{ el.binding }}">{{ el.binding }}</a><br>
{% endif %}{% if el.regex %}matches <code>{{ el.regex }}</code><br>{% endif %}
{% if el.targets %}references {{ el.targets|join(', ') }}{% endif %}{% if el.logical %}participant identifier{% endif %}
</td><td>{{ el.short }}</td></tr>{% endfor %}</table>"""

_PROFILES = """<h1>Profiles</h1><table><tr><th>Profile</th><th>Resource</th><th>Description</th></tr>
{% for p in profiles %}<tr><td><a href="profile/{{ p.id }}.html">{{ p.title }}</a><br><code>{{ p.id }}</code></td>
<td>{{ p.type }}</td><td>{{ p.description }}</td></tr>{% endfor %}</table>"""

_TERMINOLOGY = """<h1>Code systems and value sets</h1>
{% for cs in systems %}<h2 id="{{ cs.id }}">{{ cs.title }}</h2><p>{{ cs.description }} <code>{{ cs.canonical }}</code>
</p><table><tr><th>Code</th><th>Display</th><th>Definition</th></tr>{% for c in cs.concepts %}
<tr><td><code>{{ c.code }}</code></td><td>{{ c.display }}</td><td>{{ c.definition }}</td></tr>{% endfor %}</table>
{% endfor %}<h2>Value sets</h2><table><tr><th>Value set</th><th>Includes</th></tr>{% for vs in sets %}
<tr><td id="{{ vs.id }}"><code>{{ vs.canonical }}</code><br>{{ vs.title }}</td><td>{% for s, codes in vs.includes %}
<a href="#{{ s }}">{{ s }}</a>{% if codes %}: {{ codes|join(', ') }}{% endif %}<br>{% endfor %}</td></tr>{% endfor %}
</table>"""

_REQUIREMENTS = """<h1>Requirements</h1><table><tr><th>Id</th><th>Requirement</th><th>Findings that enforce it</th>
</tr>{% for r in requirements %}<tr id="{{ r.id }}"><td>{{ r.id }}</td><td>{{ r.text }}</td>
<td>{% for f in r.findings %}<a class="tag" href="findings.html#{{ f }}">{{ f }}</a>{% endfor %}</td></tr>
{% endfor %}</table>"""

_FINDINGS = """<h1>Finding codes</h1><p>Every finding of the validator has one of these stable codes, a FHIRPath-style
location and a message that says what to fix. Messages never repeat values from the message.</p>
<table><tr><th>Code</th><th>Layer</th><th>Meaning</th></tr>{% for code, (layer, title) in codes %}
<tr id="{{ code }}"><td><code>{{ code }}</code></td><td>{{ layer }}</td><td>{{ title }}</td></tr>{% endfor %}</table>"""

_SIGNATURES = """<h1>Signatures</h1><p>{{ c.summary }}</p>
<p>The same contract as JSON, with its worked examples: <a href="signature-contract.json">signature-contract.json</a>
(version {{ c.contractVersion }}).</p>
<h2>Algorithm and serialisation</h2><table>
<tr><th>alg</th><td><code>{{ c.algorithm.alg }}</code> with an {{ c.algorithm.curve }} key.
{{ c.algorithm.rule }}</td></tr>
<tr><th>Form</th><td>{{ c.serialization.form }}: <code>{{ c.serialization.layout }}</code></td></tr>
<tr><th>Signing input</th><td><code>{{ c.serialization.signingInput }}</code></td></tr>
<tr><th>Payload</th><td>{{ c.serialization.payload }}</td></tr>
<tr><th>b64</th><td>{{ c.serialization.b64 }}</td></tr>
<tr><th>base64url</th><td>{{ c.serialization.base64url }}</td></tr>
<tr><th>Header bytes</th><td>{{ c.serialization.headerBytes }}</td></tr></table>
{% for key, title in [("message", "The protected header of a message"),
                      ("deliveryNote", "The protected header of a delivery note")] %}
{% set h = c.protectedHeader[key] %}<h2 id="{{ key }}-header">{{ title }} (typ <code>{{ h.typ }}</code>)</h2>
<table><tr><th>Member</th><th>Type</th><th>Rule</th></tr>{% for m in h.members %}<tr><td><code>{{ m.name }}</code></td>
<td>{{ m.type }}</td><td>{% if m.value is defined %}<code>{{ m.value }}</code>: {% endif %}{{ m.rule }}</td></tr>
{% endfor %}</table>{% endfor %}
<p>{{ c.protectedHeader.otherMembers }} Refused members: {% for m in c.protectedHeader.refusedMembers %}
<code>{{ m }}</code> {% endfor %}({{ c.protectedHeader.refusedMembersRule }})</p>
<h2 id="clock">Clock window</h2><p>{{ c.clock.rule }} {{ c.clock.receivingNodeRule }} Key validity is measured at
{{ c.clock.keyValidityMeasuredAt }}.</p>
<h2 id="checks">What the router checks, in order</h2><table><tr><th>Check</th><th>Refusal code</th><th>Error</th></tr>
{% for v in c.verificationOrder %}<tr><td>{{ v.check }}</td><td><code>{{ v.refusal }}</code></td>
<td>{{ v.error or "" }}</td></tr>{% endfor %}</table><p>{{ c.refusalReporting }}</p>
<h2 id="transport">Transport (AMQP)</h2><p>Publish to exchange <code>{{ c.transport.amqp.publishTo.exchange }}</code>,
routing key <code>{{ c.transport.amqp.publishTo.routingKey }}</code>; {{ c.transport.amqp.publishing }}. Body:
{{ c.transport.amqp.body }}. Receive from {{ c.transport.amqp.receiveFrom }}.</p>
<table><tr><th>Property</th><th>Value</th></tr>{% for k, v in c.transport.amqp.properties.items() %}
<tr><td><code>{{ k }}</code></td><td>{{ v }}</td></tr>{% endfor %}</table>
<table><tr><th>Header</th><th>On</th><th>Value</th></tr>{% for t in c.transport.headers %}
<tr><td><code>{{ t.name }}</code></td><td>{{ t.on }}</td><td>{{ t.value }}</td></tr>{% endfor %}</table>
<h2 id="delivery-note">The delivery note</h2><p>{{ c.deliveryNote.purpose }}</p>
<table><tr><th>Member</th><th>Type</th><th>Rule</th></tr>{% for m in c.deliveryNote.members %}
<tr><td><code>{{ m.name }}</code>{% if m.required is false %} (optional){% endif %}</td><td>{{ m.type }}</td>
<td>{{ m.rule }}</td></tr>{% endfor %}</table><p>Signed in <code>sgx-delivery-signature</code> with the delivery-note
header above. A receiving node {{ c.deliveryNote.receivingNode }}.</p>
<h2 id="keys">Keys</h2><table>
<tr><th>Public (JWK)</th><td>{% for k, v in c["keys"].public.jwk.items() %}<code>{{ k }}</code>: {{ v }}<br>
{% endfor %}</td></tr>
<tr><th>Public (PEM)</th><td>{{ c["keys"].public.pem }}</td></tr>
<tr><th>In the directory</th><td>{{ c["keys"].public.inDirectory }}</td></tr>
<tr><th>Private</th><td>{{ c["keys"].private.format }}. {{ c["keys"].private.rule }}
{{ c["keys"].private.kidBeside }}</td></tr>
<tr><th>kid</th><td>Form <code>{{ c.kid.form }}</code>. {{ c.kid.rule }}</td></tr>
<tr><th>Rotation</th><td>{{ c.kid.rotation }}</td></tr>
<tr><th>Registering</th><td>{% for r in c["keys"].registration %}<code>{{ r }}</code><br>{% endfor %}</td></tr></table>
<h2 id="directory">The directory</h2><p>{{ c.directory.file }}: {% for k, v in c.directory.layout.items() %}
<code>{{ k }}</code> = {{ v }}; {% endfor %}protected header {% for k, v in c.directory.protectedHeader.items()
if k != "rule" %}<code>{{ k }}</code>: {{ v }}; {% endfor %}{{ c.directory.protectedHeader.rule }}.
Trust anchor: {{ c.directory.trustAnchor }}.</p><table><tr><th>Payload member</th><th>Content</th></tr>
{% for k, v in c.directory.payload.items() %}<tr><td><code>{{ k }}</code></td><td>{{ v }}</td></tr>{% endfor %}
</table><p>Expiry: {{ c.directory.expiry }}.</p>
<h2 id="worked-example">Worked example</h2><p><strong>{{ w.testKey.warning }}</strong></p>
<table><tr><th>Private JWK</th><td><code>{{ w.testKey.privateJwk|tojson }}</code></td></tr>
<tr><th>Private key, PKCS#8</th><td><pre>{{ w.testKey.privatePkcs8Pem }}</pre></td></tr>
<tr><th>Public JWK</th><td><code>{{ w.testKey.publicJwk|tojson }}</code></td></tr>
<tr><th>Public key, PEM</th><td><pre>{{ w.testKey.publicSpkiPem }}</pre></td></tr></table>
{% for key, text, title in [("message", "payloadUtf8", "A message"), ("deliveryNote", "noteUtf8", "A delivery note")] %}
{% set e = w[key] %}<h3>{{ title }}</h3><table>
<tr><th>Payload (UTF-8, exact bytes)</th><td><pre>{{ e[text] }}</pre></td></tr>
<tr><th>Protected header (exact bytes)</th><td><pre>{{ e.protectedHeaderJson }}</pre></td></tr>
<tr><th>Signing input</th><td><pre class="wrap">{{ e.signingInput }}</pre></td></tr>
<tr><th>Detached compact JWS</th><td><pre class="wrap">{{ e.compactDetachedJws }}</pre>
</td></tr></table>{% endfor %}"""


def _render_resource(resource: dict) -> list[tuple[str, str]]:
    """Flatten a resource into (element, value) lines a person can read; codes show their display text."""
    facts: list[tuple[str, str]] = []

    def walk(node, path):
        if isinstance(node, dict):
            if "code" in node and "system" in node:
                facts.append((path, f"{node.get('display') or node['code']} ({node['code']})"))
                return
            for key, value in node.items():
                if key != "resourceType":
                    walk(value, f"{path}.{key}" if path else key)
        elif isinstance(node, list):
            for item in node:
                walk(item, path)
        else:
            facts.append((path, str(node)))

    walk(resource, "")
    return facts


def write_site(out: Path) -> list[Path]:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    tgz = f"{cat.PACKAGE_NAME}-{cat.VERSION}.tgz"
    written: list[Path] = []

    def page(rel: str, title: str, template: str, **ctx) -> None:
        root = "../" * rel.count("/")
        # The page's template goes inside the base and the whole is rendered once: rendering the body first and
        # passing it in as a value escaped it a second time, and every page showed its tags as text.
        whole = env.from_string(_BASE.replace("{{ body }}", template))
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(whole.render(title=title, root=root, version=cat.VERSION, **{"tgz": tgz, **ctx}),
                        encoding="utf-8")
        written.append(path)

    roles = {r.code: r for r in cat.ROLES}
    page("index.html", "Messages", _INDEX, events=cat.EVENTS, profiles=PROFILES, canonical=cat.CANONICAL,
         fhir=cat.FHIR_VERSION, package=cat.PACKAGE_NAME, tgz=tgz)
    for e in cat.EVENTS:
        contents = [(e.header_profile, "always"), (e.focus_profile, "focus")]
        contents += [(p, "required") for p in e.required_profiles] + [(p, "optional") for p in e.optional_profiles]
        examples = []
        for name in (n for n in SCENARIOS if n.startswith(e.code + "-")):
            example = SCENARIOS[name](name)
            rendered = [(x["resource"]["resourceType"], _render_resource(x["resource"])) for x in example["entry"]]
            examples.append((name, orjson.dumps(example, option=orjson.OPT_INDENT_2).decode(), rendered))
        page(f"message/{e.code}.html", e.display, _MESSAGE, e=e, roles=roles, profiles=PROFILES,
             contents=contents, examples=examples)
    for p in PROFILES.values():
        page(f"profile/{p.id}.html", p.title, _PROFILE, p=p, elements=effective_elements(p.id))
    page("profiles.html", "Profiles", _PROFILES, profiles=list(PROFILES.values()))
    page("terminology.html", "Code systems", _TERMINOLOGY, systems=list(term.code_systems().values()),
         sets=list(term.value_sets().values()))
    page("requirements.html", "Requirements", _REQUIREMENTS, requirements=cat.REQUIREMENTS)
    page("findings.html", "Finding codes", _FINDINGS, codes=sorted(FINDING_CODES.items()))
    _signature_page(out, page)
    _oversight_page(out, page)

    from standard import artefacts

    for folder in ("schemas", "cases"):
        target = out / folder
        target.mkdir(parents=True, exist_ok=True)
        source = getattr(artefacts, folder.upper())
        for file in sorted(source.glob("*.json")):
            (target / file.name).write_bytes(file.read_bytes())
        listing = "".join(f'<li><a href="{f.name}">{f.name}</a></li>' for f in sorted(source.glob("*.json")))
        (target / "index.html").write_text(f"<!doctype html><meta charset=utf-8><title>{folder}</title>"
                                           f"<h1>{folder}</h1><ul>{listing}</ul>", encoding="utf-8")
    (out / tgz).write_bytes(package_tarball())
    return written


_OVERSIGHT = """<h1>Oversight rules {{ r.version }} ({{ r.status }})</h1>
<p>{{ r.description }}</p>
<p>As data: <a href="oversight-rules.json">oversight-rules.json</a>, its schema
<a href="oversight-rules.schema.json">oversight-rules.schema.json</a>.</p>
<h2>Sources</h2><p>Several sources means several of these families.</p>
<table><tr><th>source</th><th>who</th></tr>
{% for k, v in r.sources.items() %}<tr><td><code>{{ k }}</code></td><td>{{ v }}</td></tr>{% endfor %}</table>
<h2>Signals</h2>
<table><tr><th>kind</th><th>what</th><th>source</th><th>weight</th><th>from the message</th></tr>
{% for x in r.signals %}<tr><td><code>{{ x.kind }}</code></td><td>{{ x.title }}{% if not x.concern %} (not a concern)
{% endif %}</td><td>{{ x.source }}</td><td>{{ x.weight }}</td><td>{{ x["from"] }}</td></tr>{% endfor %}</table>
<h2>Rules</h2>
<table><tr><th>rule</th><th>counts</th><th>crossed when, in the window</th><th>why</th></tr>
{% for x in r.rules %}<tr id="{{ x.id }}"><td><code>{{ x.id }}</code> ({{ x.scope }})<br>{{ x.title }}<br>
escalates as <a href="terminology.html#escalation-reason">{{ x.reason }}</a></td>
<td>{{ x.kinds | join(", ") }}</td><td>{{ x.window_days }} days: at least {{ x.min_weight }}
{% if x.per_child_year %} and {{ x.per_child_year }} per child placed per year{% endif %}
{% if x.min_sources %}, from {{ x.min_sources }} or more sources{% endif %}
{% if x.factor %}, {{ x.factor }} times the previous {{ x.baseline_days }} days' rate{% endif %};
quiet {{ x.rearm_days }} days after firing</td><td>{{ x.why }}</td></tr>{% endfor %}</table>
<h2>Statutory clocks</h2>
<table><tr><th>clock</th><th>what must happen, by when</th><th>source</th><th>who must act</th></tr>
{% for x in r.clocks %}<tr id="{{ x.id }}"><td><code>{{ x.id }}</code></td><td>{{ x.title }}</td><td>{{ x.source }}</td>
<td>{{ x.to | join(", ") }}</td></tr>{% endfor %}</table>"""


def _oversight_page(out: Path, page) -> None:
    """The published oversight rules and clocks: a page for people, and the rules file and its schema."""
    source = Path(__file__).resolve().parents[1] / "source"
    rules = orjson.loads((source / "oversight-rules.json").read_bytes())
    page("oversight.html", "Oversight rules", _OVERSIGHT, r=rules)
    for name in ("oversight-rules.json", "oversight-rules.schema.json"):
        (out / name).write_bytes((source / name).read_bytes())


def _signature_page(out: Path, page) -> None:
    """The signature contract: a page for people and the JSON file itself, for programs."""
    from standard.artefacts import SIGNATURE_CONTRACT as CONTRACT_FILE

    contract = orjson.loads(CONTRACT_FILE.read_bytes())
    page("signatures.html", "Signatures", _SIGNATURES, c=contract, w=contract["workedExamples"])
    (out / CONTRACT_FILE.name).write_bytes(CONTRACT_FILE.read_bytes())
