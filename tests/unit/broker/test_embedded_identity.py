"""The embedded transport never passes on an identity a publisher claims for its connection."""

from __future__ import annotations

from broker.transport import INGRESS, Envelope
from broker.transport.base import CONNECTION_USER
from broker.transport.embedded import EmbeddedTransport


def test_a_publishers_claim_to_a_connection_user_is_dropped(tmp_path):
    transport = EmbeddedTransport(tmp_path / "queues.db")
    transport.declare(INGRESS)
    transport.publish(INGRESS, Envelope("m-1", b"{}", {CONNECTION_USER: "la-371", "sgx-sender": "la-886"}))
    got = transport.get(INGRESS, timeout=1)
    assert CONNECTION_USER not in got.envelope.headers
    assert got.envelope.headers["sgx-sender"] == "la-886"  # the claim the router then checks against the signature
