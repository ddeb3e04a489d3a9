"""FHIRPath-style locations for findings: ``Bundle.entry[2].resource.period.start``."""

from __future__ import annotations

from typing import Any


def fhirpath(doc: Any, path: list) -> str:
    """Render a JSON instance path as a FHIRPath-style location, naming the resource type of entries."""
    out = "Bundle"
    node = doc
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out += f".{step}"
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            node = None
        if step == "resource" and isinstance(node, dict) and isinstance(node.get("resourceType"), str):
            out += f".ofType({node['resourceType']})"
    return out


def entry_location(index: int, resource_type: str, *rest: str) -> str:
    """Location of an element inside the resource of entry `index`."""
    base = f"Bundle.entry[{index}].resource.ofType({resource_type})"
    return ".".join([base, *rest]) if rest else base
