"""The router: verify -> validate -> drop duplicates -> authorise -> resolve recipients -> deliver ->
register -> audit -> acknowledge. Every decision, accepted or refused, is audited."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from broker import db as sqlite_db
from broker import routing, signing
from broker.audit import AuditLog, Checkpoints
from broker.audit import entry as audit_entry
from broker.directory import Directory, LiveDirectory
from broker.keys import SigningKey, secret_file
from broker.register import Register
from broker.routed import RESPONSE_WINDOW_SECONDS, Original, Routed
from broker.transport import DEAD_LETTER, INGRESS, Delivery, Envelope, Transport, delivery_queue
from broker.transport.base import CONNECTION_USER, consume
from standard import catalogue as cat
from standard import compose, errors
from standard.errors import (
    DirectoryExpired,
    IssuedAtOutsideWindow,
    RecoverableBrokerError,
    SignatureRejected,
    TransportUnavailable,
    Unroutable,
)
from standard.validator import HOT_PATH, MAX_MESSAGE_BYTES, Validator

STATE_FILE = "router.db"  # seen ids, the register and the audit chain, in an exchange folder
log = logging.getLogger("sgx.router")

SIGNATURE = "sgx-signature"
SENDER = "sgx-sender"
DELIVERY = "sgx-delivery"
DELIVERY_SIGNATURE = "sgx-delivery-signature"
DELIVERY_TYP = "sgx-delivery+jws"
RETURNED = "sgx-returned"  # a delivery given back to its queue once after its node hit the delivery limit

# -- limits ------------------------------------------------------------------------------------------------
# Whatever the ingress takes must be deliverable, so every limit is checked before the router publishes.
# RabbitMQ carries a message's properties and headers in one frame (frame_max, 128 KiB by default) and its body
# in as many frames as it needs, up to max_message_size (which `sgx broker setup` sets to MAX_BODY_BYTES).
FRAME_MAX = 131072
MAX_BODY_BYTES = MAX_MESSAGE_BYTES  # 5 MiB: the validator's limit, the outbox's and the broker's
MAX_SIGNATURE_BYTES = 4096  # a sender's signature header; a real one is about 320 bytes
MAX_NOTE_BYTES = 96 * 1024  # the router's delivery note (its children's pseudonyms grow with the setting)
ROUTER_HEADER_OVERHEAD = 2048  # the note's signature (~400 bytes), header names, AMQP table and property framing
# What a delivery's header frame can hold at most: the sender's signature, the note and the router's overhead.
MAX_DELIVERY_HEADER_BYTES = MAX_SIGNATURE_BYTES + MAX_NOTE_BYTES + ROUTER_HEADER_OVERHEAD
assert MAX_DELIVERY_HEADER_BYTES < FRAME_MAX, "a delivery's headers must fit one AMQP frame"
MAX_BATCH_BYTES = 8 * 1024 * 1024  # message bytes decided in one batch: bounds what one publish buffers

# -- time ------------------------------------------------------------------------------------------------
FUTURE_SKEW_SECONDS = 300  # a sender's clock may run this far ahead
MAX_AGE_SECONDS = 7 * 86400  # a message is accepted this long after it was signed (sent): outages up to a week
RETENTION_SECONDS = 30 * 86400  # message ids are remembered this long (replays are caught by id)
_PRUNE_EVERY_SECONDS = 3600

# Reasons the audit records whose acknowledgement code is another (the code system is the standard's).
_ACK_CODE = {"too-large": "payload-invalid"}


def header_bytes(headers: dict[str, str]) -> int:
    """The size of headers as an AMQP field table (a length byte, the name, a type byte, a 4-byte length, the
    value), which is what must fit the frame."""
    return sum(1 + len(k.encode()) + 1 + 4 + len(v.encode()) for k, v in headers.items())


# Which check refused a signature, for the audit (the acknowledgement code stays the exception's `reason`).
_SIGNATURE_CHECKS = ((errors.UnknownKey, "unknown-kid"), (errors.RevokedKey, "revoked-key"),
                     (errors.ExpiredKey, "expired-key"), (errors.BadSignature, "bad-signature"),
                     (errors.AlgorithmNotAllowed, "alg-not-allowed"), (errors.UnknownCritical, "crit-not-understood"),
                     (errors.SenderMismatch, "sender-mismatch"), (errors.IssuedAtOutsideWindow, "iat-out-of-window"),
                     (errors.MalformedSignature, "header-member-missing-or-wrong"))


def _signature_check(exc: SignatureRejected) -> str:
    return next((name for kind, name in _SIGNATURE_CHECKS if isinstance(exc, kind)), "signature-rejected")


@dataclass
class Decision:
    message_id: str
    sender: str
    event: str
    decision: str  # accepted | duplicate | rejected
    reason: str | None = None
    recipients: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)


class _Seen:
    """Message ids the router has processed, with the digest of their bytes (to tell duplicates from replays)."""

    def __init__(self, path: Path | str | sqlite3.Connection, *, now: Callable[[], datetime]):
        self.db = sqlite_db.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS seen (message_id TEXT PRIMARY KEY, digest TEXT NOT NULL, "
                        "seen_at INTEGER NOT NULL DEFAULT 0)")
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(seen)")}
        if "seen_at" not in columns:  # a folder from before retention: its ids count as seen now
            with sqlite_db.transaction(self.db):
                self.db.execute("ALTER TABLE seen ADD COLUMN seen_at INTEGER NOT NULL DEFAULT 0")
                self.db.execute("UPDATE seen SET seen_at = ?", (int(now().timestamp()),))
        self.db.execute("CREATE INDEX IF NOT EXISTS seen_by_time ON seen (seen_at)")

    def digest_of(self, message_id: str) -> str | None:
        row = self.db.execute("SELECT digest FROM seen WHERE message_id = ?", (message_id,)).fetchone()
        return row[0] if row else None

    def remember(self, entries: list[tuple[str, str]], at: datetime) -> None:
        stamp = int(at.timestamp())
        with sqlite_db.transaction(self.db):
            self.db.executemany("INSERT OR IGNORE INTO seen (message_id, digest, seen_at) VALUES (?, ?, ?)",
                                [(m, d, stamp) for m, d in entries])

    def prune(self, before: datetime) -> int:
        """Forget ids first seen before `before`; returns how many."""
        with sqlite_db.transaction(self.db):
            return self.db.execute("DELETE FROM seen WHERE seen_at < ?", (int(before.timestamp()),)).rowcount


@dataclass
class _Batch:
    """Everything a batch of routing decisions writes, so it is written together: deliveries and
    acknowledgements published (and confirmed) first, then the register, the seen ids and the audit."""

    outgoing: list[tuple[str, Envelope]] = field(default_factory=list)
    placements: list[tuple] = field(default_factory=list)
    seen: dict[str, str] = field(default_factory=dict)
    audit: list[str] = field(default_factory=list)
    routed: list[tuple[str, str, str, str, int]] = field(default_factory=list)  # (id, recipient, sender, event, at)


@dataclass
class _Originals(routing.Originals):
    """The messages a response may answer: those recorded, and those accepted earlier in the same batch."""

    routed: Routed
    batch: _Batch

    def original(self, message_id: str) -> Original | None:
        return self.routed.original(message_id, self.batch.routed)


class Claims:
    """The message ids that a process's routers are deciding right now. Routers that run side by side as
    competing consumers hold their batch's ids here, so two never decide the same id at once: the second
    waits for the first to record it, then finds it seen (a duplicate, or a replay to refuse). A batch takes
    all its ids or waits for all, so two routers can never wait for each other."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def holding(self, message_ids: Iterable[str]) -> Iterator[None]:
        wanted = set(message_ids)
        with self._changed:
            while wanted & self._held:
                self._changed.wait()
            self._held |= wanted
        try:
            yield
        finally:
            with self._changed:
                self._held -= wanted
                self._changed.notify_all()


class Router:
    """Routes ingress messages. Its state (seen ids, the register, the audit chain) lives in one SQLite
    database, so that what a batch records is one commit."""

    max_signature_bytes = MAX_SIGNATURE_BYTES
    max_delivery_header_bytes = MAX_DELIVERY_HEADER_BYTES

    def __init__(self, directory: Directory, transport: Transport, key: SigningKey,
                 db: Path | str | sqlite3.Connection, register_secret: bytes, *, validator: Validator | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC), window_seconds: int = FUTURE_SKEW_SECONDS,
                 max_age_seconds: int = MAX_AGE_SECONDS, retention_seconds: int = RETENTION_SECONDS,
                 claims: Claims | None = None, trust: LiveDirectory | None = None,
                 checkpoints: Checkpoints | None = None):
        """`directory` is followed (LiveDirectory) when it was loaded from its signed file; `trust` replaces
        that; `checkpoints` publishes the audit head after each batch and signs it at intervals."""
        if max_age_seconds >= retention_seconds:
            raise ValueError("message ids must be remembered longer than a message may wait, or an old message "
                             "could be replayed after its id was forgotten")
        self.directory, self.transport, self.key = directory, transport, key
        self.trust = trust or LiveDirectory(directory)
        self.checkpoints = checkpoints
        self.db = sqlite_db.connect(db)
        self.register, self.audit = Register(self.db, register_secret), AuditLog(self.db)
        self.routed = Routed(self.db)  # who received what, so a response goes back to its sender only
        self.seen = _Seen(self.db, now=now)
        self.validator = validator or Validator(HOT_PATH, now=now)  # the same verdict as full validation
        self.now = now
        self.window_seconds = window_seconds  # how far ahead of the router's clock issued-at may be
        self.max_age_seconds, self.retention_seconds = max_age_seconds, retention_seconds
        self.claims = claims or Claims()
        self._queues: set[str] = set()  # delivery queues known to exist
        self._failures: dict[str, str] = {}  # message id -> why routing it last failed (for its dead letter)
        self._pruned_at = 0.0

    @classmethod
    def in_folder(cls, root: Path, directory: Directory, transport: Transport, key: SigningKey, **kwargs) -> Router:
        """The router of an exchange folder: its state in `router.db`, and the register's pseudonym secret in
        keys/register.secret (made on first use, mode 0600)."""
        secret = secret_file(root / "keys" / "register.secret", lambda: os.urandom(32))
        kwargs.setdefault("checkpoints", Checkpoints(root, key))
        return cls(directory, transport, key, root / STATE_FILE, secret, **kwargs)

    def refresh_directory(self) -> Directory:
        """Take up a newly signed directory (at every batch boundary). Raises DirectoryExpired once the
        directory in force has expired with no valid newer one: nothing is routed on a stale directory."""
        self.directory = self.trust.current(self.now())
        return self.directory

    # -- the pipeline ------------------------------------------------------------------------------
    def process(self, envelope: Envelope) -> Decision:
        """Route one message (see process_batch)."""
        return self.process_batch([envelope])[0]

    def process_batch(self, envelopes: list[Envelope]) -> list[Decision]:
        """Decide every message, then publish all deliveries and acknowledgements with one confirmed batch and
        record the register, the seen ids and the audit in one transaction."""
        with self.claims.holding(e.message_id for e in envelopes):
            return self._process_batch(envelopes)

    def _process_batch(self, envelopes: list[Envelope]) -> list[Decision]:
        self.refresh_directory()
        batch = _Batch()
        decisions = [self._decide(envelope, batch) for envelope in envelopes]
        if batch.outgoing:
            try:
                self.transport.publish_many(batch.outgoing)  # durable at every recipient before anything is recorded
            except Unroutable as exc:
                if not exc.undelivered:
                    raise
                # Every other message of the batch is durable (the transport contract): record the batch as
                # done and report only what found no queue, since retrying would deliver the others twice.
                self._undeliverable(batch, [batch.outgoing[i] for i in exc.undelivered])
        with sqlite_db.transaction(self.db):  # register, seen ids and audit: one commit
            if batch.placements:
                self.register.record_many(batch.placements)
            if batch.seen:
                self.seen.remember(list(batch.seen.items()), self.now())
            if batch.routed:
                self.routed.record_many(batch.routed)
            if batch.audit:
                self.audit.append_many(batch.audit)
        if batch.audit and self.checkpoints is not None:
            try:  # the batch is recorded: a head that cannot be written must not make it look failed
                self.checkpoints.after_batch(self.audit, now=self.now())
            except OSError as exc:
                log.error("could not publish or sign the audit head (%s); routing goes on", exc)
        return decisions

    def _decide(self, envelope: Envelope, batch: _Batch) -> Decision:
        body = envelope.body
        digest = hashlib.sha256(body).hexdigest()
        claimed = envelope.headers.get(SENDER, "")
        # Who sent it: on RabbitMQ the AMQP user_id the broker checked against the connection (required); the
        # embedded transport has no users, so there the sender header stands for it. Refusals go to this
        # identity only, never to a participant that a header merely names.
        connection = envelope.headers.get(CONNECTION_USER)
        identity = claimed if connection is None else connection
        known = identity in self.directory.participants
        jws = envelope.headers.get(SIGNATURE)
        # Size first, before even the signature's header is read: the router adds its delivery note to these
        # headers, and nothing it cannot re-publish may get further.
        too_large = None
        if jws is not None and len(jws.encode()) > self.max_signature_bytes:
            too_large = f"the {SIGNATURE} header is {len(jws.encode())} bytes; at most {self.max_signature_bytes} " \
                        "are accepted"
        elif len(body) > MAX_BODY_BYTES:
            too_large = f"the message is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted"
        if too_large is not None:
            return self._refuse(batch, Decision(envelope.message_id, identity, "", "rejected", "too-large"), digest,
                                notify=known, detail=too_large)
        refused = Decision(str(_signed_id(envelope) or envelope.message_id), identity, "", "rejected")
        if jws is None:
            refused.reason = "signature-invalid"
            return self._refuse(batch, refused, digest, notify=known,
                                detail=f"signature-missing: no {SIGNATURE} header")
        if connection == "":
            refused.reason = "unknown-sender"
            return self._refuse(batch, refused, digest, notify=False,
                                detail=f"no AMQP user_id (the {SENDER} header said {claimed!r}): the broker vouches "
                                       "for no sender")
        if connection is not None and claimed != connection:
            refused.reason = "unknown-sender"
            return self._refuse(batch, refused, digest, notify=known,
                                detail=f"the {SENDER} header says {claimed!r} but the AMQP user_id is "
                                       f"{connection!r}")
        now = self.now()
        try:
            # Age is judged against issued-at, which the outbox sets when it publishes to the ingress, so the
            # time a message waited on the ingress (a router outage) counts, up to max_age_seconds.
            signed = signing.verify(body, jws, functools.partial(self.directory.public_key_for, checked_at=now),
                                    expected_sender=identity or None, now=now, window_seconds=self.max_age_seconds)
            if signed.issued_at > now.timestamp() + self.window_seconds:
                raise IssuedAtOutsideWindow(f"issued-at is more than {self.window_seconds} s ahead of the "
                                            "exchange's clock; check the sender's clock")
        except SignatureRejected as exc:
            # Outside the window is `replay` to the standard's codes; the detail (iat-out-of-window) says it is a
            # stale message, not a reused id.
            refused.reason = exc.reason
            return self._refuse(batch, refused, digest, notify=known, detail=f"{_signature_check(exc)}: {exc}")

        decision = Decision(signed.message_id, signed.sender, signed.event, "rejected")
        doc, findings = self.validator.parse(body)  # parsed once, for validation and for routing
        if doc is not None:
            findings = list(self.validator.iter_findings(doc))
        if findings:
            decision.reason = "payload-invalid"
            decision.findings = [f"{f.code} at {f.location}" for f in findings]
            return self._refuse(batch, decision, digest, notify=True)
        facts = routing.facts_of(doc)
        if (facts.message_id, facts.sender, facts.event) != (signed.message_id, signed.sender, signed.event):
            decision.reason = "unknown-sender"
            return self._refuse(batch, decision, digest, notify=True,
                                detail="signed header does not match the message")

        known = batch.seen.get(facts.message_id) or self.seen.digest_of(facts.message_id)
        if known is not None:
            if known != digest:
                decision.reason = "replay"
                return self._refuse(batch, decision, digest, notify=True,
                                    detail="message id reused for other content")
            decision.decision, decision.reason = "duplicate", "duplicate"
            batch.audit.append(audit_entry(message_id=facts.message_id, digest=digest, sender=facts.sender,
                                           event=facts.event, recipients=[], decision="duplicate",
                                           reason="duplicate"))
            self._acknowledge(batch, facts.sender, facts.message_id, "duplicate", [
                ("information", "duplicate", "duplicate", "already accepted; not delivered again")])
            return decision

        originals = _Originals(self.routed, batch)
        refusal_code = routing.authorise(facts, self.directory, originals)
        if refusal_code:
            decision.reason = refusal_code
            return self._refuse(batch, decision, digest, notify=refusal_code != "unknown-sender")
        if any(r.of == "children-at-setting" for r in cat.get_event(facts.event).recipients):
            # This message's routing reads the register: apply the batch's placements so far first.
            self._flush_placements(batch)
        plan = routing.resolve(facts, self.directory, self.register, today=now.date(), originals=originals)
        if plan.problem:
            decision.reason = "no-recipients"
            # Refused for recipients not onboarded yet: a change elsewhere lifts it (transient); unless some were
            # withheld for naming another authority's child, which onboarding would not change.
            return self._refuse(batch, decision, digest, notify=True, detail=_refusal_detail(plan),
                                transient=bool(plan.unreachable) and not plan.withheld)
        routes = [r for r in plan.routes if self._reachable(r.participant)]
        no_queue = [r.participant for r in plan.routes if r not in routes]
        if not routes:
            decision.reason = "no-recipients"
            return self._refuse(batch, decision, digest, notify=True, transient=True,
                                detail=f"not reachable: {','.join(no_queue)} (no queue on the exchange)")
        deliveries = [(delivery_queue(route.participant), self._delivery(envelope, facts.message_id, route))
                      for route in routes]
        too_big = [q for q, d in deliveries if header_bytes(d.headers) > self.max_delivery_header_bytes]
        if too_big:
            decision.reason = "too-large"
            return self._refuse(batch, decision, digest, notify=True,
                                detail=f"the delivery note for {too_big[0]} would not fit one frame")

        batch.outgoing += deliveries
        if facts.event.startswith("placement-"):
            self._placements(facts, batch)
        batch.seen[facts.message_id] = digest
        decision.decision, decision.recipients = "accepted", [r.participant for r in routes]
        batch.routed += [(facts.message_id, pid, facts.sender, facts.event, int(now.timestamp()))
                         for pid in decision.recipients]
        notes = ([f"withheld from {','.join(plan.withheld)}"] if plan.withheld else []) + (
            [f"not onboarded: {','.join(plan.unreachable)}"] if plan.unreachable else []) + (
            [f"not reachable: {','.join(no_queue)} (no queue)"] if no_queue else [])
        batch.audit.append(audit_entry(message_id=facts.message_id, digest=digest, sender=facts.sender,
                                       event=facts.event, recipients=decision.recipients, decision="accepted",
                                       reason="; ".join(notes) or None))
        # One outcome per recipient: queued for it, or failed (and why).
        self._acknowledge(batch, facts.sender, facts.message_id, "accepted", [
            *[("information", "informational", "accepted", f"recipient {pid}: queued for delivery")
              for pid in decision.recipients],
            *[("warning", "not-found", "delivery-failed", f"recipient {pid}: not reachable (no queue on the "
                                                          "exchange)") for pid in no_queue]])
        return decision

    def _reachable(self, participant_id: str) -> bool:
        """Whether the participant has a delivery queue (asked of the broker once, then remembered)."""
        queue = delivery_queue(participant_id)
        if queue in self._queues:
            return True
        if not self.transport.has_queue(queue):
            log.warning("participant %s has no queue %s on the exchange: recorded as not reachable",
                        participant_id, queue)
            return False
        self._queues.add(queue)
        return True

    def _undeliverable(self, batch: _Batch, items: list[tuple[str, Envelope]]) -> None:
        """Audit each message that found no queue (one removed since it was checked) and tell its sender that
        delivery failed."""
        notices, told = _Batch(), set()
        for queue, envelope in items:
            self._queues.discard(queue)
            sender = envelope.headers.get(SENDER, "")
            batch.audit.append(audit_entry(message_id=envelope.message_id,
                                           digest=hashlib.sha256(envelope.body).hexdigest(), sender=sender,
                                           event="", recipients=[], decision="undeliverable",
                                           reason=f"unroutable: no queue {queue}"))
            log.warning("message %s from %s not delivered: no queue %s", envelope.message_id, sender, queue)
            if sender in self.directory.participants and sender != "router" and envelope.message_id not in told:
                told.add(envelope.message_id)
                recipient = queue.removeprefix("deliver.")
                self._acknowledge(notices, sender, envelope.message_id, "delivery-failed",
                                  [("error", "transient", "delivery-failed",
                                    f"recipient {recipient}: not reachable (no queue on the exchange)")])
        if notices.outgoing:
            try:
                self.transport.publish_many(notices.outgoing)
            except Unroutable:
                log.warning("could not tell %d sender(s) of undelivered messages: no queue", len(notices.outgoing))

    def _refuse(self, batch: _Batch, decision: Decision, digest: str, *, notify: bool,
                detail: str | None = None, transient: bool = False) -> Decision:
        """Refuse a message: audited, and the sender told unless `notify` is false. `transient`: the cause is outside
        the message (a recipient not onboarded yet, or without a queue), so the same message may be sent again
        once that changes; the acknowledgement's issues then have the FHIR issue type `transient`, not `invalid`."""
        reason = decision.reason if not detail else f"{decision.reason}: {detail}"
        batch.audit.append(audit_entry(message_id=decision.message_id, digest=digest, sender=decision.sender,
                                       event=decision.event, recipients=[], decision="rejected", reason=reason))
        log.warning("refused message %s from %s: %s", decision.message_id, decision.sender, reason)
        if notify and decision.sender in self.directory.participants:
            code = _ACK_CODE.get(decision.reason or "", decision.reason or "payload-invalid")
            kind = "transient" if transient else "invalid"
            details = [("error", kind, code, f) for f in decision.findings] or [
                ("error", kind, code, f"{decision.reason}: {detail}" if detail else None)]
            self._acknowledge(batch, decision.sender, decision.message_id, code, details)
        return decision

    def _delivery(self, envelope: Envelope, message_id: str, route: routing.Route) -> Envelope:
        # The verified message id (signed jti = Bundle.identifier), never the transport's unsigned message_id
        # property, which a sender may leave out or set otherwise.
        note = {"recipient": route.participant, "roles": route.roles, "message_id": message_id,
                "routed_at": compose.timestamp(self.now())}
        if route.children is not None:
            note["children"] = route.children
        note_bytes = orjson.dumps(note)
        note_signature = signing.sign(note_bytes, self.key, signing.SignedHeader(
            self.key.kid, "router", message_id, "delivery", int(self.now().timestamp()), DELIVERY_TYP))
        headers = {SIGNATURE: envelope.headers[SIGNATURE], SENDER: envelope.headers.get(SENDER, ""),
                   DELIVERY: note_bytes.decode(), DELIVERY_SIGNATURE: note_signature}
        return Envelope(message_id, envelope.body, headers)

    def _placements(self, facts: routing.MessageFacts, batch: _Batch) -> None:
        if not (facts.children and facts.settings and facts.placement_start):
            return
        for child in facts.children:
            pseudonym = self.register.pseudonym(child.placing_la or "", child.local_id)
            batch.placements.append((facts.event, pseudonym, child.placing_la or "", facts.settings[0],
                                     facts.placement_start, facts.placement_end, facts.message_id))

    def _flush_placements(self, batch: _Batch) -> None:
        if batch.placements:
            self.register.record_many(batch.placements)
            batch.placements.clear()

    def _acknowledge(self, batch: _Batch, recipient: str, message_id: str, code: str, details: list) -> None:
        if not self.directory.participants[recipient].keys:
            return  # not onboarded: it has no queue to be told on
        if not self._reachable(recipient):
            batch.audit.append(audit_entry(message_id=message_id, digest="", sender="router", event="acknowledgement",
                                           recipients=[recipient], decision="not-told",
                                           reason=f"{code}: {recipient} has no queue on the exchange"))
            return
        ack = compose.acknowledgement(message_id, "router", code, details=details, moment=self.now())
        body = orjson.dumps(ack)
        ack_id = ack["identifier"]["value"]
        signature = signing.sign_message(body, self.key, sender="router", message_id=ack_id,
                                         event="acknowledgement", now=self.now())
        batch.outgoing.append((delivery_queue(recipient), Envelope(ack_id, body, {SIGNATURE: signature,
                                                                                   SENDER: "router"})))

    # -- running -----------------------------------------------------------------------------------
    def handle(self, delivery: Delivery) -> Decision | None:
        """Process one ingress delivery; ack only after the outcome is durable."""
        decisions = self.handle_batch([delivery])
        return decisions[0] if decisions else None

    def handle_batch(self, deliveries: list[Delivery]) -> list[Decision]:
        """Process ingress deliveries together; ack them only after every outcome is durable. If the batch
        fails, each is requeued (and counts toward the delivery limit)."""
        if len(deliveries) > 1 and sum(len(d.envelope.body) for d in deliveries) > MAX_BATCH_BYTES:
            return [decision for part in _by_bytes(deliveries, MAX_BATCH_BYTES) for decision in self.handle_batch(part)]
        try:
            decisions = self.process_batch([d.envelope for d in deliveries])
        except (RecoverableBrokerError, DirectoryExpired):  # a stale directory: stop, the messages wait
            for d in deliveries:
                d.reject(requeue=True)
            raise
        except Exception as exc:
            self._queues.clear()  # a queue may have gone since it was checked (Unroutable): ask again
            if len(deliveries) > 1:
                # One poison message must not take its batch-mates to the dead-letter queue with it.
                return [decision for d in deliveries for decision in self.handle_batch([d])]
            message_id = deliveries[0].envelope.message_id
            self._failures[message_id] = f"{type(exc).__name__}: {str(exc)[:200]}"
            log.exception("routing failed for %s; it will be retried up to the delivery limit", message_id)
            deliveries[0].reject(requeue=True)
            return []
        self.transport.ack_many(deliveries)
        return decisions

    def run(self, *, idle_timeout: float | None = 1.0, max_messages: int | None = None, batch_size: int = 100,
            should_stop: Callable[[], bool] = lambda: False, give_up_after: float | None = 3600,
            sleep: Callable[[float], object] = time.sleep) -> int:
        """Route ingress messages until none arrives for `idle_timeout` seconds (None: run until `should_stop`),
        taking up to `batch_size` waiting messages at a time.

        When the broker goes away (a restart, a network cut) the router reconnects, waiting 1, 2, 4 ... up to
        30 seconds between attempts and logging each; after `give_up_after` seconds without the broker it
        raises TransportUnavailable (the `sgx broker route` command then exits 1 with the reason).
        """
        handled, attempt, down_since = 0, 0, None

        def handle(batch: list[Delivery]) -> None:
            nonlocal handled, attempt, down_since
            self.handle_batch(batch)
            handled += len(batch)
            attempt, down_since = 0, None

        def idle() -> None:
            nonlocal attempt, down_since
            attempt, down_since = 0, None
            self.drain_dead_letters()
            self.prune_seen()

        def stop() -> bool:
            self.refresh_directory()  # before taking messages: raises once the directory has expired
            return should_stop()

        while True:
            try:
                consume(self.transport, INGRESS, handle, idle_timeout=idle_timeout,
                        max_messages=None if max_messages is None else max_messages - handled,
                        batch_size=batch_size, should_stop=stop, on_idle=idle)
                return handled
            except RecoverableBrokerError as exc:
                down_since = down_since or time.monotonic()
                attempt += 1
                waited = time.monotonic() - down_since
                if give_up_after is not None and waited >= give_up_after:
                    raise TransportUnavailable(f"the router gave up after {attempt} attempts over {waited:.0f} s "
                                               f"without the broker: {exc}") from exc
                delay = min(2.0 ** (attempt - 1), 30.0)
                log.warning("lost the broker (%s); reconnecting in %.0f s (attempt %d)", exc, delay, attempt)
                sleep(delay)

    def prune_seen(self, *, force: bool = False) -> int:
        """Forget message ids older than the retention period, and what was routed longer ago than a message can
        be answered (at most once an hour unless forced); returns how many ids were forgotten."""
        if not force and time.monotonic() - self._pruned_at < _PRUNE_EVERY_SECONDS:
            return 0
        self._pruned_at = time.monotonic()
        self.routed.prune(self.now() - timedelta(seconds=RESPONSE_WINDOW_SECONDS))
        return self.seen.prune(self.now() - timedelta(seconds=self.retention_seconds))

    def drain_dead_letters(self) -> int:
        """Account for every dead letter: an ingress message gets one more try on its own (it may only have
        shared a batch with a poison message); what still cannot be routed, and every delivery a recipient's
        node could not take, is audited and its original sender told (delivery failed, for which recipient,
        and why)."""
        count = 0
        while (delivery := self.transport.get(DEAD_LETTER)) is not None:
            self._account_for(delivery)
            count += 1
        return count

    def _account_for(self, delivery: Delivery) -> None:
        env = delivery.envelope
        queue = env.headers.get("x-death-queue", INGRESS)
        reason = env.headers.get("x-death-reason", "delivery_limit")
        header = _signed_header(env)
        if queue == INGRESS:
            failure = self._failures.pop(env.message_id, None)
            if not delivery.redelivered and failure is None:
                try:  # alone, once: a batch-mate of a poison message, or one caught in broker restarts
                    self.process(env)
                except RecoverableBrokerError:
                    delivery.reject(requeue=True)
                    raise
                except Exception as exc:  # noqa: BLE001 - the reason is recorded and the sender told
                    failure = f"{type(exc).__name__}: {str(exc)[:200]}"
                    log.exception("routing dead letter %s failed", env.message_id)
                else:
                    delivery.ack()
                    return
            # Who published it (the broker-checked user), not whom its header names.
            origin = env.headers.get(CONNECTION_USER, env.headers.get(SENDER, ""))
            message_id, recipients = env.message_id, []
            detail = f"dead-lettered ({reason}" + (f" after {failure})" if failure else ")")
        elif DELIVERY in env.headers:
            # A delivery its recipient's node refused or could not take. The broker names the router as its
            # publisher; the original sender is the signer of the message, whose header travels with it (only
            # the router publishes to delivery queues, and only messages whose signature it verified).
            recipient = queue.removeprefix("deliver.")
            if reason == "delivery_limit" and RETURNED not in env.headers and not delivery.redelivered:
                # The node crashed on it (or on its batch) until the limit: give it back once, so that a node
                # that crashed on a batch-mate, or restarted often, still gets it.
                headers = {k: env.headers[k] for k in (SIGNATURE, DELIVERY, DELIVERY_SIGNATURE) if k in env.headers}
                self.transport.publish(queue, Envelope(env.message_id, env.body, {**headers, RETURNED: "1"}))
                self.audit.append_many([audit_entry(
                    message_id=header.get("jti") or env.message_id, digest=hashlib.sha256(env.body).hexdigest(),
                    sender=header.get("iss", ""), event=header.get("sgx-evt", ""), recipients=[recipient],
                    decision="returned", reason=f"dead-lettered ({reason}); returned to {queue} once")])
                delivery.ack()
                return
            origin, message_id, recipients = header.get("iss", ""), header.get("jti") or env.message_id, [recipient]
            detail = f"recipient {recipient}: dead-lettered ({reason})"
        else:  # one of the router's own acknowledgements: audited, never answered (no loops)
            origin, message_id, recipients = "", env.message_id, [queue.removeprefix("deliver.")]
            detail = f"acknowledgement dead-lettered ({reason})"
        batch = _Batch()
        batch.audit.append(audit_entry(message_id=message_id, digest=hashlib.sha256(env.body).hexdigest(),
                                       sender=origin or env.headers.get(SENDER, ""),
                                       event=header.get("sgx-evt", ""), recipients=recipients,
                                       decision="dead-lettered", reason=detail))
        if origin in self.directory.participants and origin != "router":
            self._acknowledge(batch, origin, message_id, "delivery-failed",
                              [("error", "transient", "delivery-failed", detail)])
        if batch.outgoing:
            self.transport.publish_many(batch.outgoing)
        self.audit.append_many(batch.audit)
        delivery.ack()


def _by_bytes(deliveries: list[Delivery], limit: int) -> Iterator[list[Delivery]]:
    """Consecutive parts of a batch of at most `limit` message bytes (a larger message goes alone)."""
    part: list[Delivery] = []
    size = 0
    for d in deliveries:
        if part and size + len(d.envelope.body) > limit:
            yield part
            part, size = [], 0
        part.append(d)
        size += len(d.envelope.body)
    if part:
        yield part


def _signed_header(envelope: Envelope) -> dict:
    """The protected header of the message's signature, unverified ({} if unreadable)."""
    try:
        return signing.read_header(envelope.headers.get(SIGNATURE, ""))
    except SignatureRejected:
        return {}


def _signed_id(envelope: Envelope) -> str | None:
    """The message id a refused message's signature header names, if it can be read (for the audit)."""
    return _signed_header(envelope).get("jti")


def run_side_by_side(routers: list[Router], **run_options) -> int:
    """Run routers as competing consumers of the ingress queue, one thread each (each with its own transport
    connection and database connection, sharing one Claims); returns how many messages they routed. Their
    waits for broker confirms and disk syncs overlap, which is what limits one router. If a router stops on
    an error, the others are stopped and the error is raised (never a quiet return)."""
    counts = [0] * len(routers)
    errors: list[BaseException] = []
    stop = threading.Event()
    should_stop = run_options.pop("should_stop", lambda: False)

    def work(i: int) -> None:
        try:
            counts[i] = routers[i].run(should_stop=lambda: stop.is_set() or should_stop(), **run_options)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=work, args=(i,), name=f"router-{i + 1}") for i in range(len(routers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(counts)


def _refusal_detail(plan: routing.Plan) -> str:
    """Why no route could be made, naming the recipients not onboarded yet (no key): the sender then knows whom to
    wait for, and resends once they are (`sgx node resend`)."""
    detail = (plan.problem or "").removeprefix("no-recipients: ")
    if plan.unreachable:
        detail += f"; not onboarded yet (no key): {', '.join(plan.unreachable)}"
    return detail
