"""`sgx node inbox` shows, under each of the exchange's acknowledgements, the message it answers, its outcome and
the reasons: each recipient an accepted message was queued for, or why a message was refused."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from broker import acknowledgements
from sgx.cli import cli
from sgx.demo import placement
from standard import compose as c

LODGE = "SC900001"


def sgx(*args, code: int = 0) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


def _exchange(tmp_path, *, keyed=("router", "la-886", "la-371")):
    root = tmp_path / "ex"
    sgx("directory", "init", "--dir", root)
    for pid in keyed:
        sgx("directory", "keygen", "--dir", root, "--participant", pid)
    sgx("directory", "sign", "--dir", root)
    return root


def _send_and_route(root, tmp_path, message: dict) -> str:
    file = tmp_path / "message.json"
    file.write_bytes(orjson.dumps(message))
    sgx("node", "send", "--dir", root, "--participant", "la-886", file)
    sgx("broker", "route", "--dir", root, "--once")
    sgx("node", "run", "--dir", root, "--participant", "la-886", "--once")
    return sgx("node", "inbox", "--dir", root, "--participant", "la-886")


def test_a_refusal_shows_its_outcome_and_reason(tmp_path):
    root = _exchange(tmp_path)  # no setting SC900001 in the directory: the placement is refused
    message = placement("la-886", 1, LODGE, "2026-01-05")
    shown = _send_and_route(root, tmp_path, message)
    assert f"answers {message['identifier']['value']}: no-recipients" in shown
    assert f"setting {LODGE} is not in the directory" in shown


def test_an_acceptance_names_each_recipient_it_was_queued_for(tmp_path):
    root = _exchange(tmp_path)
    sgx("directory", "add-setting", "--dir", root, "--urn", LODGE, "--name", "Example Lodge", "--host-la", "la-371")
    sgx("directory", "sign", "--dir", root)
    message = placement("la-886", 1, LODGE, "2026-01-05")
    shown = _send_and_route(root, tmp_path, message)
    assert f"answers {message['identifier']['value']}: accepted" in shown
    assert "recipient la-371: queued for delivery" in shown
    assert "2011-04-0" not in shown and "la-886-0001" not in shown  # the child's facts are never printed


def test_the_answer_is_read_from_the_acknowledgement_itself():
    refused = c.acknowledgement("urn:uuid:0b4ad0a4-5c1e-4f6e-9d43-8d7f2e1c3a10", "router", "no-recipients",
                                details=[("error", "invalid", "no-recipients", "no-recipients: not onboarded: la-371")])
    answer = acknowledgements.read(orjson.dumps(refused))
    assert answer == acknowledgements.Answer("urn:uuid:0b4ad0a4-5c1e-4f6e-9d43-8d7f2e1c3a10", False, "no-recipients",
                                             ("no-recipients: not onboarded: la-371",))
    duplicate = c.acknowledgement("urn:uuid:0b4ad0a4-5c1e-4f6e-9d43-8d7f2e1c3a10", "router", "duplicate")
    assert acknowledgements.read(duplicate).outcome == "duplicate" and acknowledgements.read(duplicate).ok
    assert acknowledgements.read(placement("la-886", 1, LODGE, "2026-01-05")) is None  # not an acknowledgement
    assert acknowledgements.read(b"not json") is None


def test_a_refusal_names_the_recipients_not_onboarded_yet(tmp_path):
    root = _exchange(tmp_path, keyed=("router", "la-886"))  # the host authority la-371 has no key yet
    sgx("directory", "add-setting", "--dir", root, "--urn", LODGE, "--name", "Example Lodge", "--host-la", "la-371")
    sgx("directory", "sign", "--dir", root)
    message = placement("la-886", 1, LODGE, "2026-01-05")
    shown = _send_and_route(root, tmp_path, message)
    assert f"answers {message['identifier']['value']}: no-recipients" in shown
    named = next(line for line in shown.splitlines() if "not onboarded yet (no key):" in line)
    assert "la-371" in named.split("not onboarded yet (no key):")[1]
    assert "no-recipients: no-recipients" not in shown
