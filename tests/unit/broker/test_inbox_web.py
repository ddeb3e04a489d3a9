"""The web inbox, through Flask's test client over HTTPS: sign-in and throttling, CSRF, filters and counts, case
notes, escaping, one organisation's messages only, and the access log. (Real-browser tests are in
tests/integration/test_inbox_browser.py.)"""

from __future__ import annotations

import copy
import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher

from broker.inbox import users
from broker.inbox.app import create_app
from broker.inbox.store import InboxStore
from broker.node import _SCHEMA as NODE_SCHEMA
from standard import artefacts

PASSWORD = "correct horse battery staple"
EXAMPLES = ["placement-started-childrens-home", "serious-incident-police", "allegation-notification-cross-boundary",
            "concern-notification-whistleblowing", "placement-ended-allegation"]


class Clock:
    def __init__(self):
        self.at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

    def __call__(self):
        return self.at


def _example(name: str) -> dict:
    return json.loads((artefacts.EXAMPLES / f"{name}.json").read_bytes())


def _node_inbox(path, messages: list[dict]) -> None:
    db = sqlite3.connect(path)
    db.executescript(NODE_SCHEMA)
    for i, m in enumerate(messages):
        header = m["entry"][0]["resource"]
        db.execute("INSERT INTO inbox VALUES (?,?,?,?,?,?,?)", (
            m["identifier"]["value"], header["eventCoding"]["code"], header["sender"]["identifier"]["value"],
            f"2026-03-02T09:{i:02d}:00+00:00", "signature by x key x-1 verified", "{}", json.dumps(m).encode()))
    db.commit()
    db.close()


@pytest.fixture
def inbox(tmp_path, monkeypatch):
    # Argon2id still, with a smaller cost than production's so the suite stays quick.
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
    messages = [_example(n) for n in EXAMPLES]
    hostile = copy.deepcopy(_example("concern-notification-whistleblowing"))
    hostile["identifier"]["value"] = "urn:uuid:5f0c2b1e-0000-4000-8000-00000000abcd"
    for e in hostile["entry"]:
        if e["resource"]["resourceType"] == "Communication":
            e["resource"]["payload"][0]["contentString"] = "<script>alert('x')</script><b>bold</b>"
    messages.append(hostile)
    _node_inbox(tmp_path / "lado-371.db", messages)
    clock = Clock()
    store = InboxStore(tmp_path / "lado-371.web.db", tmp_path / "lado-371.db", now=clock)
    users.add_user(store, "officer@example.org", "Olu Officer", "officer", PASSWORD)
    users.add_user(store, "manager@example.org", "Mina Manager", "manager", PASSWORD)
    app = create_app(store, "lado-371", key=b"k" * 32, now=clock)
    return app, store, clock, messages


def _client(app):
    return app.test_client()


def _token(page: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()


def _sign_in(client, email="officer@example.org", password=PASSWORD):
    page = client.get("/sign-in", base_url="https://localhost").data
    return client.post("/sign-in", base_url="https://localhost", headers={"Referer": "https://localhost/sign-in"},
                       data={"email": email, "password": password, "csrf_token": _token(page)})


def _text(page: bytes) -> str:
    return re.sub(rb'value="[^"]*"', b"", page).decode()


def _get(client, path):
    return client.get(path, base_url="https://localhost")


def test_pages_need_a_signed_in_person(inbox):
    app, *_ = inbox
    response = _get(_client(app), "/")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def test_sign_in_sets_a_secure_strict_session_cookie(inbox):
    app, *_ = inbox
    client = _client(app)
    response = _sign_in(client)
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = _get(client, "/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"


def test_a_wrong_password_says_the_same_as_an_unknown_address_and_five_lock_the_account(inbox):
    app, _, clock, _ = inbox
    client = _client(app)
    unknown = _sign_in(client, email="nobody@example.org")
    assert 'value="nobody@example.org"' in unknown.data.decode()  # the address is kept to correct, not retyped
    wrong = _sign_in(client, password="not the password at all")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.data.count(b"is not right") == wrong.data.count(b"is not right") == 1
    for _ in range(4):
        _sign_in(client, password="not the password at all")
    locked = _sign_in(client)  # the right password, but too late
    assert locked.status_code == 401
    # The refusal reads the same for a locked account as for an unknown address: nothing to learn from it.
    assert _text(locked.data) == _text(_sign_in(client, email="nobody@example.org").data)
    clock.at += timedelta(minutes=16)
    assert _sign_in(client).status_code == 302


def test_a_form_without_its_csrf_token_is_refused(inbox):
    app, *_ = inbox
    client = _client(app)
    response = client.post("/sign-in", base_url="https://localhost",
                           data={"email": "officer@example.org", "password": PASSWORD})
    assert response.status_code == 400 and b"The form has expired" in response.data


def test_the_broken_twin_without_csrf_protection_accepts_that_form(inbox):
    # The CSRF test can fail: the same form is accepted once protection is turned off.
    app, *_ = inbox
    app.config["WTF_CSRF_ENABLED"] = False
    response = app.test_client().post("/sign-in", base_url="https://localhost",
                                      data={"email": "officer@example.org", "password": PASSWORD})
    assert response.status_code == 302


def test_the_list_filters_and_counts(inbox):
    app, store, _, messages = inbox
    client = _client(app)
    _sign_in(client)
    page = _get(client, "/").data.decode()
    assert page.count('href="/messages/') == len(messages)
    assert "<strong>6</strong> new" in page
    incidents = _get(client, "/?event=serious-incident").data.decode()
    assert incidents.count('href="/messages/') == 1
    by_child = _get(client, "/?child=886/C00001").data.decode()
    assert by_child.count('href="/messages/') == 3  # the placement started, the incident, the placement ended
    by_la = _get(client, "/?placing_la=886").data.decode()
    assert by_la.count('href="/messages/') == 3
    nothing = _get(client, "/?setting=SC999999").data.decode()
    assert 'id="empty"' in nothing


def test_a_message_reads_as_a_case_note_and_is_then_read(inbox):
    app, store, _, messages = inbox
    client = _client(app)
    _sign_in(client)
    incident = messages[1]["identifier"]["value"]
    page = _get(client, f"/messages/{incident}").data.decode()
    assert "Serious incident" in page and "Example Lodge" in page and "Serious incident needing police" in page
    assert 'href="/children/886/C00001"' in page and "signature by x key x-1 verified" in page
    assert "<strong>1</strong> read" in _get(client, "/").data.decode()
    raw = _get(client, f"/messages/{incident}/raw").data.decode()
    assert "&#34;resourceType&#34;: &#34;Bundle&#34;" in raw or "&quot;resourceType&quot;" in raw


def test_message_text_with_html_and_script_is_shown_as_text(inbox):
    app, *_ = inbox
    client = _client(app)
    _sign_in(client)
    page = _get(client, "/messages/urn:uuid:5f0c2b1e-0000-4000-8000-00000000abcd").data.decode()
    assert "<script>alert" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in page


def test_another_organisations_message_is_not_found(inbox, tmp_path):
    app, *_ = inbox
    # The message is real and stored, but in another participant's inbox: this inbox cannot reach it.
    elsewhere = copy.deepcopy(_example("placement-started-confidential"))
    elsewhere["identifier"]["value"] = "urn:uuid:17a1de4c-7546-5589-8653-000000000000"
    _node_inbox(tmp_path / "lado-886.db", [elsewhere])
    other = InboxStore(tmp_path / "lado-886.web.db", tmp_path / "lado-886.db")
    assert other.sync() == 1 and other.body(elsewhere["identifier"]["value"]) is not None
    client = _client(app)
    _sign_in(client)
    message_id = elsewhere["identifier"]["value"]
    assert _get(client, f"/messages/{message_id}").status_code == 404
    assert _get(client, f"/messages/{message_id}/raw").status_code == 404
    assert _get(client, "/children/372/C99999").status_code == 404


def test_signing_in_never_sends_the_browser_to_another_site(inbox):
    app, *_ = inbox
    for target, expected in [("/messages/x", "/messages/x"), ("//evil.example", "/"),
                             ("/%09/evil.example", "/%09/evil.example"), ("/\\evil.example", "/"),
                             ("https://evil.example/", "/"), ("/\t/evil.example", "/")]:
        client = _client(app)
        page = client.get("/sign-in", base_url="https://localhost").data
        response = client.post("/sign-in", base_url="https://localhost", query_string={"next": target},
                               headers={"Referer": "https://localhost/sign-in"},
                               data={"email": "officer@example.org", "password": PASSWORD,
                                     "csrf_token": _token(page)})
        location = response.headers["Location"]  # "/%09/..." stays a path here: browsers strip raw tabs only
        assert location in (expected, f"https://localhost{expected}"), (target, location)


def test_pages_answered_on_many_threads_at_once_lose_no_access_log_row(inbox):
    from concurrent.futures import ThreadPoolExecutor

    _, store, _, messages = inbox
    store.sync()

    def view(i: int) -> None:
        store.log_access("officer@example.org", "message", messages[i % len(messages)]["identifier"]["value"],
                         [f"886/C{i:05d}"])
        store.mark_read(messages[i % len(messages)]["identifier"]["value"], "officer@example.org")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(view, range(400)))
    assert store.db.execute("SELECT count(*) FROM access_log").fetchone()[0] == 400


def test_a_list_of_one_childs_messages_is_in_the_access_log(inbox):
    app, store, *_ = inbox
    client = _client(app)
    _sign_in(client)
    _get(client, "/?child=886/C00001")
    assert [(page, child) for _, _, page, _, child in store.access_log()] == [("list", "886/C00001")]


def test_every_view_of_a_child_is_in_the_access_log_which_only_managers_read(inbox):
    app, store, _, messages = inbox
    client = _client(app)
    _sign_in(client)
    _get(client, f"/messages/{messages[0]['identifier']['value']}")
    _get(client, "/children/886/C00001")
    log = store.access_log()
    assert [(who, page, child) for _, who, page, _, child in reversed(log)] == [
        ("officer@example.org", "message", "886/C00001"), ("officer@example.org", "child", "886/C00001")]
    assert _get(client, "/access-log").status_code == 404
    manager = _client(app)
    _sign_in(manager, email="manager@example.org")
    page = _get(manager, "/access-log").data.decode()
    assert page.count("officer@example.org") == 2


def test_accounts_refuse_weak_passwords_and_unknown_roles(inbox):
    from standard.errors import InboxError

    _, store, *_ = inbox
    with pytest.raises(InboxError, match="at least 12"):
        users.add_user(store, "new@example.org", "New", "officer", "short")
    with pytest.raises(InboxError, match="unknown role"):
        users.add_user(store, "new@example.org", "New", "king", PASSWORD)
    stored = store.db.execute("SELECT password_hash FROM users WHERE email = 'officer@example.org'").fetchone()[0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_pages_speak_in_names_and_plain_dates_not_codes(inbox, tmp_path):
    from broker.inbox.app import when

    assert when("2026-03-01T22:15:00Z") == "1 Mar 2026, 22:15 UTC" and when("2012-05-14") == "14 May 2012"
    assert when("Police attended; the child is safe.") == "Police attended; the child is safe."
    _, store, clock, messages = inbox
    names = {"lado-371": "Doncaster LADO", "provider-example-care": "Example Care Ltd"}
    app = create_app(store, "lado-371", key=b"k" * 32, now=clock, names=names)
    client = _client(app)
    _sign_in(client)
    listing = _get(client, "/").data.decode()
    assert "Inbox of Doncaster LADO" in listing and "Example Care Ltd" in listing
    page = _get(client, f"/messages/{messages[1]['identifier']['value']}").data.decode()
    assert "1 Mar 2026, 22:15 UTC" in page and "2026-03-01T22:15:00Z" not in page


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(inbox):
    app, store, clock, _ = inbox
    client = _client(app)
    _sign_in(client)
    copied = _client(app)
    cookie = client.get_cookie("session", domain="localhost")
    copied.set_cookie("session", cookie.value, domain="localhost", secure=True)
    assert _get(copied, "/").status_code == 200  # the copy works while the session lasts
    page = _get(client, "/").data
    client.post("/sign-out", base_url="https://localhost", headers={"Referer": "https://localhost/"},
                data={"csrf_token": _token(page)})
    assert _get(copied, "/").status_code == 302  # and not after signing out
    _sign_in(client)
    clock.at += timedelta(hours=8, minutes=1)
    assert _get(client, "/").status_code == 302  # nor after eight hours
