"""Reliability on a real RabbitMQ: broker crashes, consumer crashes and outages lose nothing and
apply nothing twice (the Jepsen-style oracle: lost = 0, duplicate side effects = 0)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from broker.keys import SigningKey
from broker.outbox import Outbox
from broker.rabbitmq.server import RabbitNode
from broker.transport import INGRESS, Envelope
from broker.transport.rabbitmq import RabbitTransport
from sgx.errors import RecoverableBrokerError
from standard import compose as c
from tests.unit.adapters.conftest import sgx, summary
from tests.unit.adapters.test_adapt_ssda903 import EPISODES, HEADER


@pytest.fixture()
def node(tmp_path):
    n = RabbitNode(tmp_path / "rabbitmq")
    n.start()
    admin = RabbitTransport(n.url())
    admin.declare(INGRESS)
    admin.close()
    # RabbitMQ 3.10.8 (Debian) loses a quorum queue whose declaration is killed within about a second
    # (its Raft log is still only in the WAL and recovery drops it; the queue then never elects a leader).
    # Queues are declared by `sgx broker setup` long before traffic; let this one settle likewise.
    time.sleep(3)
    yield n
    n.stop()


class Receiver:
    """Consumes ingress, applies each message (an insert keyed by message id), then acks."""

    def __init__(self, url: str, db_path):
        self.url, self.db_path = url, db_path
        self.stop = threading.Event()
        self.deliveries = 0
        db = sqlite3.connect(db_path)
        db.execute("CREATE TABLE IF NOT EXISTS applied (message_id TEXT PRIMARY KEY, times INTEGER NOT NULL)")
        db.commit()
        db.close()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        db = sqlite3.connect(self.db_path)
        transport = RabbitTransport(self.url, prefetch=200, publish_attempts=1, retry_delay=0)
        while not self.stop.is_set():
            try:
                delivery = transport.get(INGRESS, timeout=0.2)
            except RecoverableBrokerError:
                time.sleep(0.5)
                continue
            if delivery is None:
                continue
            self.deliveries += 1
            # the side effect: counted so that applying twice would show
            db.execute("INSERT INTO applied (message_id, times) VALUES (?, 1) ON CONFLICT (message_id) "
                       "DO UPDATE SET times = times + 1 WHERE 0", (delivery.envelope.message_id,))
            db.commit()
            delivery.ack()
        transport.close()

    def applied(self) -> dict[str, int]:
        db = sqlite3.connect(self.db_path)
        return dict(db.execute("SELECT message_id, times FROM applied"))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def _message(sender: str) -> dict:
    b = c.MessageBuilder("escalation", sender)
    setting = b.add(c.setting("SC900001", "Example Lodge"))
    b.add(c.escalation("unresolved-concern", setting, sender, c.timestamp()), focus=True)
    return b.build()


def test_three_broker_kills_during_10000_confirmed_publishes_lose_nothing_and_apply_nothing_twice(node, tmp_path):
    total = 10_000
    outbox = Outbox(tmp_path / "outbox.db", "la-886", SigningKey.generate("la-886-1"))
    template = _message("la-886")
    for _ in range(total):
        template["identifier"]["value"] = f"urn:uuid:{uuid.uuid4()}"
        outbox.add(template)
    receiver = Receiver(node.url(), tmp_path / "applied.db")
    transport = RabbitTransport(node.url(), publish_attempts=2, retry_delay=0.5)
    kills_at = [2_500, 5_000, 7_500]
    confirmed = 0
    deadline = time.monotonic() + 600
    while outbox.pending() and time.monotonic() < deadline:
        confirmed += outbox.drain(transport, batch=250, limit=250)
        if kills_at and confirmed >= kills_at[0]:
            kills_at.pop(0)
            node.kill()
            time.sleep(0.5)
            node.start()
        elif outbox.pending() and transport._ch is None:
            time.sleep(0.5)  # the broker is restarting: the outbox keeps the rest
    assert outbox.pending() == 0 and not kills_at
    sent_ids = {row[0] for row in outbox.db.execute("SELECT message_id FROM outbox")}
    while time.monotonic() < deadline and len(receiver.applied()) < total:
        time.sleep(0.5)
    receiver.close()
    applied = receiver.applied()
    lost = sent_ids - set(applied)
    assert not lost, f"{len(lost)} confirmed messages lost"
    assert max(applied.values()) == 1  # no side effect applied twice, whatever was redelivered
    assert set(applied) == sent_ids


CRASHING_CONSUMER = textwrap.dedent("""
    import os, signal, sqlite3, sys
    from broker.transport import INGRESS
    from broker.transport.rabbitmq import RabbitTransport
    transport = RabbitTransport(sys.argv[1], prefetch=1)
    delivery = transport.get(INGRESS, timeout=10)
    db = sqlite3.connect(sys.argv[2])
    db.execute("INSERT OR IGNORE INTO applied (message_id, times) VALUES (?, 1)", (delivery.envelope.message_id,))
    db.commit()
    os.kill(os.getpid(), signal.SIGKILL)  # stored, not acked
""")


def test_a_consumer_killed_between_storing_and_acking_gets_it_again_and_stores_it_once(node, tmp_path):
    db_path = tmp_path / "applied.db"
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE applied (message_id TEXT PRIMARY KEY, times INTEGER NOT NULL)")
    db.commit()
    RabbitTransport(node.url()).publish(INGRESS, Envelope("urn:uuid:crash-1", b"{}", {}))
    crashed = subprocess.run([sys.executable, "-c", CRASHING_CONSUMER, node.url(), str(db_path)], timeout=60,
                             check=False)
    assert crashed.returncode == -9
    transport = RabbitTransport(node.url())
    again = transport.get(INGRESS, timeout=10)
    assert again.envelope.message_id == "urn:uuid:crash-1" and again.redelivered
    db.execute("INSERT OR IGNORE INTO applied (message_id, times) VALUES (?, 1)", (again.envelope.message_id,))
    db.commit()
    again.ack()
    assert transport.get(INGRESS, timeout=1) is None
    assert db.execute("SELECT COUNT(*) FROM applied").fetchone()[0] == 1


def test_with_the_broker_down_the_outbox_keeps_messages_and_delivers_them_when_it_is_back(node, tmp_path):
    outbox = Outbox(tmp_path / "outbox.db", "la-886", SigningKey.generate("la-886-1"))
    transport = RabbitTransport(node.url(), publish_attempts=1, retry_delay=0)
    node.kill()
    ids = {outbox.add(_message("la-886")) for _ in range(20)}
    assert outbox.drain(transport) == 0
    assert outbox.pending() == 20
    node.start()
    deadline = time.monotonic() + 60
    while outbox.pending() and time.monotonic() < deadline:  # the queue's leader may take a moment to return
        outbox.drain(transport)
        time.sleep(0.2)
    assert outbox.pending() == 0
    consumer = RabbitTransport(node.url())
    got = set()
    while (d := consumer.get(INGRESS, timeout=2)) is not None:
        got.add(d.envelope.message_id)
        d.ack()
    assert got == ids


def test_an_adapter_run_with_the_broker_down_queues_and_a_later_run_delivers_once(node, tmp_path):
    root = tmp_path / "ex"
    sgx("directory", "init", "--dir", root)
    for pid in ("la-886", "la-371", "router"):
        sgx("directory", "keygen", "--dir", root, "--participant", pid)
    sgx("directory", "add-setting", "--dir", root, "--urn", "SC900001", "--name", "Example Lodge", "--host-la",
        "la-371")
    sgx("directory", "sign", "--dir", root)
    header, episodes = tmp_path / "header.csv", tmp_path / "episodes.csv"
    header.write_text(HEADER)
    episodes.write_text(EPISODES + "C1,01/02/2026,S,C2,N1,K2,PR4,,,,,,SC900001\n"
                                   "C2,01/02/2026,S,C2,N1,K2,PR4,20/02/2026,X1,ALLEG,,,SC900001\n")
    adapt = ("adapt", "ssda903", "--dir", root, "--la", "886", "--transport", node.url(), header, episodes)
    node.kill()
    down = summary(*adapt)
    assert down["messages_built"] == {"placement-started": 2, "placement-ended": 1}
    assert down["sent"] == 0 and down["waiting"] == 3
    node.start()
    deadline = time.monotonic() + 60
    later = summary(*adapt)
    while later["waiting"] and time.monotonic() < deadline:  # the queue's leader may take a moment to return
        time.sleep(0.5)
        later = summary(*adapt)
    assert later["messages_built"] == {} and later["unchanged"] == 3 and later["waiting"] == 0
    consumer = RabbitTransport(node.url())
    got = []
    while (d := consumer.get(INGRESS, timeout=2)) is not None:
        got.append(d.envelope.message_id)
        d.ack()
    assert len(got) == 3 and len(set(got)) == 3
