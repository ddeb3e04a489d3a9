"""The sender kit: the suite plays the exchange, asks the system under test to send each shipped scenario through
the vendor's command (`--sut-send "mysystem send {scenario} {config}"`), and judges what arrives on the ingress.

Each scenario's send command runs on its own, with a deadline; the kit answers what arrives as the router would,
and for three scenarios it plays a fault:

| scenario | what the kit does | what the system must do |
|---|---|---|
| SCN-PLC-01 | does not answer the first copy | send it again after its acknowledgement timeout, same id and content |
| SCN-INC-01 | rejects it (payload-invalid, with a reason) | not send it again; its command exits non-zero |
| SCN-CON-01 | the broker refuses publishes for a moment | try again until the broker confirms |
| the others | accepts it | not send it again; its command exits 0 |

What arrives (the first copy of each scenario) is also checked as the messages kit checks a folder: every layer
of the standard's validator, an id of its own, and the scenario's facts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from broker import signing
from broker.router import SENDER, SIGNATURE
from broker.transport.base import CONNECTION_USER
from conformance.exchange import PlayedExchange
from conformance.kits import messages as messages_kit
from conformance.kits.messages import MessagesContext
from conformance.model import Evidence, Group, Outcome, Suite, Test
from conformance.scenarios import FOLDER, scenarios
from conformance.sut import Process, command_of, tail
from standard.errors import SignatureRejected
from standard.validator import event_of

ACK_TIMEOUT = 4.0  # seconds the system waits for the exchange's answer before sending again (told in the config)
SEND_DEADLINE = 20.0  # seconds one send command may take, start-up included
SETTLE_SECONDS = 0.5  # after a command exits, how long the kit still listens for copies
MAX_COPIES = 50  # copies the kit reads for one scenario: a flood is cut here and fails
REFUSE_SECONDS = 1.0  # how long the broker goes on refusing publishes after it refused the first

MODES = {"SCN-PLC-01": "unconfirmed", "SCN-INC-01": "reject", "SCN-CON-01": "refused-publish"}
REJECTION = ("error", "invalid", "payload-invalid", "refused by the conformance kit on purpose: the system must not "
             "send this message again")


@dataclass
class Copy:
    """One message that arrived on the ingress."""

    message_id: str | None
    body: bytes
    headers: dict
    after_answer: bool  # arrived after the kit answered (accepted or rejected) this message
    at: float = field(default_factory=time.monotonic)


@dataclass
class Sent:
    """What happened to one scenario."""

    scenario: str
    mode: str
    copies: list[Copy] = field(default_factory=list)
    answer: str | None = None  # accepted | rejected, once the kit answered
    exit_code: int | None = None
    timed_out: bool = False
    said: str = ""
    flooded: bool = False
    refused: int = 0  # publishes the broker refused (the refused-publish scenario)


def _message_id(body: bytes) -> str | None:
    try:
        message = orjson.loads(body)
        value = message["identifier"]["value"]
        return value if isinstance(value, str) else None
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


class SenderContext:
    def __init__(self, exchange: PlayedExchange, send_command: str, *, selected: set[str] | None = None,
                 ack_timeout: float = ACK_TIMEOUT, deadline: float = SEND_DEADLINE, logs: Path | None = None):
        self.exchange, self.selected = exchange, selected
        self.ack_timeout, self.deadline = ack_timeout, deadline
        self.logs = logs or exchange.work / "logs"
        # Each scenario is sent as the participant it names: the kit issues the system each of those ids.
        self.senders = {s.id: s.sender for s in scenarios()}
        self.configs = {pid: exchange.write_config(pid, ack_timeout_seconds=ack_timeout,
                                                   send_deadline_seconds=deadline)
                        for pid in exchange.sut_ids}
        self.template = send_command
        command_of(send_command, "--sut-send", config="c", scenario="s")
        self.sent: dict[str, Sent] = {}
        self.by_id: dict[str, Sent] = {}
        self.process: Process | None = None
        self._messages: MessagesContext | None = None
        self.ran = False

    def start(self) -> None:
        pass

    def close(self) -> None:
        if self.process is not None:
            self.process.stop()

    # -- the run -------------------------------------------------------------------------------------------
    def chosen(self) -> list[str]:
        return [s.id for s in scenarios() if self.selected is None or s.id in self.selected]

    def run(self) -> None:
        if self.ran:
            return
        self.ran = True
        for scenario_id in self.chosen():
            self._send(scenario_id)
        self._listen(time.monotonic() + SETTLE_SECONDS, None)
        received = self.exchange.work / "received"
        received.mkdir(exist_ok=True)
        for sent in self.sent.values():
            if sent.copies:
                (received / f"{sent.scenario}.json").write_bytes(sent.copies[0].body)
        self._messages = MessagesContext(received, set(self.chosen()))

    def messages(self) -> MessagesContext:
        self.run()
        return self._messages

    def _send(self, scenario_id: str) -> None:
        sent = self.sent[scenario_id] = Sent(scenario_id, MODES.get(scenario_id, "accept"))
        argv = command_of(self.template, "--sut-send", config=str(self.configs[self.senders[scenario_id]]),
                          scenario=str(FOLDER / f"{scenario_id}.json"))
        refusing = sent.mode == "refused-publish"
        if refusing:
            self.exchange.refuse_publishes(True)
        self.process = Process(argv, self.logs, f"send-{scenario_id}")
        started = time.monotonic()
        self.process.start()
        try:
            refused_from = None  # the refusal lasts from the first publish refused
            while self.process.alive() and time.monotonic() < started + self.deadline:
                if refusing:
                    sent.refused += self.exchange.refused(timeout=0.05)
                    if sent.refused and refused_from is None:
                        refused_from = time.monotonic()
                    if (refused_from is not None and time.monotonic() > refused_from + REFUSE_SECONDS) or \
                            time.monotonic() > started + self.deadline / 2:
                        self.exchange.refuse_publishes(False)
                        refusing = False
                self._listen(time.monotonic() + 0.1, sent)
        finally:
            if refusing:
                self.exchange.refuse_publishes(False)
        if self.process.alive():
            sent.timed_out = True
            self.process.kill()
        sent.exit_code = self.process.proc.returncode
        sent.said = tail(self.process.stderr_file)
        self._listen(time.monotonic() + SETTLE_SECONDS, sent)

    def _listen(self, until: float, current: Sent | None) -> None:
        while time.monotonic() < until:
            envelope = self.exchange.take(timeout=0.05)
            if envelope is None:
                continue
            message_id = _message_id(envelope.body)
            owner = self.by_id.get(message_id) or current
            if owner is None:
                continue  # after every command ended, and not a copy of anything sent: nothing to judge it by
            if len(owner.copies) >= MAX_COPIES:
                owner.flooded = True
                continue
            owner.copies.append(Copy(message_id, envelope.body, dict(envelope.headers), owner.answer is not None))
            if message_id:
                self.by_id.setdefault(message_id, owner)
            self._answer(owner, message_id)

    def _answer(self, sent: Sent, message_id: str | None) -> None:
        if sent.answer is not None or message_id is None:
            return
        if sent.mode == "unconfirmed" and len(sent.copies) < 2:
            return  # the first copy goes unanswered: the system must send it again
        recipient = self.senders[sent.scenario]
        if sent.mode == "reject":
            self.exchange.acknowledge(message_id, "payload-invalid", [REJECTION], recipient=recipient)
            sent.answer = "rejected"
        else:
            self.exchange.acknowledge(message_id, "accepted", recipient=recipient)
            sent.answer = "accepted"


# -- the tests ------------------------------------------------------------------------------------------------
def _signature_problem(ctx: SenderContext, sent: Sent, copy: Copy) -> str | None:
    ex, headers, participant = ctx.exchange, copy.headers, ctx.senders[sent.scenario]
    try:
        signed = signing.verify(copy.body, headers.get(SIGNATURE, ""), ex.directory.public_key_for,
                                expected_sender=participant)
    except SignatureRejected as exc:
        return f"{type(exc).__name__}: {exc}"
    if headers.get(SENDER) != participant:
        return f"the {SENDER} header is {headers.get(SENDER)!r}, not the participant id the system was issued"
    if headers.get(CONNECTION_USER) != participant:
        return "the AMQP user_id property is not set to the system's participant id"
    if signed.message_id != copy.message_id:
        return "the signature's jti is not the message's Bundle.identifier"
    try:
        event = event_of(orjson.loads(copy.body))
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        event = None
    if signed.event != event:
        return f"the signature's sgx-evt {signed.event!r} is not the message's event"
    return None


def senders_of(selected: set[str] | None) -> list[str]:
    """The participant ids the kit issues the system: the senders of the scenarios it is asked to send."""
    return list(dict.fromkeys(s.sender for s in scenarios() if selected is None or s.id in selected))


def _nothing_sent(ctx: SenderContext) -> Outcome | None:
    if not any(s.copies for s in ctx.sent.values()):
        said = "; ".join(f"{s.scenario}: exit {s.exit_code}{', ' + s.said if s.said else ''}"
                         for s in ctx.sent.values())
        return Outcome.failed("nothing arrived on the ingress", [Evidence("the send commands", said[:600])])
    return None


def _signed(ctx: SenderContext) -> Outcome:
    ctx.run()
    if (nothing := _nothing_sent(ctx)) is not None:
        return nothing
    evidence = [Evidence(f"{s.scenario} {c.message_id}", problem) for s in ctx.sent.values() for c in s.copies
                if (problem := _signature_problem(ctx, s, c))]
    if evidence:
        return Outcome.failed(f"{len(evidence)} message(s) break the signature and header contract", evidence[:20])
    return Outcome.passed(f"{sum(len(s.copies) for s in ctx.sent.values())} message(s) signed as the contract says")


def _content(body: bytes) -> dict | None:
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(message, dict):
        message.pop("timestamp", None)  # a copy signed afresh may be stamped afresh
    return message


def _mode(ctx: SenderContext, mode: str) -> Sent | Outcome:
    ctx.run()
    found = next((s for s in ctx.sent.values() if s.mode == mode), None)
    if found is None:
        scenario = next(k for k, v in MODES.items() if v == mode)
        return Outcome.skipped(f"scenario {scenario}, which this test uses, was not selected (--scenario)")
    return found


def _resend_keeps_id(ctx: SenderContext) -> Outcome:
    sent = _mode(ctx, "unconfirmed")
    if isinstance(sent, Outcome):
        return sent
    where = f"{sent.scenario}"
    if len(sent.copies) < 2:
        return Outcome.failed(f"the message was not sent again when the exchange did not answer within "
                              f"{ctx.ack_timeout:g} s", [Evidence(where, f"{len(sent.copies)} copy arrived; exit "
                                                                  f"{sent.exit_code} {sent.said}".strip())])
    ids = {c.message_id for c in sent.copies}
    evidence = []
    if len(ids) > 1:
        evidence.append(Evidence(where, f"{len(ids)} different ids for one message: a copy sent again must keep "
                                 "its id"))
    contents = {orjson.dumps(_content(c.body), option=orjson.OPT_SORT_KEYS) for c in sent.copies}
    if len(ids) == 1 and len(contents) > 1:
        evidence.append(Evidence(where, "one id carried different content: an id names one message"))
    if evidence:
        return Outcome.failed("the copy sent again is not the same message", evidence)
    return Outcome.passed(f"sent {len(sent.copies)} times with one id and one content")


def _no_resend_after_acceptance(ctx: SenderContext) -> Outcome:
    ctx.run()
    if (nothing := _nothing_sent(ctx)) is not None:
        return nothing
    evidence = [Evidence(s.scenario, f"{sum(c.after_answer for c in s.copies)} copies after the exchange accepted "
                         "it") for s in ctx.sent.values() if s.answer == "accepted" and
                any(c.after_answer for c in s.copies)]
    evidence += [Evidence(s.scenario, f"more than {MAX_COPIES} copies: the kit stopped reading")
                 for s in ctx.sent.values() if s.flooded]
    if evidence:
        return Outcome.failed("messages were sent again after the exchange accepted them", evidence)
    accepted = sum(s.answer == "accepted" for s in ctx.sent.values())
    return Outcome.passed(f"{accepted} accepted message(s), none sent again")


def _rejection_handled(ctx: SenderContext) -> Outcome:
    sent = _mode(ctx, "reject")
    if isinstance(sent, Outcome):
        return sent
    if sent.answer is None:
        return Outcome.failed("nothing arrived to reject", [Evidence(sent.scenario, f"exit {sent.exit_code} "
                                                                     f"{sent.said}".strip())])
    evidence = []
    again = sum(c.after_answer for c in sent.copies)
    if again:
        evidence.append(Evidence(sent.scenario, f"sent {again} more time(s) after the exchange rejected it"))
    if sent.timed_out:
        evidence.append(Evidence(sent.scenario, f"the send command did not end within {ctx.deadline:g} s"))
    elif sent.exit_code == 0:
        evidence.append(Evidence(sent.scenario, "the send command exited 0 (success) for a rejected message"))
    if evidence:
        return Outcome.failed("the rejection was not acted on", evidence)
    return Outcome.passed(f"not sent again; the command exited {sent.exit_code}" +
                          (f" saying: {sent.said}" if sent.said else ""))


def _refused_publish_retried(ctx: SenderContext) -> Outcome:
    sent = _mode(ctx, "refused-publish")
    if isinstance(sent, Outcome):
        return sent
    if not sent.refused:
        return Outcome.failed("the broker refused no publish: the system published nothing while it was refusing "
                              f"(the first {ctx.deadline / 2:g} s)", [Evidence(sent.scenario, f"exit {sent.exit_code} "
                                                                     f"{sent.said}".strip())])
    if not sent.copies:
        return Outcome.failed(f"nothing arrived after the broker refused {sent.refused} publish(es)",
                              [Evidence(sent.scenario, f"exit {sent.exit_code} {sent.said}".strip())])
    if sent.exit_code != 0:
        return Outcome.failed("the message arrived but the send command did not report success",
                              [Evidence(sent.scenario, f"exit {sent.exit_code} {sent.said}".strip())])
    return Outcome.passed(f"the broker refused {sent.refused} publish(es); sent again until confirmed, then accepted")


def _commands_end(ctx: SenderContext) -> Outcome:
    ctx.run()
    evidence = []
    for s in ctx.sent.values():
        if s.timed_out:
            evidence.append(Evidence(s.scenario, f"the send command did not end within {ctx.deadline:g} s and "
                                     "was killed"))
        elif s.answer == "accepted" and s.exit_code != 0:
            evidence.append(Evidence(s.scenario, f"accepted, but the command exited {s.exit_code}"
                                     f"{': ' + s.said if s.said else ''}"))
        elif not s.copies:
            evidence.append(Evidence(s.scenario, f"nothing arrived; the command exited {s.exit_code}"
                                     f"{': ' + s.said if s.said else ''}"))
    if evidence:
        return Outcome.failed(f"{len(evidence)} send command(s) did not end as they should", evidence)
    return Outcome.passed(f"{len(ctx.sent)} send command(s) ended within {ctx.deadline:g} s, reporting the outcome")


def suite() -> Suite:
    contract = Group("contract", "What arrives is signed and addressed as the signature contract says")
    contract.test("SND-01", "Every message is signed by the system's key, with the headers the contract names",
                  ("SIG-001",))(_signed)
    standard = Group("standard", "What arrives passes every layer of the standard's validator")
    produced = Group("scenarios", "What arrives carries each scenario's facts")
    for group in messages_kit.suite().groups:
        target = standard if group.id == "standard" else produced
        for test in group.tests:
            target.add(Test(test.id, test.title, test.requirements,
                            lambda ctx, run=test.run: run(ctx.messages()), test.description))
    behaviour = Group("sending", "Sending again, and not")
    behaviour.test("SND-02", "A message sent again after no acknowledgement keeps its id and its content",
                   ("SND-001",))(_resend_keeps_id)
    behaviour.test("SND-03", "No message is sent again once the exchange has accepted it",
                   ("SND-001",))(_no_resend_after_acceptance)
    behaviour.test("SND-04", "A rejected message is not sent again and its rejection is reported",
                   ("SND-002",))(_rejection_handled)
    behaviour.test("SND-05", "A publish the broker refuses is tried again until it is confirmed",
                   ("SND-001",))(_refused_publish_retried)
    behaviour.test("SND-06", "Every send ends within its deadline, reporting success when accepted",
                   ("SND-002",))(_commands_end)
    return Suite("sender", "Sender kit", [contract, standard, produced, behaviour])
