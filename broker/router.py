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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from broker import db as sqlite_db
from broker import routing, signing
from broker.audit import AuditLog, Checkpoints
from broker.audit import entry as audit_entry
from broker.directory import Directory, LiveDirectory
from broker.keys import SigningKey
from broker.register import Register
from broker.transport import DEAD_LETTER, INGRESS, Delivery, Envelope, Transport, delivery_queue
from broker.transport.base import CONNECTION_USER, consume
from sgx import errors
from sgx.errors import DirectoryExpired, RecoverableBrokerError, SignatureRejected, Unroutable
from standard import catalogue as cat
from standard import compose
from standard.validator import HOT_PATH, Validator

STATE_FILE = "router.db"  # seen ids, the register and the audit chain, in an exchange folder
log = logging.getLogger("sgx.router")

SIGNATURE = "sgx-signature"
SENDER = "sgx-sender"
DELIVERY = "sgx-delivery"
DELIVERY_SIGNATURE = "sgx-delivery-signature"
DELIVERY_TYP = "sgx-delivery+jws"

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

    def __init__(self, path: Path | str | sqlite3.Connection):
        self.db = sqlite_db.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS seen (message_id TEXT PRIMARY KEY, digest TEXT NOT NULL)")

    def digest_of(self, message_id: str) -> str | None:
        row = self.db.execute("SELECT digest FROM seen WHERE message_id = ?", (message_id,)).fetchone()
        return row[0] if row else None

    def remember(self, entries: list[tuple[str, str]]) -> None:
        with sqlite_db.transaction(self.db):
            self.db.executemany("INSERT OR IGNORE INTO seen (message_id, digest) VALUES (?, ?)", entries)


@dataclass
class _Batch:
    """Everything a batch of routing decisions writes, so it is written together: deliveries and
    acknowledgements published (and confirmed) first, then the register, the seen ids and the audit."""

    outgoing: list[tuple[str, Envelope]] = field(default_factory=list)
    placements: list[tuple] = field(default_factory=list)
    seen: dict[str, str] = field(default_factory=dict)
    audit: list[str] = field(default_factory=list)


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

    def __init__(self, directory: Directory, transport: Transport, key: SigningKey,
                 db: Path | str | sqlite3.Connection, register_secret: bytes, *, validator: Validator | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC), window_seconds: int = 300,
                 claims: Claims | None = None, trust: LiveDirectory | None = None,
                 checkpoints: Checkpoints | None = None):
        """`directory` is followed (LiveDirectory) when it was loaded from its signed file; `trust` replaces
        that; `checkpoints` publishes the audit head after each batch and signs it at intervals."""
        self.directory, self.transport, self.key = directory, transport, key
        self.trust = trust or LiveDirectory(directory)
        self.checkpoints = checkpoints
        self.db = sqlite_db.connect(db)
        self.register, self.audit, self.seen = Register(self.db, register_secret), AuditLog(self.db), _Seen(self.db)
        self.validator = validator or Validator(HOT_PATH, now=now)  # the same verdict as full validation
        self.now = now
        self.window_seconds = window_seconds
        self.claims = claims or Claims()

    @classmethod
    def in_folder(cls, root: Path, directory: Directory, transport: Transport, key: SigningKey, **kwargs) -> Router:
        """The router of an exchange folder: its state in `router.db`, and the register's pseudonym secret in
        keys/register.secret (made on first use, mode 0600)."""
        secret = root / "keys" / "register.secret"
        if not secret.exists():
            secret.parent.mkdir(parents=True, exist_ok=True)
            secret.write_bytes(os.urandom(32))
            secret.chmod(0o600)
        kwargs.setdefault("checkpoints", Checkpoints(root, key))
        return cls(directory, transport, key, root / STATE_FILE, secret.read_bytes(), **kwargs)

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
                self.seen.remember(list(batch.seen.items()))
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
        refused = Decision(str(_signed_id(envelope) or envelope.message_id), identity, "", "rejected")
        known = identity in self.directory.participants
        if SIGNATURE not in envelope.headers:
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
        try:
            signed = signing.verify(body, envelope.headers[SIGNATURE],
                                    functools.partial(self.directory.public_key_for, checked_at=self.now()),
                                    expected_sender=identity or None, now=self.now(),
                                    window_seconds=self.window_seconds)
        except SignatureRejected as exc:
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
            return decision

        refusal = routing.authorise(facts, self.directory)
        if refusal:
            decision.reason = refusal
            return self._refuse(batch, decision, digest, notify=refusal != "unknown-sender")
        if any(r.of == "children-at-setting" for r in cat.get_event(facts.event).recipients):
            # This message's routing reads the register: apply the batch's placements so far first.
            self._flush_placements(batch)
        plan = routing.resolve(facts, self.directory, self.register, today=self.now().date())
        if plan.problem:
            decision.reason = "no-recipients"
            return self._refuse(batch, decision, digest, notify=True, detail=plan.problem)

        batch.outgoing += [(delivery_queue(route.participant), self._delivery(envelope, facts.message_id, route))
                           for route in plan.routes]
        if facts.event.startswith("placement-"):
            self._placements(facts, batch)
        batch.seen[facts.message_id] = digest
        decision.decision, decision.recipients = "accepted", [r.participant for r in plan.routes]
        notes = ([f"withheld from {','.join(plan.withheld)}"] if plan.withheld else []) + (
            [f"not onboarded: {','.join(plan.unreachable)}"] if plan.unreachable else [])
        batch.audit.append(audit_entry(message_id=facts.message_id, digest=digest, sender=facts.sender,
                                       event=facts.event, recipients=decision.recipients, decision="accepted",
                                       reason="; ".join(notes) or None))
        self._acknowledge(batch, facts.sender, facts.message_id, "accepted", [])
        return decision

    def _undeliverable(self, batch: _Batch, items: list[tuple[str, Envelope]]) -> None:
        """Audit each message that found no queue and tell its sender that delivery failed."""
        notices, told = _Batch(), set()
        for queue, envelope in items:
            sender = envelope.headers.get(SENDER, "")
            batch.audit.append(audit_entry(message_id=envelope.message_id,
                                           digest=hashlib.sha256(envelope.body).hexdigest(), sender=sender,
                                           event="", recipients=[], decision="undeliverable",
                                           reason=f"unroutable: no queue {queue}"))
            log.warning("message %s from %s not delivered: no queue %s", envelope.message_id, sender, queue)
            if sender in self.directory.participants and sender != "router" and envelope.message_id not in told:
                told.add(envelope.message_id)
                self._acknowledge(notices, sender, envelope.message_id, "delivery-failed",
                                  [("error", "transient", "delivery-failed", "unroutable: no queue for a recipient")])
        if notices.outgoing:
            try:
                self.transport.publish_many(notices.outgoing)
            except Unroutable:
                log.warning("could not tell %d sender(s) of undelivered messages: no queue", len(notices.outgoing))

    def _refuse(self, batch: _Batch, decision: Decision, digest: str, *, notify: bool,
                detail: str | None = None) -> Decision:
        reason = decision.reason if not detail else f"{decision.reason}: {detail}"
        batch.audit.append(audit_entry(message_id=decision.message_id, digest=digest, sender=decision.sender,
                                       event=decision.event, recipients=[], decision="rejected", reason=reason))
        log.warning("refused message %s from %s: %s", decision.message_id, decision.sender, reason)
        if notify and decision.sender in self.directory.participants:
            details = [("error", "invalid", decision.reason or "payload-invalid", f) for f in decision.findings]
            self._acknowledge(batch, decision.sender, decision.message_id, decision.reason or "payload-invalid",
                              details)
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
        try:
            decisions = self.process_batch([d.envelope for d in deliveries])
        except (RecoverableBrokerError, DirectoryExpired):  # a stale directory: stop, the messages wait
            for d in deliveries:
                d.reject(requeue=True)
            raise
        except Exception:
            if len(deliveries) > 1:
                # One poison message must not take its batch-mates to the dead-letter queue with it.
                return [decision for d in deliveries for decision in self.handle_batch([d])]
            log.exception("routing failed for %s; it will be retried up to the delivery limit",
                          deliveries[0].envelope.message_id)
            deliveries[0].reject(requeue=True)
            return []
        self.transport.ack_many(deliveries)
        return decisions

    def run(self, *, idle_timeout: float | None = 1.0, max_messages: int | None = None, batch_size: int = 100,
            should_stop: Callable[[], bool] = lambda: False) -> int:
        """Route ingress messages until none arrives for `idle_timeout` seconds (None: run until `should_stop`),
        taking up to `batch_size` waiting messages at a time."""
        def stop() -> bool:
            self.refresh_directory()  # before taking messages: raises once the directory has expired
            return should_stop()

        return consume(self.transport, INGRESS, self.handle_batch, idle_timeout=idle_timeout,
                       max_messages=max_messages, batch_size=batch_size, should_stop=stop,
                       on_idle=self.drain_dead_letters)

    def drain_dead_letters(self) -> int:
        """Tell the senders of dead-lettered messages that delivery failed, and audit it."""
        count = 0
        while (delivery := self.transport.get(DEAD_LETTER)) is not None:
            env = delivery.envelope
            sender = env.headers.get(SENDER, "")
            if env.headers.get("x-death-queue") == INGRESS and CONNECTION_USER in env.headers:
                sender = env.headers[CONNECTION_USER]  # who published it, not whom its header names
            reason = env.headers.get("x-death-reason", "delivery_limit")
            batch = _Batch()
            batch.audit.append(audit_entry(message_id=env.message_id, digest=hashlib.sha256(env.body).hexdigest(),
                                           sender=sender, event="", recipients=[], decision="dead-lettered",
                                           reason=reason))
            if sender in self.directory.participants and sender != "router":
                self._acknowledge(batch, sender, env.message_id, "delivery-failed",
                                  [("error", "transient", "delivery-failed", f"dead-lettered: {reason}")])
            if batch.outgoing:
                self.transport.publish_many(batch.outgoing)
            self.audit.append_many(batch.audit)
            delivery.ack()
            count += 1
        return count


def _signed_id(envelope: Envelope) -> str | None:
    """The message id a refused message's signature header names, if it can be read (for the audit)."""
    try:
        return signing.read_header(envelope.headers.get(SIGNATURE, "")).get("jti")
    except SignatureRejected:
        return None


def run_side_by_side(routers: list[Router], **run_options) -> int:
    """Run routers as competing consumers of the ingress queue, one thread each (each with its own transport
    connection and database connection, sharing one Claims); returns how many messages they routed. Their
    waits for broker confirms and disk syncs overlap, which is what limits one router."""
    counts = [0] * len(routers)

    def work(i: int) -> None:
        counts[i] = routers[i].run(**run_options)

    threads = [threading.Thread(target=work, args=(i,), name=f"router-{i + 1}") for i in range(len(routers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts)

