"""The outbox signs a message as it queues it (in worker processes, for a large run) and sends that signature only
while it is fresh: a message that waited is signed afresh, so the exchange never sees an old issued-at. Bytes
given to the outbox are checked for repeated keys; only what the outbox serialised itself skips that check."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from broker import outbox as outbox_module
from broker import signing
from broker.router import SIGNATURE
from broker.transport import INGRESS
from sgx import demo as scenario
from sgx.demo import LODGE, demo_network
from standard.errors import MessageInvalid
from standard.validator import Validator

TODAY = datetime.now(UTC).date().isoformat()


def _issued_at(envelope) -> int:
    return signing.read_header(envelope.headers[SIGNATURE])["iat"]


def sent_signature_is_fresh(tmp_path, later: timedelta) -> None:
    """The property: sent `later` after it was queued, a message's signature was issued when it was sent (within
    the minute the outbox allows), and it verifies against the sender's key."""
    network = demo_network(tmp_path)
    outbox, transport = network.outbox("la-886"), network.transport()
    outbox.add(scenario.placement("la-886", 1, LODGE, TODAY))
    sending = datetime.now(UTC) + later
    assert outbox.drain(transport, now=sending) == 1
    envelope = transport.get(INGRESS).envelope
    assert abs(_issued_at(envelope) - sending.timestamp()) <= outbox_module.PRESIGNED_FOR_SECONDS, \
        "the signature was issued long before the message was sent"
    header = signing.verify(envelope.body, envelope.headers[SIGNATURE], network.directory.public_key_for,
                            expected_sender="la-886", now=sending)
    assert header.message_id == envelope.message_id


@pytest.mark.parametrize("later", [timedelta(0), timedelta(minutes=10), timedelta(days=3)],
                         ids=["sent-at-once", "ten-minutes-later", "three-days-later"])
def test_a_message_goes_with_a_signature_issued_when_it_is_sent(tmp_path, later):
    sent_signature_is_fresh(tmp_path, later)


def test_the_check_catches_an_outbox_that_sends_the_signature_made_when_queueing_however_old(tmp_path, monkeypatch):
    monkeypatch.setattr(outbox_module, "_fresh", lambda signature, signed_at, now: signature is not None)
    with pytest.raises(AssertionError, match="issued long before"):
        sent_signature_is_fresh(tmp_path, timedelta(minutes=10))


def test_a_message_sent_at_once_goes_with_the_signature_made_when_it_was_queued(tmp_path):
    network = demo_network(tmp_path)
    outbox, transport = network.outbox("la-886"), network.transport()
    message_id = outbox.add(scenario.placement("la-886", 1, LODGE, TODAY))
    stored = outbox.db.execute("SELECT signature FROM outbox WHERE message_id = ?", (message_id,)).fetchone()[0]
    outbox.drain(transport)
    assert transport.get(INGRESS).envelope.headers[SIGNATURE] == stored  # signed once, not twice


def test_a_message_queued_again_drops_the_signature_it_was_queued_with(tmp_path):
    network = demo_network(tmp_path)
    outbox, transport = network.outbox("la-886"), network.transport()
    message_id = outbox.add(scenario.placement("la-886", 1, LODGE, TODAY))
    outbox.drain(transport)
    assert outbox.requeue_unanswered(message_id)
    assert outbox.db.execute("SELECT signature FROM outbox WHERE message_id = ?", (message_id,)).fetchone() == (None,)
    assert outbox.drain(transport) == 1  # signed afresh as it goes


def test_an_outbox_from_before_signing_on_queueing_is_brought_up_to_date_and_still_sends(tmp_path):
    network = demo_network(tmp_path)
    body = orjson.dumps(scenario.placement("la-886", 1, LODGE, TODAY))
    path = network.outbox_file("la-886")
    path.parent.mkdir(exist_ok=True)
    with sqlite3.connect(path) as db:  # the outbox as it was made before acknowledgements and signing on queueing
        db.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT UNIQUE NOT NULL, "
                   "event TEXT NOT NULL, body BLOB NOT NULL, sent_at TEXT)")
        db.execute("INSERT INTO outbox (message_id, event, body) VALUES (?, 'placement-started', ?)",
                   (orjson.loads(body)["identifier"]["value"], body))
    outbox, transport = network.outbox("la-886"), network.transport()
    assert outbox.pending() == 1
    assert outbox.drain(transport) == 1
    envelope = transport.get(INGRESS).envelope
    signing.verify(envelope.body, envelope.headers[SIGNATURE], network.directory.public_key_for,
                   expected_sender="la-886")


def duplicate_keys_in_bytes_are_refused(tmp_path) -> None:
    """The property: bytes handed to the outbox that repeat a key are refused, as the router would refuse them."""
    outbox = demo_network(tmp_path).outbox("la-886")
    message = scenario.placement("la-886", 1, LODGE, TODAY)
    body = orjson.dumps(message)
    repeated = body.replace(b'"type":"message"', b'"type":"message","type":"message"', 1)
    assert repeated != body
    with pytest.raises(MessageInvalid) as refused:
        outbox.add(repeated)
    assert refused.value.findings[0].code == "json-duplicate-key"
    assert outbox.add(message)  # the same message as a dict: serialised by the outbox, keys once each


def test_bytes_with_a_repeated_key_are_refused_by_the_outbox(tmp_path):
    duplicate_keys_in_bytes_are_refused(tmp_path)


def test_the_check_catches_an_outbox_that_trusts_bytes_it_was_given(tmp_path, monkeypatch):
    real = Validator.validate
    monkeypatch.setattr(Validator, "validate", lambda self, message, keys_unique=False: real(self, message,
                                                                                              keys_unique=True))
    with pytest.raises(BaseException, match="DID NOT RAISE"):
        duplicate_keys_in_bytes_are_refused(tmp_path)
