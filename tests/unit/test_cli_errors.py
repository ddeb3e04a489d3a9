"""No traceback ever reaches a user of `sgx`: every command is run with no arguments, with a missing exchange
folder and with unknown ids, and each must end in a message and an exit code of 0, 1 or 2."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from sgx.cli import GuardedGroup, cli

# Commands that run until stopped, or fetch and start servers: given only arguments that must fail fast.
LONG_RUNNING = {("broker", "route"), ("node", "run"), ("inbox", "serve"), ("broker", "dev-server"), ("demo",)}


def _commands(group: click.Group = cli, path: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _dummy(param: click.Parameter, folder: str) -> list[str]:
    """A value of the right shape for a required option or argument that points at nothing real."""
    name = param.name or ""
    value = {"root": folder, "base": folder, "rabbitmq_dir": folder, "out_dir": f"{folder}/out",
             "report_dir": f"{folder}/reports", "folder": folder, "mapping": f"{folder}/mapping.toml",
             "pid": "nobody-1", "participant": "nobody-1", "kid": "nobody-1-1", "urn": "SC999999",
             "host_la": "la-999", "la_code": "999", "sender": "nobody-1", "kind": "provider", "name": "Nobody",
             "email": "nobody@example.org", "kit": "messages", "url": "amqp://127.0.0.1:9/"}.get(name, "x")
    if isinstance(param, click.Argument):
        return [f"{folder}/missing.json"]
    if isinstance(param.type, click.Choice):
        value = str(param.type.choices[0])
    return [param.opts[0], value]


COMMANDS = list(_commands())


def test_the_top_of_the_command_line_is_guarded():
    assert isinstance(cli, GuardedGroup)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_no_traceback_with_no_arguments_or_a_missing_folder(tmp_path, monkeypatch, path, command):
    monkeypatch.chdir(tmp_path)  # commands whose folder defaults to "." write there, never into the checkout
    runner = CliRunner()
    missing = str(tmp_path / "no-such-folder")
    has_dir = any(p.name == "root" for p in command.params)
    required = [a for p in command.params if p.required for a in _dummy(p, missing)]
    with_missing_folder = [*path, *required, *(["--dir", missing] if has_dir and "--dir" not in required else [])]
    if path in LONG_RUNNING:
        # Only what must fail fast: help, and (for commands on an exchange folder) a folder that is not there.
        attempts = [[*path, "--help"]] + ([with_missing_folder] if has_dir else [])
    else:
        attempts = [[*path], with_missing_folder]
    for args in attempts:
        result = runner.invoke(cli, args, env={"SGX_INBOX_PASSWORD": "a long enough passphrase"})
        assert "Traceback" not in result.output, args
        assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output[-300:])
        if result.exception is not None:
            assert isinstance(result.exception, SystemExit), (args, repr(result.exception))


def test_an_unexpected_error_names_the_file_with_its_details(monkeypatch):
    import standard.cli

    def broken(*_, **__):
        raise ZeroDivisionError("deliberately broken for this test")

    monkeypatch.setattr(standard.cli, "_message_files", broken)
    result = CliRunner().invoke(cli, ["standard", "validate", "README.md"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "unexpected ZeroDivisionError" in result.output and "sgx-errors" in result.output
    log = result.output.split("details are in ")[1].split(";")[0]
    with open(log, encoding="utf-8") as details:
        assert "deliberately broken" in details.read()


def test_the_broken_twin_without_the_guard_lets_a_traceback_through(monkeypatch):
    # The guard is what the test above relies on: a plain group lets the exception escape.
    import standard.cli

    monkeypatch.setattr(standard.cli, "_message_files", lambda *_: 1 / 0)
    plain = click.Group(commands={"standard": standard.cli.standard})
    result = CliRunner().invoke(plain, ["standard", "validate", "README.md"])
    assert isinstance(result.exception, ZeroDivisionError)
