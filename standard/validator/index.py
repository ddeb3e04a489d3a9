"""One pass over a message that collects what the profile and business rules look at.

The rules run on every routed message, so the walk is done once, in a tight loop, and
paths are worked out again only in the rare case that a rule fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EntryFacts:
    index: int
    resource: dict
    resource_type: str
    references: list[str] = field(default_factory=list)
    identifiers: list[tuple[str, str]] = field(default_factory=list)  # (system, value)
    periods: list[tuple[str, str]] = field(default_factory=list)  # (start, end)


@dataclass
class MessageIndex:
    entries: list[EntryFacts]
    by_url: dict[str, dict]
    duplicate_urls: list[int]
    first_is_header: bool
    header: dict | None
    timestamp: object = None  # Bundle.timestamp as sent
    duplicate_ids: list[int] = field(default_factory=list)  # entries whose resource type and id an earlier one has


def _collect(resource: dict, facts: EntryFacts) -> None:
    stack: list = [resource]
    references, identifiers, periods = facts.references, facts.identifiers, facts.periods
    while stack:
        item = stack.pop()
        if item.__class__ is dict:
            for key, value in item.items():
                cls = value.__class__
                if cls is str:
                    if key == "reference":
                        references.append(value)
                    elif key == "value" and "system" in item:
                        identifiers.append((item["system"], value))
                    elif key == "end" and item.get("start").__class__ is str:
                        periods.append((item["start"], value))
                elif cls is dict or cls is list:
                    stack.append(value)
        else:
            for value in item:
                if value.__class__ is dict or value.__class__ is list:
                    stack.append(value)


def index_message(doc: dict) -> MessageIndex:
    raw_entries = doc.get("entry")
    if raw_entries.__class__ is not list:
        raw_entries = []
    entries: list[EntryFacts] = []
    by_url: dict[str, dict] = {}
    duplicates: list[int] = []
    ids: set[tuple[str, str]] = set()
    duplicate_ids: list[int] = []
    header = None
    for i, entry in enumerate(raw_entries):
        if entry.__class__ is not dict:
            continue
        resource = entry.get("resource")
        if resource.__class__ is not dict:
            resource = {}
        url = entry.get("fullUrl")
        if url.__class__ is str:
            if url in by_url:
                duplicates.append(i)
            else:
                by_url[url] = resource
        rtype = resource.get("resourceType")
        if rtype.__class__ is not str:
            rtype = "Resource"
        rid = resource.get("id")
        if rid.__class__ is str:
            if (rtype, rid) in ids:
                duplicate_ids.append(i)
            ids.add((rtype, rid))
        if rtype == "MessageHeader" and header is None:
            header = resource
        facts = EntryFacts(i, resource, rtype)
        _collect(resource, facts)
        entries.append(facts)
    first = raw_entries[0].get("resource") if raw_entries and raw_entries[0].__class__ is dict else None
    first_is_header = first.__class__ is dict and first.get("resourceType") == "MessageHeader"
    return MessageIndex(entries, by_url, duplicates, first_is_header, header, doc.get("timestamp"), duplicate_ids)
