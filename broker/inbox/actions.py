"""What an officer does with a message, sent back through the exchange as signed standard messages: read (sent
by itself the first time a person opens a message), acknowledged, a decision, a request for more information.

The messages go the way every message of the participant goes: into its outbox (validated, kept until the
exchange confirms them), signed with its key when sent, then sent at once on its transport. If the exchange
cannot be reached they wait in the outbox and leave with the next action or `sgx node resend`."""

from __future__ import annotations

import threading
from collections.abc import Callable

from broker.outbox import Outbox
from broker.receipts import expects_acknowledgement
from broker.transport import Transport
from standard import compose
from standard.errors import BrokerError


class Responder:
    """Sends a participant's responses: composes each, queues it in the outbox and drains the outbox."""

    def __init__(self, outbox: Outbox, open_transport: Callable[[], Transport]):
        self.outbox = outbox
        self._open_transport = open_transport
        self._transport: Transport | None = None
        self._lock = threading.Lock()  # one outbox, one transport: the web server's threads take turns

    @property
    def participant(self) -> str:
        return self.outbox.participant_id

    answerable = staticmethod(expects_acknowledgement)  # what the inbox offers to acknowledge, decide and ask on

    def read(self, message_id: str) -> bool:
        return self._send(compose.acknowledgement(message_id, self.participant, "read"))

    def acknowledge(self, message_id: str, who: str) -> bool:
        return self._send(compose.acknowledgement(message_id, self.participant, "received", details=[
            ("information", "informational", "received", f"Acknowledged by {who}.")]))

    def decide(self, message_id: str, decision_code: str, text: str | None) -> bool:
        return self._send(compose.decision_recorded(message_id, self.participant, decision_code, text=text or None))

    def ask(self, message_id: str, question: str) -> bool:
        return self._send(compose.information_requested(message_id, self.participant, question))

    def _send(self, message: dict) -> bool:
        """Queue the message and send what waits; True if the exchange took it now, False if it waits."""
        with self._lock:
            message_id = self.outbox.add(message)
            try:
                if self._transport is None:
                    self._transport = self._open_transport()
                self.outbox.drain(self._transport)
            except BrokerError:
                self._transport = None  # opened again for the next action; the message waits in the outbox
                return False
            return self.outbox.status(message_id).sent_at is not None
