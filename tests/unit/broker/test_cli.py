"""The exchange from the command line: build and sign a directory, send, route, receive, audit."""

from __future__ import annotations

import sqlite3
import stat

import orjson
from click.testing import CliRunner

from sgx.cli import cli
from sgx.demo import LODGE, placement


def run(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def test_directory_send_route_receive_audit(tmp_path):
    root = tmp_path / "exchange"
    run("directory", "init", "--dir", root)
    for pid in ("la-886", "la-371", "icb-QF7", "router"):
        out = run("directory", "keygen", "--dir", root, "--participant", pid)
        assert "PRIVATE" not in out and "BEGIN" not in out
    assert stat.S_IMODE((root / "keys" / "la-886-1.key").stat().st_mode) == 0o600
    run("directory", "add-setting", "--dir", root, "--urn", LODGE, "--name", "Example Lodge", "--host-la", "la-371")
    run("directory", "add-setting", "--dir", root, "--urn", "SC12", "--name", "X", "--host-la", "la-371", ok=False)
    run("directory", "sign", "--dir", root)
    assert "valid: version 2" in run("directory", "verify", "--dir", root)
    assert "setting SC900001 Example Lodge: host la-371, icb-QF7" in run("directory", "show", "--dir", root)

    message = tmp_path / "placement.json"
    message.write_bytes(orjson.dumps(placement("la-886", 1, LODGE, "2026-01-05")))
    assert "sent 1" in run("node", "send", "--dir", root, "--participant", "la-886", message)
    assert "routed 1" in run("broker", "route", "--dir", root, "--once")
    assert "received 1" in run("node", "run", "--dir", root, "--participant", "la-371", "--once")
    listing = run("node", "inbox", "--dir", root, "--participant", "la-371")
    assert "placement-started" in listing and "verified" in listing and "886-0001" not in listing
    assert "intact: 1 records" in run("audit", "verify", "--dir", root)
    assert "accepted" in run("audit", "show", "--dir", root)

    db = sqlite3.connect(root / "router.db")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET record = replace(record, 'la-371', 'la-383')")
    db.commit()
    run("audit", "verify", "--dir", root, ok=False)


def test_tampered_or_expired_directory_is_refused(tmp_path):
    root = tmp_path / "exchange"
    run("directory", "init", "--dir", root)
    run("directory", "sign", "--dir", root, "--valid-days", "0", ok=False)  # refused: it would be expired
    from datetime import timedelta

    from broker import directory as d
    from broker.keys import SigningKey

    draft = d.Directory.from_payload(orjson.loads((root / "directory.draft.json").read_bytes()))
    (root / "directory.json").write_bytes(draft.sign(SigningKey.load(root / "keys" / "operator.key"),
                                                     valid_for=timedelta(seconds=-1)))
    assert "expired" in run("directory", "verify", "--dir", root, ok=False)
    run("directory", "sign", "--dir", root)
    signed = orjson.loads((root / "directory.json").read_bytes())
    signed["signature"] = signed["signature"][::-1]
    (root / "directory.json").write_bytes(orjson.dumps(signed))
    assert "does not verify" in run("directory", "verify", "--dir", root, ok=False)


def test_a_second_router_process_on_the_same_folder_is_refused(tmp_path):
    import fcntl

    root = tmp_path / "exchange"
    run("directory", "init", "--dir", root)
    run("directory", "keygen", "--dir", root, "--participant", "router")
    run("directory", "sign", "--dir", root)
    with open(root / "router.lock", "w") as held:  # as a running router holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert "already running" in run("broker", "route", "--dir", root, "--once", ok=False)
    assert "routed 0" in run("broker", "route", "--dir", root, "--once")
