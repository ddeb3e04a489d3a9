"""Acting on a message from the web inbox, on a real exchange (embedded transport, the real router): reading it
tells the sender, acknowledging and recording a decision go back to the sender as signed messages and show in its
view; notes and assignments stay local; a form without its CSRF token is refused and sends nothing (its broken
twin, without CSRF protection, sends); unacknowledged past the event's deadline is overdue in the list."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher

from broker.inbox import users
from broker.inbox.actions import Responder
from broker.inbox.app import create_app
from broker.inbox.store import Filters, InboxStore
from sgx import demo as scenario
from sgx.demo import PROVIDER, demo_network
from standard import catalogue as cat
from standard import compose

PASSWORD = "correct horse battery staple"
HTTPS = "https://localhost"


class Clock:
    def __init__(self):
        self.at = datetime.now(UTC)

    def __call__(self):
        return self.at


_opened: list[Responder] = []


def _responder(*args, **options) -> Responder:
    """A Responder whose sender thread the test's end stops (else it would go on trying every half minute)."""
    responder = Responder(*args, **options)
    _opened.append(responder)
    return responder


@pytest.fixture(autouse=True)
def _stop_responders():
    yield
    while _opened:
        _opened.pop().close()


@pytest.fixture
def exchange(tmp_path, monkeypatch):
    """The provider's serious incident routed to Doncaster (la-371), whose inbox serves it with a responder."""
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
    network = demo_network(tmp_path)
    transport = network.transport()
    sender = network.outbox(PROVIDER)
    sent = sender.add(scenario.serious_incident("la-886", 1))
    sender.drain(transport)
    network.router(transport).run(idle_timeout=0)
    network.node("la-371", transport).run(idle_timeout=0)
    clock = Clock()
    store = InboxStore(tmp_path / "inbox" / "la-371.web.db", tmp_path / "inbox" / "la-371.db", now=clock)
    users.add_user(store, "lado@example.org", "Lee Officer", "officer", PASSWORD)
    users.add_user(store, "colleague@example.org", "Cal Colleague", "officer", PASSWORD)
    responder = _responder(network.outbox("la-371"), lambda: transport)
    app = create_app(store, "la-371", key=b"k" * 32, now=clock, responder=responder)
    yield network, transport, app, store, clock, sent, responder
    responder.close()  # before the transport it sends on
    transport.close()


def _token(page: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()


def _signed_in(app):
    client = app.test_client()
    page = client.get("/sign-in", base_url=HTTPS).data
    client.post("/sign-in", base_url=HTTPS, headers={"Referer": f"{HTTPS}/sign-in"},
                data={"email": "lado@example.org", "password": PASSWORD, "csrf_token": _token(page)})
    return client


def _post(client, path, data, *, token=True):
    page = client.get(path.rsplit("/", 1)[0], base_url=HTTPS).data
    return client.post(path, base_url=HTTPS, headers={"Referer": f"{HTTPS}/"},
                       data={**data, **({"csrf_token": _token(page)} if token else {})})


def _senders_view(network, transport, sent):
    network.router(transport).run(idle_timeout=0)
    node = network.node(PROVIDER, transport)
    node.run(idle_timeout=0)
    outbox = network.outbox(PROVIDER)
    outbox.record_acknowledgements(node)
    outbox.record_responses(node)
    return {s.recipient: s for s in outbox.accountable(sent)}


def test_read_acknowledge_and_decide_reach_the_senders_view(exchange):
    network, transport, app, store, _, sent, responder = exchange
    client = _signed_in(app)
    page = client.get(f"/messages/{sent}", base_url=HTTPS)
    assert page.status_code == 200 and b'id="acknowledge"' in page.data
    assert responder.flush()  # the read receipt goes on the responder's own thread
    assert _senders_view(network, transport, sent)["la-371"].latest == "read"
    done = _post(client, f"/messages/{sent}/acknowledge", {})
    assert done.status_code == 302 and "done=acknowledged" in done.headers["Location"]
    done = _post(client, f"/messages/{sent}/decision", {"decision": "visit-arranged", "text": "Visit on Monday."})
    assert "done=decided" in done.headers["Location"]
    doncaster = _senders_view(network, transport, sent)["la-371"]
    assert doncaster.latest == "decided" and "acknowledged" in doncaster.steps
    assert doncaster.steps["decided"][1] == "Visit to the setting arranged: Visit on Monday."
    assert store.list(Filters(status="decided"))[0].message_id == sent
    page = client.get(f"/messages/{sent}?done=decided", base_url=HTTPS).data.decode()
    assert "Your decision is recorded" in page
    assert "lado@example.org decided: Visit to the setting arranged: Visit on Monday." in page


def test_assign_and_note_stay_local(exchange):
    network, transport, app, store, _, sent, responder = exchange
    client = _signed_in(app)
    client.get(f"/messages/{sent}", base_url=HTTPS)
    queued = responder.outbox.db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    _post(client, f"/messages/{sent}/assign", {"colleague": "colleague@example.org"})
    _post(client, f"/messages/{sent}/note", {"text": "Call the home manager."})
    assert responder.outbox.db.execute("SELECT count(*) FROM outbox").fetchone()[0] == queued  # nothing sent
    assert store.assigned_to(sent) == "colleague@example.org"
    assert [a[2] for a in store.actions(sent)] == ["assigned", "noted"]


def test_a_decision_without_a_choice_is_shown_as_an_error_and_sends_nothing(exchange):
    _, _, app, _, _, sent, responder = exchange
    client = _signed_in(app)
    client.get(f"/messages/{sent}", base_url=HTTPS)
    queued = responder.outbox.db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    refused = _post(client, f"/messages/{sent}/decision", {"text": "no choice"})
    assert refused.status_code == 400 and b"Select the decision or action" in refused.data
    assert b"govuk-error-summary" in refused.data
    assert responder.outbox.db.execute("SELECT count(*) FROM outbox").fetchone()[0] == queued


def test_an_action_without_its_csrf_token_is_refused_and_sends_nothing(exchange):
    _, _, app, store, _, sent, responder = exchange
    client = _signed_in(app)
    client.get(f"/messages/{sent}", base_url=HTTPS)
    queued = responder.outbox.db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    refused = _post(client, f"/messages/{sent}/acknowledge", {}, token=False)
    assert refused.status_code == 400
    assert responder.outbox.db.execute("SELECT count(*) FROM outbox").fetchone()[0] == queued
    assert store.actions(sent) == []
    # Broken twin: without CSRF protection the same forged form acknowledges in the officer's name.
    app.config["WTF_CSRF_ENABLED"] = False
    forged = _post(client, f"/messages/{sent}/acknowledge", {}, token=False)
    assert forged.status_code == 302
    assert responder.outbox.db.execute("SELECT count(*) FROM outbox").fetchone()[0] == queued + 1


def test_another_organisations_message_cannot_be_acted_on(exchange):
    _, _, app, _, _, _, _ = exchange
    client = _signed_in(app)
    missing = _post(client, "/messages/urn:uuid:00000000-0000-4000-8000-00000000beef/acknowledge", {})
    assert missing.status_code == 404


def test_unacknowledged_past_the_deadline_is_overdue_and_acknowledging_clears_it(exchange):
    _, _, app, store, clock, sent, _ = exchange
    store.sync()
    assert store.counts()["overdue"] == 0
    # Serious incidents are acknowledged within a working day; received no later than now, so due no later than:
    clock.at = cat.get_event("serious-incident").acknowledge_by(clock.at) + timedelta(minutes=1)
    assert store.counts()["overdue"] == 1 and store.list(Filters(status="overdue"))[0].status == "overdue"
    client = _signed_in(app)
    listed = client.get("/?status=overdue", base_url=HTTPS).data
    assert b">overdue</strong>" in listed
    _post(client, f"/messages/{sent}/acknowledge", {})
    assert store.counts()["overdue"] == 0 and store.list()[0].status == "acknowledged"


def test_the_sent_pages_show_each_recipients_state(exchange):
    network, transport, app, _, _, sent, _ = exchange
    client = _signed_in(app)
    _post(client, f"/messages/{sent}/acknowledge", {})
    network.router(transport).run(idle_timeout=0)
    network.node(PROVIDER, transport).run(idle_timeout=0)
    users.add_user(InboxStore(network.root / "inbox" / f"{PROVIDER}.web.db", network.root / "inbox" /
                              f"{PROVIDER}.db"), "care@example.org", "Cara Provider", "officer", PASSWORD)
    store = InboxStore(network.root / "inbox" / f"{PROVIDER}.web.db", network.root / "inbox" / f"{PROVIDER}.db")
    app = create_app(store, PROVIDER, key=b"p" * 32, responder=_responder(network.outbox(PROVIDER),
                                                                         lambda: transport))
    client = app.test_client()
    page = client.get("/sign-in", base_url=HTTPS).data
    client.post("/sign-in", base_url=HTTPS, headers={"Referer": f"{HTTPS}/sign-in"},
                data={"email": "care@example.org", "password": PASSWORD, "csrf_token": _token(page)})
    listed = client.get("/sent", base_url=HTTPS).data.decode()
    assert "Serious incident" in listed and ">acknowledged</strong>" in listed
    shown = client.get(f"/sent/{sent}", base_url=HTTPS).data.decode()
    assert 'id="recipient-la-371"' in shown and ">acknowledged</strong>" in shown
    assert client.get("/sent/urn:uuid:00000000-0000-4000-8000-00000000beef", base_url=HTTPS).status_code == 404
    # Doncaster's own Sent list shows none of its acknowledgements (read, acknowledged): they are not its mail.
    assert [e for _, e, _, _ in network.outbox("la-371").sent()] == []
    # The provider's own list shows no acknowledgements as mail.
    assert "Acknowledgement" not in client.get("/", base_url=HTTPS).data.decode()


def test_the_sender_reads_a_decision_as_a_case_note_linked_to_its_message(exchange):
    network, transport, app, _, _, sent, _ = exchange
    client = _signed_in(app)
    _post(client, f"/messages/{sent}/decision", {"decision": "referred-to-police", "text": "<b>Referred</b>"})
    network.router(transport).run(idle_timeout=0)
    network.node(PROVIDER, transport).run(idle_timeout=0)
    store = InboxStore(network.root / "inbox" / f"{PROVIDER}.web.db", network.root / "inbox" / f"{PROVIDER}.db")
    users.add_user(store, "care@example.org", "Cara Provider", "officer", PASSWORD)
    provider = create_app(store, PROVIDER, key=b"p" * 32,
                          responder=_responder(network.outbox(PROVIDER), lambda: transport))
    client = provider.test_client()
    page = client.get("/sign-in", base_url=HTTPS).data
    client.post("/sign-in", base_url=HTTPS, headers={"Referer": f"{HTTPS}/sign-in"},
                data={"email": "care@example.org", "password": PASSWORD, "csrf_token": _token(page)})
    store.sync()
    decision = store.list(Filters(event="decision-recorded"))[0]
    page = client.get(f"/messages/{decision.message_id}", base_url=HTTPS).data.decode()
    assert "Referred to the police" in page and "&lt;b&gt;Referred&lt;/b&gt;" in page  # shown as text
    assert f'href="/sent/{sent.replace(":", "%3A")}"' in page
    assert 'id="acknowledge"' not in page  # a decision expects no acknowledgement


def test_with_the_exchange_unreachable_an_acknowledgement_waits_in_the_outbox(exchange):
    from standard.errors import TransportUnavailable

    network, transport, _, store, clock, sent, _ = exchange
    exchange[6].close()  # one sender per outbox: this test's own

    def unreachable():
        raise TransportUnavailable("the exchange is down")

    responder = _responder(network.outbox("la-371"), unreachable)
    app = create_app(store, "la-371", key=b"k" * 32, now=clock, responder=responder)
    client = _signed_in(app)
    done = _post(client, f"/messages/{sent}/acknowledge", {})
    assert "done=waiting" in done.headers["Location"]
    assert "has not confirmed it yet" in client.get(done.headers["Location"], base_url=HTTPS).data.decode()
    assert responder.outbox.pending() == 2  # the read receipt and the acknowledgement, kept to send later
    responder.close()
    responder.outbox.drain(transport)  # the exchange is back (as the responder's next try, or sgx node resend)
    assert _senders_view(network, transport, sent)["la-371"].latest == "acknowledged"


class _BlockedOpener:
    """A transport that takes as long as an unreachable broker's connection attempts: until released."""

    def __init__(self, transport):
        self.transport, self.release = transport, threading.Event()

    def __call__(self):
        assert self.release.wait(timeout=60)
        return self.transport


class _SendingInTheRequest(Responder):
    """Broken twin: sends inside the web request, as the inbox once did."""

    def _send(self, message, *, wait=True):
        with self.lock:
            message_id = self.outbox.add(message)
            self.outbox.drain(self._open_transport())
            return self.outbox.status(message_id).sent_at is not None


@pytest.mark.parametrize("kind", [Responder, _SendingInTheRequest], ids=["responder", "twin-sending-in-the-request"])
def test_opening_a_message_never_waits_for_the_exchange(exchange, kind):
    network, transport, app, store, clock, sent, _ = exchange
    exchange[6].close()  # one sender per outbox: this test's own
    opener = _BlockedOpener(transport)
    # Waiting for an answer up to a minute, as an action may: opening the page must not wait at all.
    responder = kind(network.outbox("la-371"), opener, wait_seconds=60)
    client = _signed_in(create_app(store, "la-371", key=b"k" * 32, now=clock, responder=responder))
    answered = []
    request = threading.Thread(target=lambda: answered.append(client.get(f"/messages/{sent}", base_url=HTTPS)))
    request.start()
    request.join(timeout=2)
    opened_while_blocked = bool(answered)
    opener.release.set()  # the exchange answers at last: both then send the read receipt
    request.join(timeout=30)
    assert responder.flush() and responder.outbox.pending() == 0
    responder.close()
    if kind is Responder:
        assert opened_while_blocked and answered[0].status_code == 200
    else:
        assert not opened_while_blocked and answered[0].status_code == 200


@pytest.mark.parametrize("retry", [0.1, 3600.0], ids=["responder", "twin-that-never-tries-again"])
def test_what_waited_leaves_by_itself_once_the_exchange_is_back(exchange, retry):
    from standard.errors import TransportUnavailable

    network, transport, app, store, clock, sent, _ = exchange
    exchange[6].close()  # one sender per outbox: this test's own
    down = threading.Event()
    down.set()

    def opener():
        if down.is_set():
            raise TransportUnavailable("the exchange is down")
        return transport

    responder = _responder(network.outbox("la-371"), opener, retry_seconds=retry)
    client = _signed_in(create_app(store, "la-371", key=b"k" * 32, now=clock, responder=responder))
    done = _post(client, f"/messages/{sent}/acknowledge", {})
    assert "done=waiting" in done.headers["Location"] and responder.outbox.pending() == 2
    down.clear()  # the exchange is back; nobody acts in the inbox
    deadline = time.monotonic() + (30 if retry < 1 else 3)
    while responder.outbox.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    responder.close()
    if retry < 1:
        assert responder.outbox.pending() == 0
        assert _senders_view(network, transport, sent)["la-371"].latest == "acknowledged"
    else:  # the twin: the answers wait for the next action or `sgx node resend`
        assert responder.outbox.pending() == 2



class _StartingOnFirstAction(Responder):
    """Broken twin: its sender starts with the first action, as it first did."""

    def _start(self):
        if self._queued:
            super()._start()


@pytest.mark.parametrize("kind", [Responder, _StartingOnFirstAction], ids=["responder", "twin-starting-late"])
def test_answers_left_waiting_before_a_restart_go_without_anyone_acting(exchange, kind):
    network, transport, _, _, _, sent, _ = exchange
    exchange[6].close()  # one sender per outbox: this test's own
    before = network.outbox("la-371")
    before.add(compose.acknowledgement(sent, "la-371", "read"))  # queued when the inbox last stopped, never sent
    before.close()
    responder = kind(network.outbox("la-371"), lambda: transport)
    _opened.append(responder)
    if kind is Responder:
        assert responder.flush() and responder.outbox.pending() == 0
        assert _senders_view(network, transport, sent)["la-371"].latest == "read"
    else:
        assert not responder.flush(timeout=1) and responder.outbox.pending() == 1


def test_a_fault_while_sending_does_not_stop_the_sender(exchange):
    """Not only the exchange being unreachable: any fault (a database error, a bug) leaves the answers waiting,
    and the sender tries again."""
    network, transport, app, store, clock, sent, _ = exchange
    exchange[6].close()  # one sender per outbox: this test's own
    faults = iter([RuntimeError("an unexpected fault")])

    def opener():
        fault = next(faults, None)
        if fault is not None:
            raise fault
        return transport

    responder = _responder(network.outbox("la-371"), opener, retry_seconds=0.1)
    assert responder.acknowledge(sent, "Lee Officer") is False  # the first try met the fault
    deadline = time.monotonic() + 30
    while responder.outbox.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert responder.outbox.pending() == 0
    assert _senders_view(network, transport, sent)["la-371"].latest == "acknowledged"
