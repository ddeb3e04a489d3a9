"""What an officer does with a message, sent back through the exchange as signed standard messages: read (sent
by itself the first time a person opens a message), acknowledged, a decision, a request for more information.

The messages go the way every message of the participant goes: into its outbox (validated, kept until the
exchange confirms them), signed with its key when sent. A sender thread of its own sends them, so that no page
waits on the exchange: opening a message queues its read receipt and answers at once; an action waits a few
seconds to say whether the exchange took it. What could not go (the exchange unreachable, or anything else that
went wrong while sending) is tried again every half minute, from the moment the inbox starts, so answers left
waiting before a restart go too."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from broker.outbox import Outbox
from broker.receipts import expects_acknowledgement
from broker.transport import Transport
from standard import compose
from standard.errors import BrokerError, TransportUnavailable

log = logging.getLogger("sgx.inbox")
# What the inbox sends, and so what its sender sends: the participant's other messages (an adapter's placements,
# say) share the outbox and are sent by what queued them, never twice over by the inbox as well.
ANSWER_EVENTS = ("acknowledgement", "decision-recorded", "information-request")


class Responder:
    """Sends a participant's responses: composes each and queues it in the outbox; its sender thread sends."""

    def __init__(self, outbox: Outbox, open_transport: Callable[[], Transport], *, wait_seconds: float = 5.0,
                 retry_seconds: float = 30.0):
        """`wait_seconds`: how long an action waits to say whether the exchange took it (it is sent regardless);
        `retry_seconds`: how often what waits is tried again."""
        self.outbox = outbox
        self._open_transport = open_transport
        self.wait_seconds, self.retry_seconds = wait_seconds, retry_seconds
        # The web server's threads share the outbox's connection, and a transaction on it takes in any statement
        # another thread runs meanwhile: they take turns (the Sent pages too, see `sender_outbox` in app.py).
        self.lock = threading.Lock()
        self._changed = threading.Condition()
        # Messages queued so far; the sender has tried to send the first `_tried` of them. It starts one behind so
        # that the sender's first pass, straight away, is a try of whatever waits from before.
        self._queued = 0
        self._tried = -1
        self._closed = False
        self._thread: threading.Thread | None = None
        self._start()  # at once: what waited when the inbox last stopped goes without anyone acting

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
        with self.lock:
            message_id = self.outbox.add(message)
        with self._changed:
            self._queued += 1
            mine = self._queued
            self._start()
            self._changed.notify_all()
            if not wait or not self._changed.wait_for(lambda: self._tried >= mine, timeout=self.wait_seconds):
                return False
        with self.lock:
            return self.outbox.status(message_id).sent_at is not None

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the sender has tried to send everything queued so far; False if it had not within
        `timeout` seconds."""
        with self._changed:
            mine = self._queued
            return self._changed.wait_for(lambda: self._tried >= mine, timeout=timeout)

    def _start(self) -> None:
        """Start the sender thread, or a new one if the last has stopped."""
        if self._closed or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._run, name=f"sgx-inbox-sender-{self.participant}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        outbox: Outbox | None = None
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
                    # A connection of its own: a web thread's transaction never takes in what this one writes.
                    outbox = outbox or Outbox(self.outbox.path, self.participant, self.outbox.key)
                    if outbox.pending(ANSWER_EVENTS):
                        transport = transport or self._open_transport()
                        if outbox.send_waiting(transport, events=ANSWER_EVENTS).interrupted:
                            raise TransportUnavailable("the exchange became unreachable while sending")
                except Exception as exc:  # noqa: BLE001 - whatever it was, the answers wait and are tried again
                    # The kind of failure and its own words (a connection or database error): never a message.
                    log.warning("the inbox's answers wait in the outbox (%s: %s); tried again in %.0f s",
                                type(exc).__name__, exc, self.retry_seconds)
                    if transport is not None:
                        _close_quietly(transport)
                    transport = None
                    if outbox is not None and not isinstance(exc, BrokerError):
                        _close_quietly(outbox)  # a database fault: open it afresh next time
                        outbox = None
                with self._changed:
                    self._tried = upto
                    self._changed.notify_all()
        finally:
            if transport is not None:
                _close_quietly(transport)
            if outbox is not None:
                _close_quietly(outbox)

    def close(self) -> None:
        """Stop the sender thread (what it had not sent waits in the outbox)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _close_quietly(resource: Transport | Outbox) -> None:
    try:
        resource.close()
    except Exception:  # noqa: BLE001 - closing what already failed; nothing more to do with it
        log.debug("closing %s after a failure failed too", type(resource).__name__)

