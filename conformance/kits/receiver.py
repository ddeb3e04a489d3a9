"""The receiver kit: the suite plays the exchange towards the system under test's queue and judges its business
acknowledgements.

It delivers, as the router does (the sender's signature, the router's signed delivery note): six valid messages
(one per shipped scenario), one of them again (a duplicate), a message changed after it was signed (forged), one
signed with a revoked key, one of a future version of an event, a placement's end before its start, and a last
valid message. The system must answer every message it takes with a signed acknowledgement message (`received`,
or `rejected` with a reason) within the deadline; forged and revoked ones never as accepted; the duplicate once.
Then one more message: the moment its acknowledgement arrives the system is killed, and it must still hold it.

Every wait has a deadline and every read a bound, so a system that hangs, crashes or floods the ingress fails
tests with the evidence, and never hangs the kit.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from broker import signing
from broker.router import SENDER, SIGNATURE
from broker.transport.base import CONNECTION_USER
from conformance.exchange import PlayedExchange
from conformance.model import Evidence, Group, Outcome, Suite
from conformance.sut import Process, command_of, run_once
from standard import artefacts
from standard.errors import SignatureRejected
from standard.validator import HOT_PATH, Validator, event_of
from standard.validator.findings import ERROR

DEFAULT_DEADLINE = 15.0  # seconds for each acknowledgement; the standard allows a working day (P1D)
SETTLE_SECONDS = 1.0  # after the last expected answer, how long the kit still listens for stray ones
MAX_INGRESS = 500  # messages the kit reads from the ingress in a run: a flood is cut here and fails
STORED_SECONDS = 30.0  # for the system's `stored` command
ACCEPTING = frozenset({"received", "accepted-for-action", "accepted"})

# The shipped scenarios' messages (built by the project from the scenarios' facts), delivered as valid messages.
VALID = ("placement-started-childrens-home", "placement-started-confidential", "placement-ended-allegation",
         "serious-incident-police", "allegation-referral-physical", "concern-notification-whistleblowing")
SENDERS = ("la-886", "provider-example-care", "ofsted")


def _bare(message_id: str) -> str:
    return message_id.removeprefix("urn:uuid:")


@dataclass
class Item:
    """One message the kit delivers, and what the system must do with it."""

    name: str
    body: bytes
    sender: str
    message_id: str
    event: str
    signature: str = ""


@dataclass
class SeenAck:
    """An acknowledgement the system published, as the kit found it."""

    answers: str | None  # the id of the message it answers (bare uuid), if it names one
    code: str | None
    reason: str | None
    signature_problem: str | None
    validity_problems: list[str]


def fresh(example: str, change: Callable[[dict], None] = lambda _: None) -> Item:
    """A shipped example with an id of its own (and `change` applied)."""
    message = orjson.loads((artefacts.EXAMPLES / f"{example}.json").read_bytes())
    message["identifier"]["value"] = f"urn:uuid:{uuid.uuid4()}"
    change(message)
    header = message["entry"][0]["resource"]
    return Item(example, orjson.dumps(message), header["sender"]["identifier"]["value"],
                message["identifier"]["value"], header["eventCoding"]["code"])


def _child(local_id: str) -> Callable[[dict], None]:
    def change(message: dict) -> None:
        text = orjson.dumps(message).replace(b'"C00001"', f'"{local_id}"'.encode())
        message.clear()
        message.update(orjson.loads(text))
    return change


def _future_version(message: dict) -> None:
    header = message["entry"][0]["resource"]
    header["definition"] = header["definition"].split("|")[0] + "|9.0.0"


def _forge(item: Item) -> None:
    """Change the message after it was signed (the signature no longer covers what arrives)."""
    item.body = item.body.replace(b'"gender":"male"', b'"gender":"female"', 1) if b'"gender":"male"' in item.body \
        else item.body.replace(b'"gender":"female"', b'"gender":"male"', 1)


class ReceiverContext:
    """The exchange, the running system and everything seen from it; the tests read from here."""

    def __init__(self, exchange: PlayedExchange, run_command: str, stored_command: str | None = None, *,
                 deadline: float = DEFAULT_DEADLINE, logs: Path | None = None):
        self.exchange, self.deadline = exchange, deadline
        self.logs = logs or exchange.work / "logs"
        config = exchange.write_config(ack_deadline_seconds=deadline)
        self.run_argv = command_of(run_command, "--sut-run", config=str(config))
        self.stored_argv = command_of(stored_command, "--sut-stored", config=str(config)) if stored_command \
            else None
        self.process = Process(self.run_argv, self.logs, "sut")
        self.validator = Validator(HOT_PATH)
        self.items: dict[str, Item] = {}
        self.acks: list[SeenAck] = []
        self.strays = 0  # messages on the ingress that are not acknowledgements of ours
        self.flooded = False
        self.waited = False
        self.stored_ids: list[str] | None = None
        self.stored_problem: str | None = None
        self.alive_after_delivery = False
        self.crash: dict = {}

    # -- the run -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.process.start()

    def close(self) -> None:
        self.process.stop()

    def _plan(self) -> list[Item]:
        ex = self.exchange
        valid = [fresh(name) for name in VALID]
        forged = fresh("placement-started-childrens-home")
        revoked = fresh("placement-started-childrens-home")
        future = fresh("placement-started-childrens-home", _future_version)
        ended = fresh("placement-ended-allegation", _child("C09001"))
        started = fresh("placement-started-childrens-home", _child("C09001"))
        last = fresh("concern-notification-whistleblowing")
        for item in [*valid, forged, future, ended, started, last]:
            item.signature = ex.sign(item.body, item.sender, item.message_id, item.event)
        revoked.signature = ex.sign(revoked.body, revoked.sender, revoked.message_id, revoked.event,
                                    key=ex.revoked[revoked.sender])
        _forge(forged)
        duplicate = Item("duplicate", valid[0].body, valid[0].sender, valid[0].message_id, valid[0].event,
                         valid[0].signature)
        self.items = {"valid": valid, "duplicate": duplicate, "forged": forged, "revoked": revoked,
                      "future": future, "ended": ended, "started": started, "last": last}
        return [*valid, duplicate, forged, revoked, future, ended, started, last]

    def wait(self) -> None:
        """Deliver everything, then read acknowledgements until every message that must be answered is, or the
        deadline passes; then listen a moment longer for stray answers (to the duplicate, the forged)."""
        if self.waited:
            return
        self.waited = True
        order = self._plan()
        self.exchange.deliver([(i.body, i.sender, i.message_id, i.signature) for i in order])
        must_answer = {_bare(i.message_id) for i in [*self.items["valid"], self.items["future"],
                                                      self.items["ended"], self.items["started"],
                                                      self.items["last"]]}
        self._read_until(lambda: must_answer <= self.answered(), time.monotonic() + self.deadline)
        self.alive_after_delivery = self.process.alive()
        self.stored_ids, self.stored_problem = self._stored()

    def _read_until(self, done: Callable[[], bool], deadline: float, *, settle: float = SETTLE_SECONDS) -> None:
        settle_until = None
        while True:
            now = time.monotonic()
            if settle_until is None and done():
                settle_until = now + settle
            if now >= (settle_until or deadline) or self.flooded:
                return
            if settle_until is None and not self.process.alive():
                return  # nothing more will come
            envelope = self.exchange.take(timeout=0.05)
            if envelope is not None:
                self._record(envelope)

    def answered(self, accepting: bool | None = None) -> set[str]:
        return {a.answers for a in self.acks if a.answers and (accepting is None or (a.code in ACCEPTING) is accepting)}

    def _record(self, envelope) -> None:
        if len(self.acks) + self.strays >= MAX_INGRESS:
            self.flooded = True
            return
        problems: list[str] = []
        try:
            message = orjson.loads(envelope.body)
            if not isinstance(message, dict) or event_of(message) != "acknowledgement":
                self.strays += 1
                return
        except (orjson.JSONDecodeError, TypeError, KeyError, IndexError, AttributeError):
            self.strays += 1
            return
        problems = [f"{f.code} at {f.location}: {f.message}" for f in self.validator.iter_findings(envelope.body)
                    if f.severity == ERROR]
        answers, code, reason = _answer(message)
        self.acks.append(SeenAck(answers, code, reason, self._signature_problem(envelope, message), problems))

    def _signature_problem(self, envelope, message: dict) -> str | None:
        ex, headers = self.exchange, envelope.headers
        try:
            signed = signing.verify(envelope.body, headers.get(SIGNATURE, ""), ex.directory.public_key_for,
                                    expected_sender=ex.participant)
        except SignatureRejected as exc:
            return f"{type(exc).__name__}: {exc}"
        if headers.get(SENDER) != ex.participant:
            return f"the {SENDER} header is {headers.get(SENDER)!r}, not the system's participant id"
        if headers.get(CONNECTION_USER) not in ("", None, ex.participant):
            return "the AMQP user_id is not the system's participant id"
        if signed.message_id != message.get("identifier", {}).get("value"):
            return "the signature's jti is not the acknowledgement's Bundle.identifier"
        if signed.event != "acknowledgement":
            return f"the signature's sgx-evt is {signed.event!r}, not 'acknowledgement'"
        return None

    def _stored(self) -> tuple[list[str] | None, str | None]:
        if self.stored_argv is None:
            return None, None
        done = run_once(self.stored_argv, timeout=STORED_SECONDS, logs=self.logs, name="stored")
        if done.code != 0:
            return None, f"the stored command failed: {done.describe()}"
        try:
            ids = orjson.loads(done.stdout)
        except orjson.JSONDecodeError:
            return None, "the stored command did not print a JSON array of message ids"
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return None, "the stored command did not print a JSON array of message ids (strings)"
        return [_bare(i) for i in ids], None

    def all_items(self) -> list[Item]:
        return [i for v in self.items.values() for i in (v if isinstance(v, list) else [v])]

    def crash_after_acknowledgement(self) -> dict:
        """Deliver one more message; kill the system the moment its acceptance arrives; ask what it holds."""
        if self.crash:
            return self.crash
        self.wait()
        item = fresh("serious-incident-police")
        item.signature = self.exchange.sign(item.body, item.sender, item.message_id, item.event)
        self.items["crash"] = item
        self.crash = {"alive": self.process.alive(), "evidence": self.process.exit_evidence()}
        if not self.crash["alive"]:
            return self.crash
        self.exchange.deliver([(item.body, item.sender, item.message_id, item.signature)])
        wanted = _bare(item.message_id)
        self._read_until(lambda: wanted in self.answered(accepting=True), time.monotonic() + self.deadline,
                         settle=0)
        self.crash["acknowledged"] = wanted in self.answered(accepting=True)
        self.process.kill()
        self.crash["stored"], self.crash["problem"] = self._stored()
        return self.crash


def _answer(message: dict) -> tuple[str | None, str | None, str | None]:
    """(the message answered, the outcome code, the reason) of an acknowledgement, as far as it says them."""
    with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
        header = message["entry"][0]["resource"]
        answers = header.get("response", {}).get("identifier")
        outcome = next((e["resource"] for e in message["entry"]
                        if e.get("resource", {}).get("resourceType") == "OperationOutcome"), {})
        issues = outcome.get("issue", [])
        code = next((c.get("code") for i in issues for c in i.get("details", {}).get("coding", [])), None)
        reason = "; ".join(i["diagnostics"] for i in issues if i.get("diagnostics")) or None
        return (_bare(answers) if isinstance(answers, str) else None), code, reason
    return None, None, None


# -- the tests ------------------------------------------------------------------------------------------------
def _acks_for(ctx: ReceiverContext, item: Item) -> list[SeenAck]:
    return [a for a in ctx.acks if a.answers == _bare(item.message_id)]


def _unanswered(ctx: ReceiverContext, item: Item, label: str) -> Evidence:
    why = f"no acknowledgement within {ctx.deadline:g} s"
    if ctx.flooded:
        why = f"no acknowledgement read: the kit stopped reading the ingress after {MAX_INGRESS} messages (a flood)"
    elif not ctx.alive_after_delivery:
        why += f" ({ctx.process.exit_evidence()})"
    return Evidence(f"{label} {item.message_id}", why)


def _silence(ctx: ReceiverContext) -> Evidence:
    return Evidence("ingress", f"nothing published within {ctx.deadline:g} s of the deliveries; "
                    f"{ctx.process.exit_evidence()}")


def _accepted(ctx: ReceiverContext, items: list[tuple[str, Item]]) -> list[Evidence]:
    evidence = []
    for label, item in items:
        acks = _acks_for(ctx, item)
        if not acks:
            evidence.append(_unanswered(ctx, item, label))
        elif not any(a.code in ACCEPTING for a in acks):
            evidence.append(Evidence(f"{label} {item.message_id}", f"acknowledged as {acks[0].code!r}"
                                     f"{': ' + acks[0].reason if acks[0].reason else ''}; the message is valid"))
    return evidence


def _valid_acknowledged(ctx: ReceiverContext) -> Outcome:
    ctx.wait()
    evidence = _accepted(ctx, [(f"{i.name} ({i.event})", i) for i in ctx.items["valid"]])
    if evidence:
        return Outcome.failed(f"{len(evidence)} of {len(ctx.items['valid'])} valid messages not acknowledged as "
                              "received", evidence)
    return Outcome.passed(f"{len(ctx.items['valid'])} valid messages acknowledged as received")


def _signed(ctx: ReceiverContext) -> Outcome:
    ctx.wait()
    if not ctx.acks:
        return Outcome.failed("no acknowledgement arrived to check", [_silence(ctx)])
    bad = [a for a in ctx.acks if a.signature_problem]
    if bad:
        return Outcome.failed(f"{len(bad)} of {len(ctx.acks)} acknowledgements break the signature contract",
                              [Evidence(f"acknowledgement of {a.answers}", a.signature_problem) for a in bad[:10]])
    return Outcome.passed(f"{len(ctx.acks)} acknowledgements signed by the system's key as the contract says")


def _valid_acks(ctx: ReceiverContext) -> Outcome:
    ctx.wait()
    if not ctx.acks:
        return Outcome.failed("no acknowledgement arrived to check", [_silence(ctx)])
    sent = {_bare(i.message_id) for i in ctx.all_items()}
    evidence = []
    for a in ctx.acks:
        where = f"acknowledgement of {a.answers}"
        evidence += [Evidence(where, p) for p in a.validity_problems[:3]]
        if a.answers not in sent:
            evidence.append(Evidence(where, "MessageHeader.response.identifier names no message the kit sent"))
        if a.code is None:
            evidence.append(Evidence(where, "the OperationOutcome carries no acknowledgement code"))
    if evidence:
        return Outcome.failed(f"{len(evidence)} problem(s) in the acknowledgements", evidence[:20])
    return Outcome.passed(f"{len(ctx.acks)} acknowledgements valid, each naming a message it was sent")


def _duplicate_acknowledged_once(ctx: ReceiverContext) -> Outcome:
    ctx.wait()
    item = ctx.items["duplicate"]
    acks = _acks_for(ctx, item)
    if len(acks) != 1:
        return Outcome.failed(f"a message delivered twice was acknowledged {len(acks)} times",
                              [Evidence(f"duplicate {item.message_id}", f"{len(acks)} acknowledgements")])
    return Outcome.passed("delivered twice, acknowledged once")


def _stored_problem(ctx: ReceiverContext) -> Outcome | None:
    if ctx.stored_argv is None:
        return Outcome.skipped("no --sut-stored command: the kit cannot see what the system holds")
    if ctx.stored_problem:
        return Outcome.failed(ctx.stored_problem, [Evidence("--sut-stored", ctx.stored_problem)])
    return None


def _duplicate_applied_once(ctx: ReceiverContext) -> Outcome:
    ctx.wait()
    if (problem := _stored_problem(ctx)) is not None:
        return problem
    item = ctx.items["duplicate"]
    held = ctx.stored_ids.count(_bare(item.message_id))
    if held != 1:
        return Outcome.failed(f"a message delivered twice is held {held} times",
                              [Evidence(f"duplicate {item.message_id}", f"the stored command lists it {held} times")])
    return Outcome.passed("delivered twice, held once")


def _never_accepted(key: str, what: str):
    def run(ctx: ReceiverContext) -> Outcome:
        ctx.wait()
        item = ctx.items[key]
        evidence = [Evidence(f"{key} {item.message_id}", f"acknowledged as {a.code!r}: {what} was accepted")
                    for a in _acks_for(ctx, item) if a.code in ACCEPTING]
        if ctx.stored_ids is not None and _bare(item.message_id) in ctx.stored_ids:
            evidence.append(Evidence(f"{key} {item.message_id}", f"the system holds it: {what} was stored"))
        if ctx.stored_problem:
            evidence.append(Evidence("--sut-stored", ctx.stored_problem))
        if evidence:
            return Outcome.failed(f"{what} was not refused", evidence)
        refused = [a.code for a in _acks_for(ctx, item)]
        return Outcome.passed(f"not accepted ({'acknowledged as ' + refused[0] if refused else 'not acknowledged'})")
    return run


def _future_rejected(ctx: ReceiverContext) -> Outcome:
    ctx.wait()
    item = ctx.items["future"]
    acks = _acks_for(ctx, item)
    if not acks:
        return Outcome.failed("a message of an unknown event version was not answered",
                              [_unanswered(ctx, item, "future version")])
    if any(a.code in ACCEPTING for a in acks):
        return Outcome.failed("a message of an unknown event version was accepted",
                              [Evidence(f"future version {item.message_id}", "acknowledged as accepted; the system "
                                        "cannot know what version 9.0.0 of the event means")])
    if not all(a.reason for a in acks):
        return Outcome.failed("rejected without a reason", [Evidence(
            f"future version {item.message_id}", "the OperationOutcome's issue has no diagnostics")])
    return Outcome.passed(f"rejected ({acks[0].code}) with a reason")


def _out_of_order(ctx: ReceiverContext) -> Outcome:
    ctx.wait()
    evidence = _accepted(ctx, [("placement-ended (first)", ctx.items["ended"]),
                               ("placement-started (second)", ctx.items["started"])])
    if evidence:
        return Outcome.failed("placement events that arrived out of order were not both accepted", evidence)
    return Outcome.passed("a placement's end that arrived before its start: both accepted")


def _stays_up(ctx: ReceiverContext) -> Outcome:
    ctx.wait()
    evidence = []
    if not ctx.alive_after_delivery:
        evidence.append(Evidence("the system's process", ctx.process.exit_evidence()))
    sent = {_bare(i.message_id) for i in ctx.all_items()}
    unknown = [a for a in ctx.acks if a.answers and a.answers not in sent]
    if unknown:
        evidence.append(Evidence("ingress", f"{len(unknown)} acknowledgement(s) of messages the kit never sent"))
    if ctx.flooded:
        evidence.append(Evidence("ingress", f"more than {MAX_INGRESS} messages published: the kit stopped reading"))
    if ctx.strays:
        evidence.append(Evidence("ingress", f"{ctx.strays} message(s) that are not acknowledgements"))
    if evidence:
        return Outcome.failed("the system did not stay up answering only what it was sent", evidence)
    return Outcome.passed(f"running after {len(sent)} deliveries; {len(ctx.acks)} acknowledgements, no strays")


def _stored_before_acknowledged(ctx: ReceiverContext) -> Outcome:
    if ctx.stored_argv is None:
        return Outcome.skipped("no --sut-stored command: the kit cannot see what the system holds")
    crash = ctx.crash_after_acknowledgement()
    item = ctx.items.get("crash")
    if not crash["alive"]:
        return Outcome.failed("the system was not running", [Evidence("the system's process", crash["evidence"])])
    if not crash["acknowledged"]:
        return Outcome.failed("the message was not acknowledged as received", [_unanswered(ctx, item, "message")])
    if crash["problem"]:
        return Outcome.failed(crash["problem"], [Evidence("--sut-stored", crash["problem"])])
    if _bare(item.message_id) not in crash["stored"]:
        return Outcome.failed("acknowledged as received but not held", [Evidence(
            f"message {item.message_id}", "killed the moment its acknowledgement arrived, the system did not "
            "hold it: it acknowledged before storing")])
    return Outcome.passed("killed the moment it acknowledged, the system still held the message")


def suite() -> Suite:
    answer = Group("acknowledge", "Every message the system takes is answered with a signed acknowledgement")
    answer.test("RCV-01", "Each valid message is acknowledged as received within the deadline",
                ("RCV-001",))(_valid_acknowledged)
    answer.test("RCV-02", "Acknowledgements are signed by the system's key under the signature contract",
                ("SIG-001",))(_signed)
    answer.test("RCV-03", "Acknowledgements are valid messages naming the message they answer",
                ("ACK-001", "MSG-001"))(_valid_acks)
    once = Group("once", "A message is held and answered once, and only after it is held")
    once.test("RCV-04", "A message delivered twice is acknowledged once", ("RCV-002",))(_duplicate_acknowledged_once)
    once.test("RCV-05", "A message delivered twice is held once", ("RCV-002",))(_duplicate_applied_once)
    refuse = Group("refuse", "What must not be accepted is not")
    refuse.test("RCV-06", "A message changed after it was signed is never accepted",
                ("SIG-002",))(_never_accepted("forged", "a forged message"))
    refuse.test("RCV-07", "A message signed with a revoked key is never accepted",
                ("SIG-002",))(_never_accepted("revoked", "a message signed with a revoked key"))
    refuse.test("RCV-08", "A message of an unknown version of an event is rejected with a reason",
                ("RCV-003",))(_future_rejected)
    robust = Group("robust", "Order, crashes and floods")
    robust.test("RCV-09", "Placement events that arrive out of order are both accepted", ("RCV-003",))(_out_of_order)
    robust.test("RCV-10", "The system stays up and answers only what it was sent", ("RCV-001",))(_stays_up)
    robust.test("RCV-11", "A message acknowledged as received is held, even if the system dies at once",
                ("RCV-002",))(_stored_before_acknowledged)
    return Suite("receiver", "Receiver kit", [answer, once, refuse, robust])
