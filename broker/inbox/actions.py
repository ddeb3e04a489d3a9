"""What an officer does with a message, sent back through the exchange as signed standard messages: read (sent
by itself the first time a person opens a message), acknowledged, a decision, a request for more information.

The messages go the way every message of the participant goes: into its outbox (validated, kept until the
exchange confirms them), signed with its key when sent. A sender thread of its own sends them, so that no page
waits on the exchange: opening a message queues its read receipt and answers at once; an action waits a few
seconds to say whether the exchange took it. If the exchange cannot be reached, what waits is tried again every
half minute, and leaves as soon as the exchange is back."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from broker.outbox import Outbox
from broker.receipts import expects_acknowledgement
from broker.transport import Transport
from standard import compose
from standard.errors import BrokerError

log = logging.getLogger("sgx.inbox")


class Responder:
    """Sends a participant's responses: composes each and queues it in the outbox; its sender thread sends."""

    def __init__(self, outbox: Outbox, open_transport: Callable[[], Transport], *, wait_seconds: float = 5.0,
                 retry_seconds: float = 30.0):
        """`wait_seconds`: how long an action waits to say whether the exchange took it (it is sent regardless);
        `retry_seconds`: how often what waits is tried again while the exchange cannot be reached."""
        self.outbox = outbox
        self._open_transport = open_transport
        self.wait_seconds, self.retry_seconds = wait_seconds, retry_seconds
        self._lock = threading.Lock()  # the web server's threads share the outbox's connection: they take turns
        self._changed = threading.Condition()
        self._queued = 0  # messages queued so far; the sender has tried to send the first `_tried` of them
        self._tried = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def participant(self) -> str:
        return self.outbox.participant_id

    answerable = staticmethod(expects_acknowledgement)  # what the inbox offers to acknowledge, decide and ask on

    def read(self, message_id: str) -> None:
        """Queue the read receipt; the page that opened the message does not wait for it to be sent."""
        self._send(compose.acknowledgement(message_id, self.participant, "read"), wait=False)

    def acknowledge(self, message_id: str, who: str) -> bool:
        return self._send(compose.acknowledgement(message_id, self.participant, "received", details=[
            ("information", "informational", "received", f"Acknowledged by {who}.")]))

    def decide(self, message_id: str, decision_code: str, text: str | None) -> bool:
        return self._send(compose.decision_recorded(message_id, self.participant, decision_code, text=text or None))

    def ask(self, message_id: str, question: str) -> bool:
        return self._send(compose.information_requested(message_id, self.participant, question))

    def _send(self, message: dict, *, wait: bool = True) -> bool:
        """Queue the message for the sender thread; True if the exchange took it within `wait_seconds`, False if
        it waits in the outbox (or was not waited for)."""
        with self._lock:
            message_id = self.outbox.add(message)
        with self._changed:
            self._queued += 1
            mine = self._queued
            self._start()
            self._changed.notify_all()
            if not wait or not self._changed.wait_for(lambda: self._tried >= mine, timeout=self.wait_seconds):
                return False
        with self._lock:
            return self.outbox.status(message_id).sent_at is not None

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the sender has tried to send everything queued so far; False if it had not within
        `timeout` seconds."""
        with self._changed:
            mine = self._queued
            return self._changed.wait_for(lambda: self._tried >= mine, timeout=timeout)

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"sgx-inbox-sender-{self.participant}",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        # A connection of its own: the web threads keep theirs, and a transaction of one never takes in the other.
        outbox = Outbox(self.outbox.path, self.participant, self.outbox.key)
        transport: Transport | None = None
        try:
            while True:
                with self._changed:
                    self._changed.wait_for(lambda: self._closed or self._queued > self._tried,
                                           timeout=self.retry_seconds)
                    if self._closed:
                        return
                    upto = self._queued
                try:
                    if outbox.pending():
                        transport = transport or self._open_transport()
                        if outbox.send_waiting(transport).interrupted:
                            raise BrokerError("the exchange became unreachable while sending")
                except BrokerError as exc:
                    log.warning("the inbox's answers wait in the outbox: %s; tried again in %.0f s", exc,
                                self.retry_seconds)
                    if transport is not None:
                        transport.close()
                    transport = None
                with self._changed:
                    self._tried = upto
                    self._changed.notify_all()
        finally:
            if transport is not None:
                transport.close()
            outbox.close()

    def close(self) -> None:
        """Stop the sender thread (what it had not sent waits in the outbox)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
