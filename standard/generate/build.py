"""`sgx standard build`: write (or check) every generated artefact of the standard."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import orjson

from standard import artefacts
from standard import catalogue as cat
from standard.errors import BuildError
from standard.generate import cases, conformance, examples, schemas, snapshot

_JSON = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


def _dump(data) -> bytes:
    return orjson.dumps(data, option=_JSON) + b"\n"


def package_manifest() -> dict:
    return {
        "name": cat.PACKAGE_NAME, "version": cat.VERSION, "type": "fhir.ig", "canonical": cat.CANONICAL,
        "url": cat.CANONICAL, "title": "Safeguarding Exchange", "fhirVersions": [cat.FHIR_VERSION],
        "description": "FHIR R4 messages for sharing safeguarding information about children placed in "
                       "residential settings in England.",
        "dependencies": {"hl7.fhir.r4.core": cat.FHIR_VERSION}, "author": "Safeguarding Exchange",
        "license": "CC0-1.0", "jurisdiction": "urn:iso:std:iso:3166#GB",
    }


def _index_entry(filename: str, r: dict) -> dict:
    entry = {"filename": filename, "resourceType": r["resourceType"], "id": r["id"]}
    for key in ("url", "version", "kind", "type"):
        if key in r:
            entry[key] = r[key]
    return entry


def planned_files() -> Iterator[tuple[Path, bytes]]:
    """Every generated file and its content, in a stable order."""
    resources = conformance.all_resources()
    snapshot.add_snapshots(resources)  # from the vendored HL7 R4 definitions: no network, no npm
    index = {"index-version": 1, "files": []}
    for r in resources:
        name = f"{r['resourceType']}-{r['id']}.json"
        index["files"].append(_index_entry(name, r))
        yield artefacts.PACKAGE / name, _dump(r)
    for name, example in examples.all_examples().items():
        yield artefacts.EXAMPLES / f"{name}.json", _dump(example)
        yield artefacts.PACKAGE / "example" / f"Bundle-{name}.json", _dump({**example, "id": name})
    yield artefacts.PACKAGE / "package.json", _dump(package_manifest())
    yield artefacts.PACKAGE / ".index.json", _dump(index)
    for name, schema in schemas.all_schemas().items():
        yield artefacts.SCHEMAS / name, _dump(schema)
    for name, suite in cases.all_cases().items():
        yield artefacts.CASES / name, _dump(suite)


def build(*, check: bool = False) -> list[Path]:
    """Write the generated artefacts; with check=True, write nothing and return the stale or missing ones.

    Files in the generated folders that the build would not write are reported (check) or removed (build).
    """
    planned = dict(planned_files())
    roots = [artefacts.PACKAGE, artefacts.SCHEMAS, artefacts.CASES, artefacts.EXAMPLES]
    existing = {p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()}
    stale = sorted(p for p, data in planned.items() if not p.exists() or p.read_bytes() != data)
    extra = sorted(existing - set(planned))
    if check:
        return stale + extra
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(planned[path])
    for path in extra:
        path.unlink()
    return stale + extra


def package_tarball() -> bytes:
    """The FHIR npm package as a .tgz (package/ at the root, as npm and FHIR tooling expect)."""
    if not (artefacts.PACKAGE / "package.json").exists():
        raise BuildError("the package has not been built; run 'sgx standard build'")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(artefacts.PACKAGE.rglob("*")):
            if path.is_file():
                info = tarfile.TarInfo(name=f"package/{path.relative_to(artefacts.PACKAGE).as_posix()}")
                data = path.read_bytes()
                info.size = len(data)
                info.mtime = 0
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
