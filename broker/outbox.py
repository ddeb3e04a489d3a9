"""A participant's durable outbox: messages wait here until the exchange has confirmed them.

Each message is signed as it is prepared for the queue, and that signature goes with it only if it is sent within
a minute; a message that waited longer (through a broker outage, say) is signed afresh when it is sent, so it still
carries a fresh issued-at. Each is marked sent only after the transport confirms it; if the process dies between
the two, the message is sent again and the exchange drops the duplicate by its id.

The outbox also keeps what the exchange answered (`record_acknowledgements`, fed from the sender's inbox):
each message's state (queued, sent, accepted, duplicate, refused, failed) and one outcome per recipient
(delivered to its queue, or failed and why). A refused or failed message stays in the outbox and can be
sent again (`resend`) once the cause is fixed; it is signed afresh then.

It keeps, too, what each recipient did with a message (`record_responses`, fed from the sender's inbox: the
responses the exchange routed back): its node stored it, a person read it, a person acknowledged it, a decision was
recorded, more information was asked for, each with its time. `accountable` gives those steps per recipient with
the acknowledgement deadline the catalogue sets for the event, and whether it has passed (overdue).
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import orjson

from broker import db as sqlite_db
from broker import signing
from broker.keys import SigningKey
from broker.router import SENDER, SIGNATURE
from broker.transport import INGRESS, Envelope, Transport
from broker.workers import Workers
from standard import catalogue as cat
from standard import terminology as term
from standard.errors import MessageInvalid, RecoverableBrokerError
from standard.validator import Validator, event_of

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT UNIQUE NOT NULL,
    event TEXT NOT NULL, body BLOB NOT NULL, sent_at TEXT);
CREATE TABLE IF NOT EXISTS outcomes (message_id TEXT NOT NULL, recipient TEXT NOT NULL, outcome TEXT NOT NULL,
    detail TEXT, at TEXT NOT NULL, PRIMARY KEY (message_id, recipient));
CREATE TABLE IF NOT EXISTS ack_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), inbox_row INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS progress (message_id TEXT NOT NULL, recipient TEXT NOT NULL, step TEXT NOT NULL,
    at TEXT NOT NULL, detail TEXT, response_id TEXT, PRIMARY KEY (message_id, recipient, step));
CREATE TABLE IF NOT EXISTS response_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), inbox_row INTEGER NOT NULL);
"""
# What is waiting to be sent, so that each batch of a drain reads only its own rows: without it every batch scans the
# rows already sent, and a run queueing 140,000 messages spent most of its time there.
_WAITING_INDEX = "CREATE INDEX IF NOT EXISTS outbox_waiting ON outbox (seq) WHERE sent_at IS NULL"
# What was refused, for the adapters' look for refusals since lifted at the end of every run (else a full read).
_REFUSED_INDEX = "CREATE INDEX IF NOT EXISTS outbox_refused ON outbox (seq) WHERE state = 'refused'"
# A message is signed as it is prepared for the queue, and that signature is sent if the message goes within this
# many seconds: a run that queues and sends at once signs each message once (in its worker processes, for a large
# run). A message sent later is signed afresh.
PRESIGNED_FOR_SECONDS = 60
# A message sent again is signed afresh: its signature from when it was queued is dropped.
_QUEUE_AGAIN = "UPDATE outbox SET sent_at = NULL, state = 'queued', signature = NULL, transient = NULL"
# A message as the outbox takes it: a Bundle, its bytes, or a recipe that builds the Bundle when called.
Message = dict | bytes | Callable[[], dict]
# What a recipient did with a message, in order; a later step implies the earlier ones it names.
STEPS = ("delivered", "read", "acknowledged", "decided", "asked")
_ACK_STEP = {"delivered": "delivered", "read": "read", "received": "acknowledged",
             "accepted-for-action": "acknowledged"}
_IMPLIES = {"read": ("delivered",), "acknowledged": ("delivered", "read"), "decided": ("delivered", "read"),
            "asked": ("delivered", "read")}


@dataclass
class RecipientState:
    """One recipient of a sent message, as the sender is accountable for it: when the exchange accepted it for
    this recipient, and when (if yet) its node stored it, a person read it, acknowledged it and recorded a
    decision; the deadline for the acknowledgement and whether it has passed unacknowledged."""

    recipient: str
    outcome: str | None  # delivered (to its queue) | failed | None (no answer from the exchange yet)
    accepted_at: str | None
    steps: dict[str, tuple[str, str | None]]  # step -> (at, detail)
    due: datetime | None
    overdue: bool

    @property
    def latest(self) -> str:
        """The furthest step reached, as a word for lists: decided, acknowledged, read, delivered, accepted..."""
        for step in ("decided", "acknowledged", "read", "delivered"):
            if step in self.steps:
                return step
        return "failed" if self.outcome == "failed" else "accepted" if self.accepted_at else "sent"
_RECIPIENT = re.compile(r"^recipient (\S+): ")


# Refusals that a change elsewhere lifts (a recipient given its key or its queue) come with the FHIR issue type
# `transient` on every issue of the exchange's acknowledgement: a message refused so is sent again by the adapters'
# next run (and by `sgx node resend` at any time). Refusals for the message's own fault (a wrong owner, a child it
# may not name, a sender not entitled) are `invalid`, final until the sender corrects it. Refusals recorded before
# the outbox kept the issue type are told apart by their reason's words, as the exchange wrote them then.
EARLIER_RECOVERABLE_REFUSALS = ("no-recipients%not onboarded yet (no key)%",  # LIKE
                                "no-recipients%not reachable: %(no queue on the exchange)%")


class Drained(NamedTuple):
    sent: int  # messages the transport confirmed
    interrupted: bool  # the transport became unavailable part way: the rest waits in the outbox


@dataclass
class Status:
    """What the outbox knows of one message: its state, when it was last sent, why it was refused or failed, and
    the outcome for each recipient (recipient -> (delivered | failed, detail))."""

    message_id: str
    event: str
    state: str
    sent_at: str | None
    reason: str | None
    outcomes: dict[str, tuple[str, str | None]] = field(default_factory=dict)


class Outbox:
    def __init__(self, path: Path | str, participant_id: str, key: SigningKey, *, validator: Validator | None = None,
                 processes: int = 1):
        """`processes`: how many processes validate and sign messages (see `broker.workers`); the default, one,
        does it in this process. A run queueing thousands of messages gives it the cores it has."""
        self.participant_id, self.key = participant_id, key
        self.path = path
        self._validator = validator
        self._processes = processes
        self._workers: Workers | None = None
        self.db = sqlite_db.connect(path, page_size=sqlite_db.MESSAGE_PAGE_SIZE)
        self.db.executescript(_SCHEMA)
        if not {"state", "signature", "transient"} <= self._columns():
            self._bring_up_to_date()
        self.db.execute(_WAITING_INDEX)
        self.db.execute(_REFUSED_INDEX)

    def _columns(self) -> set[str]:
        return {row[1] for row in self.db.execute("PRAGMA table_info(outbox)")}

    def _bring_up_to_date(self) -> None:
        """Add what an outbox made by an earlier version lacks. The columns are read again under the write lock:
        another process (a node, an adapter run) may be opening the same outbox at the same moment."""
        with sqlite_db.transaction(self.db):
            columns = self._columns()
            if "state" not in columns:  # from before acknowledgements were kept
                self.db.execute("ALTER TABLE outbox ADD COLUMN state TEXT")
                self.db.execute("ALTER TABLE outbox ADD COLUMN reason TEXT")
                self.db.execute("UPDATE outbox SET state = CASE WHEN sent_at IS NULL THEN 'queued' ELSE 'sent' END")
            if "signature" not in columns:  # from before messages were signed as they were queued
                self.db.execute("ALTER TABLE outbox ADD COLUMN signature TEXT")
                self.db.execute("ALTER TABLE outbox ADD COLUMN signed_at INTEGER")
            if "transient" not in columns:  # from before a refusal's issue type was kept (NULL: not known)
                self.db.execute("ALTER TABLE outbox ADD COLUMN transient INTEGER")

    @property
    def validator(self) -> Validator:
        """The validator messages pass before they are queued, made on first use: an outbox opened only to read
        (node status, receipts, the inbox's Sent pages) does not pay for building one."""
        if self._validator is None:
            self._validator = Validator()
        return self._validator

    @property
    def workers(self) -> Workers:
        if self._workers is None:
            self._workers = Workers(self._processes, {"validator": self.validator, "key": self.key,
                                                      "sender": self.participant_id})
        return self._workers

    def close(self) -> None:
        """Stop the worker processes, if any ran, and close the database."""
        if self._workers is not None:
            self._workers.close()
        self.db.close()

    def add(self, message: dict | bytes) -> str:
        """Validate and queue a message; returns its id. Adding the same message id again is a no-op.

        Raises:
            MessageInvalid: the message does not pass the validator; nothing was queued.
        """
        ids, refused = self.add_many([message])
        if refused:
            raise refused[0][1]
        return ids[0]

    def add_many(self, messages: Sequence[Message]) -> tuple[list[str], list[tuple[int, MessageInvalid]]]:
        """Validate and queue many messages in one transaction (one disk sync for the lot). Returns the ids
        queued and, for each message refused, its index and the MessageInvalid error; the others still go."""
        if not messages:
            return [], []
        return next(self.add_batches(messages, batch=len(messages)))

    def add_batches(self, messages: Sequence[Message], *, batch: int
                    ) -> Iterator[tuple[list[str], list[tuple[int, MessageInvalid]]]]:
        """`add_many` for each run of `batch` messages in turn, one transaction each, yielding each batch's result
        once it is committed. A message may be given as a recipe (a function that builds it): with worker
        processes, the recipes are built, serialised and validated there, and later batches are prepared while
        an earlier one is written."""
        prepared = self.workers.map(_prepare, messages)
        for start in range(0, len(messages), batch):
            rows, refused = [], []
            for i in range(min(batch, len(messages) - start)):
                body, message_id, event, signature, issued, errors = next(prepared)
                if errors:
                    refused.append((i, MessageInvalid(errors)))
                else:
                    rows.append((message_id, event, body, signature, issued))
            with sqlite_db.transaction(self.db):
                self.db.executemany("INSERT OR IGNORE INTO outbox (message_id, event, body, state, signature, "
                                    "signed_at) VALUES (?, ?, ?, 'queued', ?, ?)", rows)
            yield [r[0] for r in rows], refused

    def pending(self, events: Sequence[str] | None = None) -> int:
        """Messages waiting to be sent (of these events only, if given)."""
        only, params = _of_events(events)
        return self.db.execute(f"SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL {only}",  # noqa: S608
                               params).fetchone()[0]

    def drain(self, transport: Transport, *, batch: int = 100, limit: int | None = None,
              now: datetime | None = None) -> int:
        """Send what is waiting (at most `limit`, the oldest first), in batches; returns how many were confirmed.
        Stops quietly when the transport is unavailable: the rest waits for the next drain."""
        return self.send_waiting(transport, batch=batch, limit=limit, now=now).sent

    def send_waiting(self, transport: Transport, *, batch: int = 100, limit: int | None = None,
                     now: datetime | None = None, events: Sequence[str] | None = None) -> Drained:
        """`drain`, saying also whether it stopped because the transport became unavailable (rather than because
        less than `limit` was waiting). `events`: send only messages of these events (a part of the participant,
        like its web inbox, sending its own while another part sends the rest)."""
        sent = 0
        while limit is None or sent < limit:
            size = batch if limit is None else min(batch, limit - sent)
            waiting = self.waiting(size, now=now, events=events)
            if not waiting:
                return Drained(sent, interrupted=False)
            try:
                transport.publish_many([(INGRESS, envelope) for _, envelope in waiting])
            except RecoverableBrokerError:
                return Drained(sent, interrupted=True)
            self.mark_sent([seq for seq, _ in waiting], now=now)
            sent += len(waiting)
        return Drained(sent, interrupted=False)

    def waiting(self, limit: int, *, now: datetime | None = None,
                events: Sequence[str] | None = None) -> list[tuple[int, Envelope]]:
        """The oldest `limit` messages waiting to be sent (of these events only, if given), each with its outbox
        position and the envelope to publish (for `mark_sent` once the transport has confirmed them).
        `send_waiting` is the usual way to send them."""
        only, params = _of_events(events)
        rows = self.db.execute("SELECT seq, message_id, event, body, signature, signed_at FROM outbox WHERE "  # noqa: S608
                               f"sent_at IS NULL {only} ORDER BY seq LIMIT ?", [*params, limit]).fetchall()
        issued = int((now or datetime.now(UTC)).timestamp())
        # A message that waited is signed afresh here, in this process: the worker processes may still have a
        # whole run's preparing queued ahead of anything given them now.
        signer = {"key": self.key, "sender": self.participant_id}
        return [(seq, Envelope(message_id, body, {
            SIGNATURE: signature if _fresh(signature, signed_at, issued)
            else _sign(signer, (body, message_id, event, issued)),
            SENDER: self.participant_id})) for seq, message_id, event, body, signature, signed_at in rows]

    def mark_sent(self, seqs: Sequence[int], *, now: datetime | None = None) -> None:
        """Record messages as sent: only once the transport has confirmed them (else they would never go)."""
        stamp = (now or datetime.now(UTC)).isoformat()
        with sqlite_db.transaction(self.db):
            self.db.executemany("UPDATE outbox SET sent_at = ?, state = 'sent', reason = NULL WHERE seq = ?",
                                [(stamp, seq) for seq in seqs])

    # -- what the exchange answered ------------------------------------------------------------------
    def record_acknowledgement(self, body: bytes | dict, *, now: datetime | None = None) -> str | None:
        """Apply one of the router's acknowledgements; returns the message id it answers if it is one of ours.

        `accepted` sets the state and a `delivered` outcome for each recipient it was queued for (and `failed`
        for any not reachable); `duplicate` means the exchange already had it; `delivery-failed` naming a
        recipient marks that recipient failed (a dead-lettered delivery), and without one marks the message
        failed; any other code is a refusal, kept with its reason."""
        ack = orjson.loads(body) if isinstance(body, bytes) else body
        header = ack["entry"][0]["resource"]
        message_id = "urn:uuid:" + header["response"]["identifier"].removeprefix("urn:uuid:")
        row = self.db.execute("SELECT state FROM outbox WHERE message_id = ?", (message_id,)).fetchone()
        if row is None:
            return None
        state = row[0]
        raw_issues = _outcome(ack)["issue"]
        issues = [(i["details"]["coding"][0]["code"], i.get("diagnostics")) for i in raw_issues]
        codes = {code for code, _ in issues}
        # When the exchange answered (its acknowledgement's timestamp), not when this outbox happened to read it.
        stamp = now.isoformat() if now else ack.get("timestamp") or datetime.now(UTC).isoformat()
        outcomes, reason, transient = [], None, None
        for code, text in issues:
            found = _RECIPIENT.match(text or "")
            if found:
                outcomes.append((message_id, found.group(1), "delivered" if code == "accepted" else "failed", text,
                                 stamp))
        if "accepted" in codes:
            state = "accepted"
        elif "duplicate" in codes:
            state = state if state == "accepted" else "duplicate"
        elif codes == {"delivery-failed"}:
            if not outcomes:
                state, reason = "failed", "; ".join(t or "" for _, t in issues)
        else:
            state, reason = "refused", "; ".join(f"{c}: {t}" if t else c for c, t in issues)
            transient = 1 if all(i.get("code") == "transient" for i in raw_issues) else (
                None if _in_earlier_words(reason) else 0)
        with sqlite_db.transaction(self.db):
            self.db.execute("UPDATE outbox SET state = ?, reason = COALESCE(?, reason), transient = COALESCE(?, "
                            "transient) WHERE message_id = ?", (state, reason, transient, message_id))
            # One final outcome per recipient: a later failure (a dead-lettered delivery) replaces "delivered".
            self.db.executemany("INSERT INTO outcomes (message_id, recipient, outcome, detail, at) VALUES "
                                "(?, ?, ?, ?, ?) ON CONFLICT (message_id, recipient) DO UPDATE SET "
                                "outcome = excluded.outcome, detail = excluded.detail, at = excluded.at "
                                "WHERE outcomes.outcome != 'failed'", outcomes)
        return message_id

    def record_acknowledgements(self, inbox) -> int:
        """Apply the router's acknowledgements that arrived in the participant's inbox (a Node) since the last
        call; returns how many answered messages of this outbox."""
        after = (self.db.execute("SELECT inbox_row FROM ack_cursor").fetchone() or (0,))[0]
        applied = 0
        for row, body in inbox.acknowledgements(after):
            applied += self.record_acknowledgement(body) is not None
            after = row
        with sqlite_db.transaction(self.db):
            self.db.execute("INSERT INTO ack_cursor (id, inbox_row) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET "
                            "inbox_row = excluded.inbox_row", (after,))
        return applied

    # -- what the recipients did ---------------------------------------------------------------------------
    def record_response(self, responder: str, event: str, body: bytes | dict) -> str | None:
        """Apply a recipient's response (a business acknowledgement, a decision, a request for more information)
        to the message it answers; returns that message's id if it is one of ours."""
        message = orjson.loads(body) if isinstance(body, bytes) else body
        header = message["entry"][0]["resource"]
        message_id = "urn:uuid:" + header["response"]["identifier"].removeprefix("urn:uuid:")
        if self.db.execute("SELECT 1 FROM outbox WHERE message_id = ?", (message_id,)).fetchone() is None:
            return None
        at, response_id = message["timestamp"], message["identifier"]["value"]
        steps: list[tuple[str, str | None]] = []
        if event == "acknowledgement":
            steps = [(_ACK_STEP[code], None) for code, _ in _issues(message) if code in _ACK_STEP]
        elif event == "decision-recorded":
            focus = message["entry"][1]["resource"]
            code = focus["reasonCode"][0]["coding"][0]["code"]
            text = " ".join(p.get("contentString", "") for p in focus.get("payload", [])).strip()
            steps = [("decided", term.display("decision-code", code) + (f": {text}" if text else ""))]
        elif event == "information-request":
            focus = message["entry"][1]["resource"]
            steps = [("asked", " ".join(p.get("contentString", "") for p in focus.get("payload", [])).strip())]
        rows = [(message_id, responder, implied, at, None, response_id)
                for step, _ in steps for implied in _IMPLIES.get(step, ())]
        with sqlite_db.transaction(self.db):
            self.db.executemany("INSERT OR IGNORE INTO progress VALUES (?, ?, ?, ?, ?, ?)", rows)
            # The first time of each step is kept; a later decision or question replaces an earlier one.
            self.db.executemany(
                "INSERT INTO progress VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id, recipient, step) DO UPDATE "
                "SET at = excluded.at, detail = excluded.detail, response_id = excluded.response_id "
                "WHERE excluded.step IN ('decided', 'asked')",
                [(message_id, responder, step, at, detail, response_id) for step, detail in steps])
        return message_id

    def record_responses(self, inbox) -> int:
        """Apply the responses that arrived in the participant's inbox (anything with `responses(after)`: a Node
        or the web inbox's store) since the last call; returns how many answered messages of this outbox."""
        after = (self.db.execute("SELECT inbox_row FROM response_cursor").fetchone() or (0,))[0]
        applied = 0
        for row, responder, event, body in inbox.responses(after):
            applied += self.record_response(responder, event, body) is not None
            after = row
        with sqlite_db.transaction(self.db):
            self.db.execute("INSERT INTO response_cursor (id, inbox_row) VALUES (1, ?) ON CONFLICT (id) DO UPDATE "
                            "SET inbox_row = excluded.inbox_row", (after,))
        return applied

    def accountable(self, message_id: str, now: datetime | None = None) -> list[RecipientState]:
        """Per recipient: accepted by the exchange, delivered to its node, read, acknowledged, decided, with times,
        and overdue when not acknowledged by the deadline the catalogue sets for the event."""
        row = self.db.execute("SELECT event FROM outbox WHERE message_id = ?", (message_id,)).fetchone()
        if row is None:
            return []
        event = cat.EVENTS_BY_CODE.get(row[0])
        now = now or datetime.now(UTC)
        states: dict[str, RecipientState] = {}
        for recipient, outcome, at in self.db.execute(
                "SELECT recipient, outcome, at FROM outcomes WHERE message_id = ?", (message_id,)):
            states[recipient] = RecipientState(recipient, outcome, at if outcome == "delivered" else None, {}, None,
                                               False)
        for recipient, step, at, detail in self.db.execute(
                "SELECT recipient, step, at, detail FROM progress WHERE message_id = ?", (message_id,)):
            state = states.setdefault(recipient, RecipientState(recipient, None, None, {}, None, False))
            state.steps[step] = (at, detail)
        for state in states.values():
            if event is not None and state.accepted_at:
                state.due = event.acknowledge_by(_moment(state.accepted_at))
                # A decision or a question answers the message as surely as an acknowledgement does.
                answered = {"acknowledged", "decided", "asked"} & set(state.steps)
                state.overdue = state.due is not None and not answered and now > state.due
        return sorted(states.values(), key=lambda s: s.recipient)

    def sent(self, *, limit: int = 50, offset: int = 0) -> list[tuple[str, str, str, str | None]]:
        """(message_id, event, state, sent_at) of the messages this participant sent, newest first; its own
        acknowledgements (receipts, read and acknowledged) are left out: they are what others see of its work."""
        return self.db.execute("SELECT message_id, event, state, sent_at FROM outbox WHERE event != 'acknowledgement' "
                               "ORDER BY seq DESC LIMIT ? OFFSET ?", (limit, offset)).fetchall()

    def status(self, message_id: str) -> Status | None:
        """The outbox state of a message and the outcomes received for it (None if it never was here)."""
        row = self.db.execute("SELECT message_id, event, state, sent_at, reason FROM outbox WHERE message_id = ?",
                              (message_id,)).fetchone()
        if row is None:
            return None
        outcomes = {r: (o, d) for r, o, d in self.db.execute(
            "SELECT recipient, outcome, detail FROM outcomes WHERE message_id = ? ORDER BY recipient", (message_id,))}
        return Status(*row, outcomes=outcomes)

    def requeue_unanswered(self, message_id: str) -> bool:
        """Queue again a message the exchange confirmed taking but has not answered (no acknowledgement yet), to
        be sent with the same id; False if it is not one. The exchange drops a copy it already has by its id."""
        with sqlite_db.transaction(self.db):
            return self.db.execute(f"{_QUEUE_AGAIN} WHERE message_id = ? AND state = 'sent'",  # noqa: S608 - fixed text
                                   (message_id,)).rowcount == 1

    def resend_recoverable(self) -> list[str]:
        """Queue again every message refused for a reason a change elsewhere can lift (the exchange's issues all
        `transient`: every recipient not onboarded yet, or without a queue); returns their ids. The router keeps no
        record of a refused id, so the same message is judged afresh."""
        words = " OR ".join("reason LIKE ?" for _ in EARLIER_RECOVERABLE_REFUSALS)
        with sqlite_db.transaction(self.db):
            ids = [r[0] for r in self.db.execute(f"SELECT message_id FROM outbox WHERE state = 'refused' AND "  # noqa: S608 - fixed placeholders
                                                 f"(transient = 1 OR (transient IS NULL AND ({words})))",
                                                 list(EARLIER_RECOVERABLE_REFUSALS))]
            self.db.executemany(f"{_QUEUE_AGAIN} WHERE message_id = ?", [(i,) for i in ids])  # noqa: S608
        return ids

    def resend(self, message_id: str) -> bool:
        """Queue a refused or failed message again (it is signed afresh when sent); False if it is not one."""
        with sqlite_db.transaction(self.db):
            return self.db.execute(f"{_QUEUE_AGAIN} WHERE message_id = ? AND state IN ('refused', 'failed')",  # noqa: S608
                                   (message_id,)).rowcount == 1


def _of_events(events: Sequence[str] | None) -> tuple[str, list[str]]:
    """The clause (with its parameters) that keeps only messages of these events; nothing for None."""
    if events is None:
        return "", []
    return f"AND event IN ({','.join('?' * len(events))})", list(events)


def _in_earlier_words(reason: str) -> bool:
    """Whether a refusal reads as one the exchange before issue types called recoverable by its words alone (an
    exchange not yet upgraded types every issue `invalid`): such a refusal is kept as not known (NULL), and judged
    by its words as `resend_recoverable` judges the refusals recorded before."""
    return any(fnmatch.fnmatchcase(reason, pattern.replace("%", "*")) for pattern in EARLIER_RECOVERABLE_REFUSALS)


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _issues(ack: dict) -> list[tuple[str, str | None]]:
    return [(i["details"]["coding"][0]["code"], i.get("diagnostics")) for i in _outcome(ack)["issue"]]


def _outcome(ack: dict) -> dict:
    """The OperationOutcome an acknowledgement's MessageHeader points to."""
    target = ack["entry"][0]["resource"]["response"]["details"]["reference"]
    for entry in ack["entry"]:
        if entry.get("fullUrl") == target:
            return entry["resource"]
    return next(e["resource"] for e in ack["entry"] if e["resource"]["resourceType"] == "OperationOutcome")


# -- the steps worker processes run (module functions: a pool sends them by name) ---------------------------------
def _prepare(state: dict, message: Message) -> tuple[bytes | None, str | None, str | None, str | None, int, list]:
    """A message (or its recipe) made into the bytes to queue, its id, event, signature and the second it was
    issued; or the error findings that refuse it (the findings travel back, not the exception, which would not
    survive the pipe whole)."""
    if callable(message):
        message = message()
    serialised_here = not isinstance(message, bytes)
    body = orjson.dumps(message) if serialised_here else message
    try:
        bundle = state["validator"].validate(body, keys_unique=serialised_here)
    except MessageInvalid as exc:
        return None, None, None, None, 0, exc.findings
    message_id, event = bundle["identifier"]["value"], event_of(bundle)
    issued = int(time.time())
    return body, message_id, event, _sign(state, (body, message_id, event, issued)), issued, []


def _sign(state: dict, item: tuple[bytes, str, str, int]) -> str:
    body, message_id, event, issued = item
    return signing.sign(body, state["key"], signing.SignedHeader(state["key"].kid, state["sender"], message_id,
                                                                 event, issued))


def _fresh(signature: str | None, signed_at: int | None, now: int) -> bool:
    """Whether the signature made when the message was prepared for the queue can go as it is: made in the last
    minute, so that its issued-at stays close to when the message entered the exchange (the router judges a
    message's age from it). A message that waited longer is signed afresh."""
    return signature is not None and signed_at is not None and abs(now - signed_at) <= PRESIGNED_FOR_SECONDS
