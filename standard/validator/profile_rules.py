"""Layer 4: profile rules JSON Schema cannot express (bdl-7, bdl-12, focus and reference resolution)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from standard import catalogue as cat
from standard.profiles import PROFILES, effective_elements
from standard.validator.findings import Finding
from standard.validator.index import MessageIndex
from standard.validator.locations import entry_location


@cache
def _reference_rules(event_code: str) -> dict[str, list[tuple[tuple[str, ...], frozenset[str]]]]:
    """For each resource type of the event: reference paths and the resource types they may point at."""
    event = cat.get_event(event_code)
    rules: dict[str, list] = {}
    for pid in dict.fromkeys([event.header_profile, event.focus_profile, *event.required_profiles,
                              *event.optional_profiles]):
        rtype = PROFILES[pid].type
        for el in effective_elements(pid):
            if el.targets and "*" not in el.targets:
                steps = tuple(s.split(":")[0] for s in el.path.split("."))
                rules.setdefault(rtype, []).append((steps, frozenset(PROFILES[t].type for t in el.targets)))
    return rules


def _values_at(node, steps):
    if not steps:
        yield node
        return
    if isinstance(node, list):
        for item in node:
            yield from _values_at(item, steps)
        return
    if isinstance(node, dict) and steps[0] in node:
        yield from _values_at(node[steps[0]], steps[1:])


def _reference_paths(node, path):
    """(path, reference) for every reference in a resource; used only to locate a failure."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield path, value
            else:
                yield from _reference_paths(value, (*path, key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _reference_paths(item, (*path[:-1], f"{path[-1]}[{i}]") if path else path)


def findings(event_code: str, index: MessageIndex) -> Iterator[Finding]:
    if not index.first_is_header:
        yield Finding("bdl-12", "Bundle.entry[0].resource", "the first entry of a message must be the "
                      "MessageHeader; move it to the front", layer="profile")
    for i in index.duplicate_urls:
        yield Finding("bdl-7", f"Bundle.entry[{i}].fullUrl", "this fullUrl is already used by an earlier "
                      "entry; give every entry its own urn:uuid", layer="profile")
    for i in index.duplicate_ids:
        yield Finding("resource-id-duplicate", f"Bundle.entry[{i}].resource.id", "an earlier entry has a resource of "
                      "the same type with this id; give every resource its own id", layer="profile")
    by_url = index.by_url
    event = cat.get_event(event_code)
    focus_type = PROFILES[event.focus_profile].type
    if index.header:
        focus_list = index.header.get("focus")
        for j, focus in enumerate(focus_list if isinstance(focus_list, list) else []):
            target = focus.get("reference") if isinstance(focus, dict) else None
            target = target if isinstance(target, str) else None
            where = f"Bundle.entry[0].resource.ofType(MessageHeader).focus[{j}]"
            if target not in by_url:
                yield Finding("focus-missing", where, "the focus must be the fullUrl of an entry in this Bundle; "
                              "add the resource or correct the reference", layer="profile")
            elif j == 0 and by_url[target].get("resourceType") != focus_type:
                yield Finding("ref-target-type", where, f"the first focus of a {event_code} message must be a "
                              f"{focus_type}", layer="profile")

    rules = _reference_rules(event_code)
    for facts in index.entries:
        rtype = facts.resource_type
        if any(ref not in by_url for ref in facts.references):
            for path, value in _reference_paths(facts.resource, ()):
                if value not in by_url:
                    yield Finding("ref-unresolved", entry_location(facts.index, rtype, *path, "reference"),
                                  "messages are self-contained: reference the fullUrl (urn:uuid) of an entry in "
                                  "this Bundle", layer="profile")
        for steps, allowed in rules.get(rtype, ()):
            for reference in _values_at(facts.resource, steps):
                target = reference.get("reference") if isinstance(reference, dict) else None
                if not (isinstance(target, str) and target in by_url):
                    continue
                target_type = by_url[target].get("resourceType")
                if not (isinstance(target_type, str) and target_type in allowed):
                    yield Finding("ref-target-type", entry_location(facts.index, rtype, *steps),
                                  f"must reference a {' or '.join(sorted(allowed))} in this Bundle",
                                  layer="profile")
