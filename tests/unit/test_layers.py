"""The house shows its layers: each package imports only the layers below it (docs/architecture.md, "Layers").
Every import is read, function-level ones included; known exceptions are listed with why and must not grow."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = ("sgx", "standard", "broker", "adapters", "conformance")

# package -> the packages of ours it may import (itself always). standard.errors, the one exception hierarchy, is
# the bottom and imports nothing; the rest of standard/ stands on it.
ALLOWED = {
    "standard.errors": set(),
    "standard": {"standard.errors"},
    "broker": {"standard.errors", "standard"},
    "adapters": {"standard.errors", "standard", "broker"},
    "conformance": {"standard.errors", "standard", "broker"},
    "sgx": {"standard.errors", "standard", "broker", "adapters", "conformance"},
}
# Known exceptions, each to be removed by moving the shared code below both packages (none are left).
EXCEPTIONS: dict[tuple[str, str], str] = {}


def _layer(module: str) -> str:
    return "standard.errors" if module.startswith("standard.errors") else module.split(".")[0]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from standard import errors" imports the module standard.errors, not the package's other modules.
            found.update(f"{node.module}.{a.name}" for a in node.names) if node.module in OURS else \
                found.add(node.module)
    return {m for m in found if m.split(".")[0] in OURS}


def _files():
    """Each Python file of ours: its path, its path from the root, and the layer it belongs to."""
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            yield path, relative, "standard.errors" if relative == "standard/errors.py" else package


def violations() -> list[tuple[str, str]]:
    out = []
    for path, relative, own in _files():
        for module in _imports(path):
            layer = _layer(module)
            if layer == own or (own == "sgx" and layer == "sgx"):
                continue
            if layer not in ALLOWED[own]:
                out.append((relative, layer))
    return sorted(set(out))


def test_every_import_points_down_the_layers():
    assert [v for v in violations() if v not in EXCEPTIONS] == []


def test_the_known_exceptions_still_exist_so_the_list_stays_true():
    assert set(EXCEPTIONS) <= set(violations())


def _reaches_inside(path: Path, own: str) -> set[str]:
    """What a file takes from another package that is not its public API: a private name (`from x import _y`), a
    private module (`x._y`), or the exchange's command line (`broker.cli`, whose helpers are for its commands)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [(node.module, a.name) for a in node.names]
        else:
            continue
        for module, name in modules:
            full = f"{module}.{name}" if name else module
            if module.split(".")[0] not in OURS or _layer(full) == own or module.split(".")[0] == own:
                continue
            private = any(part.startswith("_") for part in full.split("."))
            if private or (full.startswith("broker.cli") and own != "sgx"):
                found.add(full)
    return found


def reaching_inside() -> list[tuple[str, str]]:
    out = []
    for path, relative, own in _files():
        out.extend((relative, name) for name in _reaches_inside(path, own))
    return sorted(out)


def test_no_package_takes_another_packages_private_names_or_the_exchanges_command_line():
    # The adapters, the inbox and the demo reach an exchange through broker.exchange_folder.ExchangeFolder.
    assert reaching_inside() == []


def test_the_private_name_check_sees_what_it_must(tmp_path, monkeypatch):
    # The broken twin: an adapter taking the command line's private helper, and one taking broker.cli itself.
    fake = tmp_path / "adapters" / "sneaky.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from broker.cli import _transport\n\ndef f():\n    from broker import cli\n    return cli\n"
                    "from broker.node import _SCHEMA\nfrom adapters.base import _own_private\n")
    for package in OURS:
        (tmp_path / package).mkdir(exist_ok=True)
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert reaching_inside() == [("adapters/sneaky.py", "broker.cli"), ("adapters/sneaky.py", "broker.cli._transport"),
                                 ("adapters/sneaky.py", "broker.node._SCHEMA")]


def test_the_check_sees_an_import_inside_a_function(tmp_path, monkeypatch):
    # The broken twin: a standard module that imports the exchange inside a function is caught.
    fake = tmp_path / "standard" / "sneaky.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from broker.router import Router\n    return Router\n")
    for package in OURS:
        if package != "standard":
            (tmp_path / package).mkdir(exist_ok=True)
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert violations() == [("standard/sneaky.py", "broker")]
