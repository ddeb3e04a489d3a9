"""A large run builds, validates and signs its messages in worker processes (`broker.workers`). It must queue,
refuse, remember and send exactly what a run in one process does, and a refusal must name the row it came from
however the work was shared out."""

from __future__ import annotations

import gc
import shutil
import sqlite3
from pathlib import Path

import orjson
import pytest

from adapters import placements, queueing
from broker import workers
from broker.exchange_folder import ExchangeFolder
from tests.unit.adapters.conftest import routed, summary

HEADER = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\n"
EPISODES = "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN\n"
CHILDREN = 200  # C1 has one open placement; the others have ended ones: 399 messages, enough for the pool
BROKEN_CHILD = "C1"


def _export(folder: Path) -> tuple[Path, Path]:
    header, episodes = folder / "header.csv", folder / "episodes.csv"
    header.write_text(HEADER + "".join(f"C{n},1,27/03/2010,WBRI,,,\n" for n in range(1, CHILDREN + 1)))
    episodes.write_text(EPISODES + "C1,01/02/2026,S,C2,N1,K2,PR4,,,,,,SC900001\n" + "".join(
        f"C{n},01/02/2026,S,C2,N1,K2,PR4,20/02/2026,X1,ALLEG,,,SC900001\n" for n in range(2, CHILDREN + 1)))
    return header, episodes


def invalid_for_one_child(facts: placements.PlacementFacts) -> dict:
    """The real message, except that the broken child's has a gender the standard does not know (module-level:
    a recipe travels to the worker processes by name)."""
    message = REAL_MESSAGE(facts)
    if facts.child == BROKEN_CHILD:
        next(e for e in message["entry"] if e["resource"]["resourceType"] == "Patient")["resource"]["gender"] = "x"
    return message


REAL_MESSAGE = placements.placement_message


def _run(exchange: Path, folder: Path, *, parallel: bool, monkeypatch) -> tuple[dict, dict]:
    monkeypatch.setattr(queueing, "PARALLEL_FROM", 1 if parallel else 10**9)
    monkeypatch.setattr(queueing, "available_cores", lambda: 2)  # two workers, whatever machine runs the test
    started = []
    real_start = workers.Workers._started
    monkeypatch.setattr(workers.Workers, "_started", lambda self: started.append(1) or real_start(self))
    monkeypatch.setattr(placements, "placement_message", invalid_for_one_child)
    header, episodes = _export(folder)
    report = folder / "report.json"
    out = summary("adapt", "ssda903", "--dir", exchange, "--la", "886", header, episodes, "--report", report,
                  code=1)
    assert bool(started) == parallel, "the worker processes ran" if started else "no worker process ran"
    # The run turns the collector off while it reads and plans, and freezes what it read: it leaves it as it was.
    assert gc.isenabled() and gc.get_freeze_count() == 0
    return out, orjson.loads(report.read_bytes())


def _outbox(exchange: Path) -> dict[str, str]:
    """Each queued message id with the child its body names."""
    with sqlite3.connect(ExchangeFolder(exchange).outbox_file("la-886")) as db:
        return {message_id: next(e["resource"]["identifier"][0]["value"] for e in orjson.loads(body)["entry"]
                                 if e["resource"]["resourceType"] == "Patient")
                for message_id, body in db.execute("SELECT message_id, body FROM outbox")}


def _remembered(exchange: Path) -> dict[str, str]:
    """The change store: each placement fact's key with the message id it was sent as."""
    with sqlite3.connect(ExchangeFolder(exchange).adapter_state_file("la-886")) as db:
        return dict(db.execute("SELECT key, message_id FROM sent"))


def refusal_names_its_row_and_nothing_else_is_lost(out: dict, report: dict, exchange: Path) -> None:
    """The property: the one invalid message is refused with a finding naming its child's episode row (row 2),
    it is neither queued nor remembered, and every other message is queued, remembered under its own id and
    accepted by the exchange's router."""
    refused = [p for p in report["problems"] if p["code"] == "message-invalid"]
    assert [(p["file"], p["row"]) for p in refused] == [("episodes.csv", 2)], "the refusal names another row"
    queued = _outbox(exchange)
    assert BROKEN_CHILD not in queued.values(), "the invalid message was queued"
    assert len(queued) == 2 * (CHILDREN - 1) == out["sent"]
    remembered = _remembered(exchange)
    assert not any(f"|{BROKEN_CHILD}|" in key for key in remembered), "the refused message was remembered as sent"
    for key, message_id in remembered.items():
        assert queued.get(message_id) == key.split("|")[1], "a fact was remembered under another message's id"
    assert routed(exchange) == len(queued)


def test_a_run_in_worker_processes_queues_refuses_and_sends_what_one_process_does(tmp_path, exchange,
                                                                                   monkeypatch):
    twin = tmp_path / "twin-exchange"
    shutil.copytree(exchange, twin)  # the same directory and keys, nothing sent yet
    (tmp_path / "one").mkdir()
    alone, alone_report = _run(twin, tmp_path / "one", parallel=False, monkeypatch=monkeypatch)
    (tmp_path / "many").mkdir()
    shared, shared_report = _run(exchange, tmp_path / "many", parallel=True, monkeypatch=monkeypatch)
    assert shared == alone and shared_report == alone_report
    assert _outbox(exchange) == _outbox(twin)  # the same ids (derived from the facts) for the same children
    refusal_names_its_row_and_nothing_else_is_lost(shared, shared_report, exchange)


def test_the_check_catches_workers_that_hand_back_results_out_of_order(tmp_path, exchange, monkeypatch):
    real = workers.Workers.map

    def swapped(self, step, items):  # a pool that returns the first two results the wrong way round
        results = list(real(self, step, items))
        results[:2] = results[1::-1]
        return iter(results)

    monkeypatch.setattr(workers.Workers, "map", swapped)
    out, report = _run(exchange, tmp_path, parallel=True, monkeypatch=monkeypatch)
    with pytest.raises(AssertionError, match="names another row|remembered"):
        refusal_names_its_row_and_nothing_else_is_lost(out, report, exchange)
