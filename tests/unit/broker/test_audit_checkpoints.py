"""The audit head, published after every batch and signed by the router at intervals: a log cut short or
rewritten and re-hashed verifies as a chain, and only the signed checkpoints tell it from an intact one."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import orjson
from click.testing import CliRunner

from broker import directory as d
from broker.audit import GENESIS, AuditLog, Checkpoints, _hash, entry, verify_checkpoints
from broker.keys import SigningKey
from sgx.cli import cli
from sgx.demo import LODGE, placement

NOW = datetime.now(UTC)


def _router_keys():
    key = SigningKey.generate("router-1")
    directory = d.Directory()
    directory.add(d.Participant("router", d.OPERATOR, "router"))
    directory.add_key("router", key, valid_from=NOW - timedelta(days=1))
    return key, directory


def _logged(tmp_path, batches=4, per_batch=3, every=3):
    """A log written batch by batch, as the router writes it, with its head and checkpoints."""
    key, directory = _router_keys()
    log = AuditLog(tmp_path / "router.db")
    checkpoints = Checkpoints(tmp_path, key, every=every, interval=timedelta(hours=1))
    for b in range(batches):
        log.append_many([entry(message_id=f"m{b}-{i}", digest="d" * 64, sender="la-886", event="placement-started",
                               recipients=["la-371"], decision="accepted") for i in range(per_batch)])
        checkpoints.after_batch(log, now=NOW + timedelta(seconds=b))
    return log, checkpoints, directory


def _raw(log: AuditLog) -> sqlite3.Connection:
    db = sqlite3.connect(log.db.execute("PRAGMA database_list").fetchone()[2])
    db.execute("DROP TRIGGER IF EXISTS audit_no_update")
    db.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    return db


def _recompute_from(log: AuditLog, seq: int, edit: str) -> None:
    """Rewrite record `seq` and re-hash every record from it, as someone with write access could."""
    db = _raw(log)
    rows = db.execute("SELECT seq, record FROM audit WHERE seq >= ? ORDER BY seq", (seq,)).fetchall()
    prev = db.execute("SELECT hash FROM audit WHERE seq = ?", (seq - 1,)).fetchone()
    prev = prev[0] if prev else GENESIS
    for n, record in rows:
        record = record.replace("la-371", edit) if n == seq else record
        digest = _hash(prev, n, record)
        db.execute("UPDATE audit SET record = ?, prev_hash = ?, hash = ? WHERE seq = ?", (record, prev, digest, n))
        prev = digest
    db.commit()


def test_the_head_is_published_after_every_batch_and_signed_every_few_records(tmp_path):
    log, checkpoints, directory = _logged(tmp_path, batches=4, per_batch=2, every=3)
    head = checkpoints.published_head()
    assert (head["seq"], head["hash"]) == log.last() == (8, log.head())
    assert [c["seq"] for c in checkpoints.read()] == [2, 6]  # the first batch, then once 3 or more were added
    assert verify_checkpoints(log, checkpoints.read(), directory.public_key_for) == []
    assert checkpoints.sign_now(log, now=NOW + timedelta(minutes=1))["seq"] == 8  # when the router stops
    assert checkpoints.sign_now(log)["seq"] == 8 and len(checkpoints.read()) == 3  # nothing new: no new one


def test_a_checkpoint_is_also_signed_once_the_interval_has_passed(tmp_path):
    key, directory = _router_keys()
    log = AuditLog(tmp_path / "router.db")
    checkpoints = Checkpoints(tmp_path, key, every=1000, interval=timedelta(seconds=60))
    for minute in (0, 0.5, 1.5):
        log.append(message_id=f"m{minute}", digest="d" * 64, sender="la-886", event="e", recipients=[],
                   decision="accepted")
        checkpoints.after_batch(log, now=NOW + timedelta(minutes=minute))
    assert [c["seq"] for c in checkpoints.read()] == [1, 3]


def test_a_truncated_tail_is_caught_by_the_checkpoints_and_not_by_the_chain(tmp_path):
    log, checkpoints, directory = _logged(tmp_path)
    db = _raw(log)
    db.execute("DELETE FROM audit WHERE seq > 5")
    db.commit()
    assert log.verify() == []  # the broken twin: the chain alone calls the shortened log intact
    problems = verify_checkpoints(log, checkpoints.read(), directory.public_key_for)
    assert problems and all("removed" in p.what for p in problems)
    assert [p.seq for p in problems] == [6, 9, 12]


def test_a_rewritten_and_rehashed_chain_is_caught_by_the_checkpoints_and_not_by_the_chain(tmp_path):
    log, checkpoints, directory = _logged(tmp_path)
    _recompute_from(log, 4, "la-383")
    assert log.verify() == []  # the broken twin: every hash matches its record, every link its predecessor
    problems = verify_checkpoints(log, checkpoints.read(), directory.public_key_for)
    assert [p.seq for p in problems] == [6, 9, 12] and "rewritten" in problems[0].what
    assert verify_checkpoints(log, checkpoints.read()[:1], directory.public_key_for) == []  # before the edit


def test_a_checkpoint_not_signed_by_the_router_is_refused(tmp_path):
    log, checkpoints, directory = _logged(tmp_path)
    forged = Checkpoints(tmp_path / "elsewhere", SigningKey.generate("router-1"))
    (tmp_path / "elsewhere").mkdir()
    _recompute_from(log, 4, "la-383")
    checkpoint = forged.sign_now(log, now=NOW)  # the rewritten head, signed with a key the directory does not hold
    problems = verify_checkpoints(log, [checkpoint], directory.public_key_for)
    assert len(problems) == 1 and "not the router's" in problems[0].what


def _run(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def test_sgx_audit_verify_catches_truncation_without_a_hand_kept_head_and_a_kept_copy_outlives_the_folder(
        tmp_path):
    root = tmp_path / "exchange"
    _run("directory", "init", "--dir", root)
    for pid in ("la-886", "la-371", "icb-QF7", "router"):
        _run("directory", "keygen", "--dir", root, "--participant", pid)
    _run("directory", "add-setting", "--dir", root, "--urn", LODGE, "--name", "Example Lodge", "--host-la", "la-371")
    _run("directory", "sign", "--dir", root)
    for n in (1, 2, 3):
        message = tmp_path / f"placement-{n}.json"
        message.write_bytes(orjson.dumps(placement("la-886", n, LODGE, "2026-01-05")))
        _run("node", "send", "--dir", root, "--participant", "la-886", message)
        assert "signed" in _run("broker", "route", "--dir", root, "--once")
    assert "matches 3 signed checkpoint(s) up to record 3" in _run("audit", "verify", "--dir", root)
    kept = tmp_path / "kept-checkpoint.json"
    kept.write_text(_run("audit", "checkpoint", "--dir", root))
    assert orjson.loads(kept.read_bytes())["seq"] == 3

    log = AuditLog(root / "router.db")
    db = _raw(log)
    db.execute("DELETE FROM audit WHERE seq = 3")
    db.commit()
    out = _run("audit", "verify", "--dir", root, ok=False)
    assert "the log ends at record 2" in out and "removed" in out
    # Cut the folder's own checkpoints and head too: only a copy kept elsewhere still tells.
    lines = (root / "audit-checkpoints.jsonl").read_bytes().splitlines(keepends=True)
    (root / "audit-checkpoints.jsonl").write_bytes(b"".join(lines[:2]))
    (root / "audit-head.json").unlink()
    assert "intact" in _run("audit", "verify", "--dir", root)
    assert "removed" in _run("audit", "verify", "--dir", root, "--checkpoint", kept, ok=False)
    (root / "audit-checkpoints.jsonl").unlink()
    assert "no signed checkpoint" in _run("audit", "verify", "--dir", root, ok=False)
