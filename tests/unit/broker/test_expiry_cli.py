"""An expired or expiring directory from the command line: reading still works with a warning, sending and routing
refuse with how to re-sign, signing refuses a validity that is already over, and a week's notice is given."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from click.testing import CliRunner

from broker import directory as d
from broker.keys import SigningKey
from sgx.cli import cli
from sgx.demo import LODGE, placement


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def exchange(tmp_path):
    root = tmp_path / "exchange"
    run("directory", "init", "--dir", root)
    for pid in ("la-886", "la-371", "icb-QF7", "router"):
        run("directory", "keygen", "--dir", root, "--participant", pid)
    run("directory", "add-setting", "--dir", root, "--urn", LODGE, "--name", "Example Lodge", "--host-la", "la-371")
    assert run("directory", "sign", "--dir", root).exit_code == 0
    message = tmp_path / "placement.json"
    message.write_bytes(orjson.dumps(placement("la-886", 1, LODGE, "2026-01-05")))
    run("node", "send", "--dir", root, "--participant", "la-886", message)
    run("broker", "route", "--dir", root, "--once")
    run("node", "run", "--dir", root, "--participant", "la-371", "--once")
    return root, message


def _resign(root, valid_for: timedelta) -> None:
    """Sign the folder's draft as the operator would, with any validity (the CLI refuses a past one)."""
    draft = d.Directory.from_payload(orjson.loads((root / "directory.draft.json").read_bytes()))
    key = SigningKey.load(root / "keys" / "operator.key")
    (root / "directory.json").write_bytes(draft.sign(key, valid_for=valid_for))


def test_signing_refuses_a_validity_that_is_already_over(exchange):
    root, _ = exchange
    for days in ("0", "-3"):
        result = run("directory", "sign", "--dir", root, "--valid-days", days)
        assert result.exit_code == 2 and "--valid-days must be 1 or more" in result.output


def test_reading_an_expired_directory_works_with_a_warning_and_sending_refuses(exchange):
    root, message = exchange
    _resign(root, timedelta(seconds=-60))
    shown = run("directory", "show", "--dir", root)
    assert shown.exit_code == 0 and "warning: the directory expired" in shown.output and "Example Lodge" in shown.output
    listed = run("node", "inbox", "--dir", root, "--participant", "la-371")
    assert listed.exit_code == 0 and "placement-started" in listed.output and "warning" in listed.output
    sent = run("node", "send", "--dir", root, "--participant", "la-886", message)
    assert sent.exit_code == 2 and "expired" in sent.output and "Traceback" not in sent.output
    routed = run("broker", "route", "--dir", root, "--once")
    assert routed.exit_code != 0 and "Traceback" not in routed.output


def test_a_week_before_expiry_every_command_says_so(exchange):
    root, _ = exchange
    _resign(root, timedelta(days=3))
    shown = run("directory", "show", "--dir", root)
    assert shown.exit_code == 0 and "warning: the directory expires at" in shown.output
    _resign(root, timedelta(days=30))
    assert "warning" not in run("directory", "show", "--dir", root).output
