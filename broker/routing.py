"""Who may send a message, and who must receive it: the catalogue's roles resolved against the
directory and the register. Pure functions of the message, so the rules run in memory in tests.

Data minimisation looks at every child the message names ANYWHERE, not only its top-level Patient entries: a
child can hide in a contained resource, a nested Bundle, a logical reference's identifier (Provenance.entity,
Task.input, an extension) or an NHS number outside any Patient. The standard refuses contained resources
(`contained-not-allowed`), so this is defence in depth for whatever validation lets through. A person resource
(Patient, Person, RelatedPerson) without a local child id, or an NHS number outside one, names a child whose
placing authority cannot be told: such a message goes to no placing authority or placing LADO at all.

Senders are checked, and recipients found, by two tables keyed by the catalogue's role codes (`SENDER_CHECKS`,
`RESOLVERS`); a role a table does not know raises RoutingRuleUnknown, so a new role in the catalogue can neither
route a message to nobody nor refuse every sender without a word. A response (acknowledgement, decision, request
for more information) goes to the sender of the message it answers, found in the record of what was routed
(`broker/routed.py`), only when the responder was one of that message's recipients, and never when it names a
child.

A referral's owner must be the LADO of the setting's host authority; the message names the setting but not its
host, so this is checked here against the directory (`owner_problem`), not by the validator."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from broker import directory as d
from broker.register import Register
from broker.routed import Original
from standard import catalogue as cat
from standard.errors import RoutingRuleUnknown

_CHILD_ID_SYSTEM = cat.LOCAL_CHILD_ID
# Roles entitled to every child a message names; placing authorities see only their own children.
_SEES_ALL_CHILDREN = frozenset({"host-la", "host-lado", "host-icb", "regulator", "police", "provider"})
_PERSON_TYPES = frozenset({"Patient", "Person", "RelatedPerson"})
UNKNOWN_CHILD = "unattributed"  # local id of a child whose placing authority the message does not give


@dataclass(frozen=True)
class Child:
    placing_la: str | None  # participant id of the placing authority
    local_id: str


@dataclass
class MessageFacts:
    """What routing reads from a message. Holds identifiers only, never a child's personal details."""

    message_id: str
    event: str
    sender: str
    settings: list[str] = field(default_factory=list)  # Ofsted URNs
    children: list[Child] = field(default_factory=list)
    health_related: bool = False
    placement_start: str | None = None
    placement_end: str | None = None
    owner: str | None = None  # the LADO a referral names as owner
    mentioned: list[Child] = field(default_factory=list)  # every child named anywhere in the message
    answers: str | None = None  # the message a response answers (MessageHeader.response.identifier, a urn:uuid)


def _participant_of(reference: object) -> str | None:
    if isinstance(reference, dict):
        ident = reference.get("identifier")
        if isinstance(ident, dict) and ident.get("system") == cat.PARTICIPANT_ID:
            return ident.get("value")
    return None


def facts_of(bundle: dict) -> MessageFacts:
    """Read routing facts from a message that passed validation."""
    entries = [e["resource"] for e in bundle["entry"]]
    header = entries[0]
    facts = MessageFacts(bundle["identifier"]["value"], header["eventCoding"]["code"],
                         _participant_of(header.get("sender")) or "")
    answered = header.get("response", {}).get("identifier")
    if isinstance(answered, str) and answered:
        facts.answers = "urn:uuid:" + answered.removeprefix("urn:uuid:")
    for res in entries[1:]:
        rtype = res.get("resourceType")
        if rtype == "Location":
            facts.settings += [i["value"] for i in res.get("identifier", []) if i.get("system") == cat.OFSTED_URN]
        elif rtype == "Patient":
            for ident in res.get("identifier", []):
                if ident.get("system") == _CHILD_ID_SYSTEM:
                    la_code = ident.get("assigner", {}).get("identifier", {}).get("value")
                    facts.children.append(Child(f"la-{la_code}" if la_code else None, ident["value"]))
        elif rtype == "AdverseEvent":
            facts.health_related |= any(c.get("code") == "health-related" for cc in res.get("category", [])
                                        for c in cc.get("coding", []))
        elif rtype == "Communication":
            facts.health_related |= any(c.get("code") == "40-1-death" for cc in res.get("reasonCode", [])
                                        for c in cc.get("coding", []))
        elif rtype == "Encounter":
            period = res.get("period", {})
            facts.placement_start, facts.placement_end = period.get("start"), period.get("end")
        elif rtype == "Task" and res.get("owner"):
            facts.owner = _participant_of(res["owner"])
    facts.mentioned = children_anywhere(bundle)
    return facts


def placing_la_code(ident: dict) -> str | None:
    """The DfE code of the authority that assigned a local child id (its `assigner`), if the message gives one."""
    assigner = ident.get("assigner")
    la_ident = assigner.get("identifier") if isinstance(assigner, dict) else None
    la_code = la_ident.get("value") if isinstance(la_ident, dict) else None
    return la_code if isinstance(la_code, str) and la_code else None


def _child_of_identifier(ident: dict) -> Child:
    la_code = placing_la_code(ident)
    value = ident.get("value")
    return Child(f"la-{la_code}" if la_code else None,
                 value if isinstance(value, str) else UNKNOWN_CHILD)


def children_anywhere(bundle: object) -> list[Child]:
    """Every child a message names, wherever it is: person resources at any depth, and local child ids and NHS
    numbers in any identifier. A child whose placing authority the message does not give has placing_la None."""
    found: dict[Child, None] = {}
    stack = [bundle]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if node.get("resourceType") in _PERSON_TYPES:
            identifiers = node.get("identifier") if isinstance(node.get("identifier"), list) else []
            local = [i for i in identifiers if isinstance(i, dict) and i.get("system") == _CHILD_ID_SYSTEM]
            for ident in local:
                found.setdefault(_child_of_identifier(ident))
            if not local:
                found.setdefault(Child(None, UNKNOWN_CHILD))
            stack.extend(v for k, v in node.items() if k != "identifier")
            continue
        system = node.get("system")
        if system == _CHILD_ID_SYSTEM:
            found.setdefault(_child_of_identifier(node))
        elif system == cat.NHS_NUMBER:
            found.setdefault(Child(None, UNKNOWN_CHILD))
        stack.extend(node.values())
    return list(found)


def owner_problem(facts: MessageFacts, directory: d.Directory) -> str | None:
    """Why an allegation's owner is wrong (the referral Task of an allegation referral, notification or outcome
    must be owned by the LADO of the setting's host authority), or None."""
    if facts.owner is None or not facts.event.startswith("allegation-"):
        return None
    setting = directory.setting(facts.settings[0]) if facts.settings else None
    if setting is None:
        return None  # no setting in the directory: resolve() says so
    host_lado = directory.lado_of(setting.host_la)
    if facts.owner != host_lado:
        return (f"the referral's Task.owner is {facts.owner}, but the LADO for setting {setting.urn} is {host_lado} "
                f"(host authority {setting.host_la}); address the referral to {host_lado}")
    return None


class Originals:
    """Where routing finds the message a response answers (the router's record of what it routed)."""

    def original(self, message_id: str) -> Original | None:  # pragma: no cover - an interface
        raise NotImplementedError


def responder_problem(facts: MessageFacts, originals: Originals | None) -> str | None:
    """Why a response may not be sent (an acknowledgement code), or None: the message it answers must be one the
    exchange routed to the responder. An unknown message and one routed to others are refused alike, so a
    response cannot be used to learn which messages exist."""
    if not cat.get_event(facts.event).responds or facts.sender == "router":
        return None
    found = originals.original(facts.answers) if originals is not None and facts.answers else None
    if found is None or facts.sender not in found.recipients:
        return "unauthorised-sender"
    return None


# Each sending role of the catalogue: whether this sender, of this message, holds it.
SenderCheck = Callable[[MessageFacts, d.Participant, "d.Setting | None", d.Directory], bool]
SENDER_CHECKS: dict[str, SenderCheck] = {
    "any": lambda facts, sender, setting, directory: sender.kind != d.OPERATOR,
    "router": lambda facts, sender, setting, directory: facts.sender == "router",
    "placing-la": lambda facts, sender, setting, directory: sender.kind == d.LA and bool(facts.children) and all(
        c.placing_la == facts.sender for c in facts.mentioned or facts.children),
    "provider": lambda facts, sender, setting, directory: sender.kind == d.PROVIDER and setting is not None and
    setting.provider == facts.sender,
    "host-lado": lambda facts, sender, setting, directory: setting is not None and
    directory.lado_of(setting.host_la) == facts.sender,
    "regulator": lambda facts, sender, setting, directory: sender.kind in d.REGULATOR_KINDS,
}


def authorise(facts: MessageFacts, directory: d.Directory, originals: Originals | None = None) -> str | None:
    """None when the sender's role may send this event; otherwise the reason (an acknowledgement code).

    Raises:
        RoutingRuleUnknown: the catalogue lets a role send the event that SENDER_CHECKS cannot check.
    """
    sender = directory.participants.get(facts.sender)
    if sender is None:
        return "unknown-sender"
    event = cat.get_event(facts.event)
    if event.responds and (problem := responder_problem(facts, originals)):
        return problem
    setting = directory.setting(facts.settings[0]) if facts.settings else None
    for role in event.senders:
        check = SENDER_CHECKS.get(role)
        if check is None:
            raise RoutingRuleUnknown(f"event {event.code!r} may be sent by role {role!r} in standard/catalogue.py, "
                                     "which the exchange cannot check; add its check to SENDER_CHECKS in "
                                     "broker/routing.py")
        if check(facts, sender, setting, directory):
            return None
    return "unauthorised-sender"


@dataclass
class Route:
    """One recipient of a message: the roles it receives it in and, for fan-out to placing
    authorities, the pseudonyms of its own children at the setting."""

    participant: str
    roles: list[str]
    children: list[str] | None = None


@dataclass
class Plan:
    routes: list[Route]
    withheld: list[str]  # participants not sent the message because it names another authority's child
    problem: str | None = None  # an acknowledgement code when no route could be made
    unreachable: list[str] = field(default_factory=list)  # recipients not onboarded yet (no key, no queue)


@dataclass(frozen=True)
class _Context:
    """What the resolvers read: the message's facts, the directory, the register and the record of routed
    messages, the setting the message names (if the directory has it) and the day."""

    facts: MessageFacts
    event: cat.Event
    directory: d.Directory
    register: Register | None
    originals: Originals | None
    setting: d.Setting | None
    today: date


Found = Iterable[tuple[str | None, list[str] | None]]  # (participant, its own children's pseudonyms or None)


def _of_setting(pick: Callable[[d.Setting, d.Directory], Iterable[str | None]]):
    def resolve_role(rule: cat.Recipient, c: _Context) -> Found:
        return [(pid, None) for pid in pick(c.setting, c.directory)] if c.setting is not None else []
    return resolve_role


def _placing(of_la: Callable[[str, d.Directory], str | None]):
    """A placing authority role (the authority itself, or its LADO): of the child the message names, or of
    every child at the setting now (each told of its own children only)."""
    def resolve_role(rule: cat.Recipient, c: _Context) -> Found:
        if rule.of == "child":
            return [(of_la(child.placing_la or "", c.directory), None) for child in c.facts.children]
        if c.setting is None or c.register is None:
            return []
        found = []
        for la, children in c.register.children_at(c.setting.urn, c.today.isoformat()).items():
            pid = of_la(la, c.directory)
            if rule.condition == "on-request" and c.event.code not in \
                    c.directory.participants.get(pid or "", d.Participant("", "", "")).subscriptions:
                continue
            found.append((pid, children))
        return found
    return resolve_role


def _original_sender(rule: cat.Recipient, c: _Context) -> Found:
    found = c.originals.original(c.facts.answers) if c.originals is not None and c.facts.answers else None
    return [(found.sender, None)] if found is not None else []


# Each receiving role of the catalogue, with the sources (`Recipient.of`) it is resolved from.
RESOLVERS: dict[str, tuple[frozenset[str], Callable[[cat.Recipient, _Context], Found]]] = {
    "host-la": (frozenset({"setting"}), _of_setting(lambda s, _: [s.host_la])),
    "host-lado": (frozenset({"setting"}), _of_setting(lambda s, directory: [directory.lado_of(s.host_la)])),
    "host-icb": (frozenset({"setting"}), _of_setting(lambda s, _: [s.host_icb])),
    "regulator": (frozenset({"setting"}), _of_setting(lambda s, _: list(s.regulators))),
    "police": (frozenset({"setting"}), _of_setting(lambda s, _: [s.police])),
    "provider": (frozenset({"setting"}), _of_setting(lambda s, _: [s.provider])),
    "placing-la": (frozenset({"child", "children-at-setting"}), _placing(lambda la, _: la or None)),
    "placing-lado": (frozenset({"child", "children-at-setting"}),
                     _placing(lambda la, directory: directory.lado_of(la))),
    "original-sender": (frozenset({"sender"}), _original_sender),
}
# Conditions a routing rule may carry; each is applied where it is named (health-related below, on-request in
# _placing).
CONDITIONS = frozenset({"health-related", "on-request"})


def resolver_for(event: cat.Event, rule: cat.Recipient) -> Callable[[cat.Recipient, _Context], Found]:
    """The resolver of a routing rule. Raises RoutingRuleUnknown for a role, source or condition it cannot
    resolve (a catalogue change the exchange was not taught), rather than routing to nobody."""
    entry = RESOLVERS.get(rule.role)
    if entry is None or rule.of not in entry[0] or (rule.condition is not None and rule.condition not in CONDITIONS):
        what = f"role {rule.role!r} of {rule.of!r}" + (f" on condition {rule.condition!r}" if rule.condition else "")
        raise RoutingRuleUnknown(f"event {event.code!r} is routed to {what} in standard/catalogue.py, which the "
                                 "exchange cannot resolve; add its resolver to RESOLVERS in broker/routing.py")
    return entry[1]


def resolve(facts: MessageFacts, directory: d.Directory, register: Register | None, *,
            today: date | None = None, originals: Originals | None = None) -> Plan:
    """The recipients of a message, by the catalogue's routing rules.

    Raises:
        RoutingRuleUnknown: the event is routed to a role the exchange has no resolver for.
    """
    event = cat.get_event(facts.event)
    setting = directory.setting(facts.settings[0]) if facts.settings else None
    wrong_owner = owner_problem(facts, directory)
    if wrong_owner:
        return Plan([], [], f"wrong-owner: {wrong_owner}", [])
    routes: dict[str, Route] = {}
    withheld: list[str] = []
    unreachable: list[str] = []

    def add(pid: str | None, role: str, children: list[str] | None = None) -> None:
        if not pid or pid == facts.sender or pid not in directory.participants:
            return
        if not directory.participants[pid].keys:
            if pid not in unreachable:
                unreachable.append(pid)
            return
        route = routes.setdefault(pid, Route(pid, []))
        if role not in route.roles:
            route.roles.append(role)
        if children is not None:
            route.children = sorted(set(route.children or []) | set(children))

    context = _Context(facts, event, directory, register, originals, setting, today or date.today())
    for rule in event.recipients:
        resolve_role = resolver_for(event, rule)
        if rule.condition == "health-related" and not facts.health_related:
            continue
        for pid, children in resolve_role(rule, context):
            add(pid, rule.role, children)

    named = facts.mentioned or facts.children
    if named:
        # Data minimisation: a placing authority never receives a message naming another authority's child,
        # wherever in the message that child is named; a response's original sender receives no child at all
        # (the message it answers named the children it was entitled to).
        for pid, route in list(routes.items()):
            if _SEES_ALL_CHILDREN & set(route.roles) and "original-sender" not in route.roles:
                continue
            if "original-sender" in route.roles:
                allowed: set[str | None] = set()
            elif directory.participants[pid].kind == d.LA:
                allowed = {pid}
            else:
                allowed = {la for la in {c.placing_la for c in named} if la and directory.lado_of(la) == pid}
            if not all(c.placing_la in allowed for c in named):
                withheld.append(pid)
                del routes[pid]
    if not routes:
        where = f"setting {facts.settings[0]}" if facts.settings else "the message"
        known = setting is not None or not facts.settings
        reason = "no participant could be resolved for its routing roles" if known else \
            f"{where} is not in the directory"
        return Plan([], withheld, f"no-recipients: {reason}", unreachable)
    return Plan(sorted(routes.values(), key=lambda r: r.participant), withheld, None, unreachable)
