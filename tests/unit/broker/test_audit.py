"""The audit chain detects an edited, deleted, inserted or reordered record, and a truncated tail."""

from __future__ import annotations

import sqlite3

import pytest

from broker.audit import AuditLog


def _log(tmp_path, n=5) -> AuditLog:
    log = AuditLog(tmp_path / "audit.db")
    for i in range(n):
        log.append(message_id=f"m{i}", digest="d" * 64, sender="la-886", event="placement-started",
                   recipients=["la-371"], decision="accepted")
    return log


def _tamper(log: AuditLog, *statements: str) -> None:
    db = sqlite3.connect(log.db.execute("PRAGMA database_list").fetchone()[2])
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    for sql in statements:
        db.execute(sql)
    db.commit()


def test_intact_log_verifies(tmp_path):
    log = _log(tmp_path)
    assert log.verify() == [] and log.verify(expect_head=log.head()) == []


def test_updates_and_deletes_are_refused_by_the_database(tmp_path):
    log = _log(tmp_path)
    with pytest.raises(sqlite3.IntegrityError):
        log.db.execute("UPDATE audit SET record = '{}' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError):
        log.db.execute("DELETE FROM audit WHERE seq = 2")


def test_edit_is_detected(tmp_path):
    log = _log(tmp_path)
    _tamper(log, "UPDATE audit SET record = replace(record, 'la-371', 'la-383') WHERE seq = 3")
    assert [p.seq for p in log.verify()] == [3]


def test_deletion_is_detected(tmp_path):
    log = _log(tmp_path)
    _tamper(log, "DELETE FROM audit WHERE seq = 2")
    assert log.verify()[0].seq == 3


def test_reordering_is_detected(tmp_path):
    log = _log(tmp_path)
    _tamper(log, "UPDATE audit SET seq = -2 WHERE seq = 2", "UPDATE audit SET seq = 2 WHERE seq = 3",
            "UPDATE audit SET seq = 3 WHERE seq = -2")
    assert log.verify()


def test_truncated_tail_is_detected_against_the_recorded_head(tmp_path):
    log = _log(tmp_path)
    head = log.head()
    _tamper(log, "DELETE FROM audit WHERE seq = 5")
    assert log.verify() == []  # the chain itself is still consistent...
    assert log.verify(expect_head=head)  # ...but not with the head recorded elsewhere
