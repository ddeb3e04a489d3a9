"""`sgx standard`: validate messages, build the package and schemas, write the docs site."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from standard.validator import FULL, HOT_PATH, Validator
from standard.validator.outcome import operation_outcome

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def _message_files(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.rglob("*.json")) if path.is_dir() else [path])
    return files


@click.group()
def standard() -> None:
    """The Safeguarding Exchange standard: validate, build, publish."""


@standard.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "operationoutcome"]), default="text",
              show_default=True, help="How to report findings.")
@click.option("--hot-path", is_flag=True, help="Run only the router's hot-path layers (no FHIR model check).")
def validate(paths: tuple[Path, ...], fmt: str, hot_path: bool) -> None:
    """Validate message files (or every *.json under a folder).

    Exits 0 when every message is valid, 1 when any is invalid, 2 on a usage error.

    \b
    Examples:
      sgx standard validate examples/messages/
      sgx standard validate --format json message.json
    """
    validator = Validator(HOT_PATH if hot_path else FULL)
    files = _message_files(paths)
    if not files:
        click.echo(f"no message files (*.json) under {', '.join(map(str, paths))}: nothing was validated; "
                   "name the message files or a folder that holds them", err=True)
        sys.exit(EXIT_USAGE)
    results = []
    for file in files:
        findings = list(validator.iter_findings(file.read_bytes()))
        results.append((file, findings))
    invalid = sum(1 for _, f in results if any(x.severity == "error" for x in f))
    if fmt == "json":
        out = [{"file": str(file), "valid": not any(x.severity == "error" for x in f),
                "findings": [x.as_dict() for x in f]} for file, f in results]
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    elif fmt == "operationoutcome":
        if len(results) == 1:
            out = operation_outcome(results[0][1])
        else:
            # One OperationOutcome per file in a collection Bundle; each entry's fullUrl names its file.
            out = {"resourceType": "Bundle", "type": "collection",
                   "entry": [{"fullUrl": file.resolve().as_uri(), "resource": operation_outcome(f)}
                             for file, f in results]}
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    else:
        for file, findings in results:
            if not findings:
                click.echo(f"{file}: valid")
            for f in findings:
                click.echo(f"{file}: {f.severity} {f.code} at {f.location}: {f.message}")
        click.echo(f"{len(results) - invalid} valid, {invalid} invalid", err=True)
    sys.exit(EXIT_INVALID if invalid else EXIT_VALID)


@standard.command()
@click.option("--check", is_flag=True, help="Write nothing; fail if the committed artefacts are stale.")
def build(check: bool) -> None:
    """Regenerate the FHIR package, JSON Schemas, examples and case suite from the profile definitions."""
    from standard.errors import BuildError
    from standard.generate.build import build as run_build

    try:
        changed = run_build(check=check)
    except BuildError as e:  # a profile the base definitions refuse, or a missing vendored definition
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_INVALID)
    root = Path.cwd()
    for path in changed:
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        click.echo(f"{'stale' if check else 'wrote'}: {shown}")
    if check and changed:
        click.echo(f"{len(changed)} generated file(s) are stale; run 'sgx standard build' and commit", err=True)
        sys.exit(EXIT_INVALID)
    click.echo("artefacts are up to date" if not changed else f"{len(changed)} file(s) updated", err=True)


@standard.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the static site into.")
def docs(out_dir: Path) -> None:
    """Write the standard's static HTML site: messages, profiles, code systems, requirements, package."""
    from standard.generate.site import write_site

    pages = write_site(out_dir)
    click.echo(f"wrote {len(pages)} pages to {out_dir}; open {out_dir / 'index.html'}")
