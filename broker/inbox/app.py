"""The web inbox: server-rendered pages in GOV.UK Frontend's look that work without JavaScript.

One application serves one participant's inbox, so a person can only ever reach their own organisation's
messages: any other message id is simply not found. Every page that shows a child is written to the access log.
Sessions are kept by the inbox (eight hours; signing out ends them) and named by a signed cookie (HttpOnly,
Secure, SameSite=Strict); every form carries a CSRF token."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from flask import Flask, abort, g, redirect, render_template, request, send_from_directory, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from broker.directory import parse_time
from broker.inbox import users
from broker.inbox.actions import Responder
from broker.inbox.facts import case_note
from broker.inbox.store import STATUSES, Filters, InboxStore
from broker.keys import secret_file
from standard import catalogue as cat
from standard import terminology as term
from standard.errors import MessageInvalid

ASSETS = Path(__file__).resolve().parent / "assets" / "node_modules" / "govuk-frontend" / "dist" / "govuk"
STATIC = Path(__file__).resolve().parent / "static"
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
}


def _local_target(target: str) -> str:
    """Where to go after signing in: a path on this site only, never another site (an open redirect would let a
    forged sign-in link send an officer to a look-alike page)."""
    if any(ord(c) < 32 or c == "\\" for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def secret_key(root: Path, participant: str) -> bytes:
    """The key that signs session cookies, made once per inbox and kept with the exchange's keys (mode 600)."""
    made = secret_file(root / "keys" / f"inbox-{participant}.secret", lambda: secrets.token_hex(32).encode())
    return bytes.fromhex(made.decode().strip())


def when(value: str | None) -> str:
    """A timestamp as people read it ("26 Nov 2026, 14:58 UTC"); a date alone as a date; any other text (a
    message's free text, a code) exactly as it is."""
    if not value:
        return ""
    try:
        moment = parse_time(value)
    except ValueError:
        return value
    if len(value) <= 10:
        return moment.strftime("%-d %b %Y")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%-d %b %Y, %H:%M") + (" UTC" if moment.tzinfo is not None else "")


_MAX_TEXT = 2000  # characters of a question, decision text or note
_DONE = {"acknowledged": "You acknowledged this message. The sender is told.",
         "decided": "Your decision is recorded and sent to the sender.",
         "asked": "Your question is sent to the sender.",
         "assigned": "The message is assigned.", "noted": "Your note is added. It stays in your organisation.",
         "waiting": "Saved. The exchange has not confirmed it yet; it is sent by itself as soon as the exchange "
                    "can be reached (tried every 30 seconds)."}


def create_app(store: InboxStore, participant: str, *, key: bytes, names: dict[str, str] | None = None,
               now: Callable[[], datetime] = lambda: datetime.now(UTC), secure_cookies: bool = True,
               responder: Responder | None = None) -> Flask:
    """The inbox of `participant`; `names` gives participants' names (from the directory) for people to read;
    `responder` sends acknowledgements, decisions and questions through the exchange (without it the inbox only
    reads, and the Sent pages are not shown)."""
    app = Flask(__name__, static_folder=None)
    app.config.update(SECRET_KEY=key, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SECURE=secure_cookies,
                      SESSION_COOKIE_SAMESITE="Strict", PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
                      WTF_CSRF_TIME_LIMIT=None, MAX_CONTENT_LENGTH=64 * 1024)
    CSRFProtect(app)
    events = {e.code: e.display for e in cat.EVENTS}

    def signed_in(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            user = users.session_user(store, session.get("sid", ""), now())
            if user is None:
                wanted = request.full_path.rstrip("?")
                return redirect(url_for("sign_in", next=wanted) if wanted != "/" else url_for("sign_in"))
            g.user = user
            return view(*args, **kwargs)
        return wrapper

    names = names or {}
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["named"] = lambda pid: names.get(pid, pid)
    app.jinja_env.filters["label"] = lambda code: term.display("security-label", code)

    @app.context_processor
    def common() -> dict:
        return {"participant": participant, "participant_name": names.get(participant, participant),
                "user": g.get("user"), "events": events, "statuses": STATUSES, "can_send": responder is not None}

    @app.after_request
    def headers(response):
        response.headers.update(_HEADERS)
        if not request.path.startswith("/assets/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(CSRFError)
    def csrf_refused(_):
        return render_template("error.html", title="The form has expired",
                               text="The page was open too long or came from elsewhere. Go back, reload the "
                                    "page and try again."), 400

    @app.errorhandler(404)
    def not_found(_):
        return render_template("error.html", title="Page not found",
                               text="There is nothing at this address in your organisation's inbox."), 404

    @app.get("/assets/<path:name>")
    def assets(name: str):
        # GOV.UK Frontend's stylesheet asks for its fonts and images under /assets/; its CSS and JS sit above.
        folder = ASSETS / "assets" if (ASSETS / "assets" / name).is_file() else ASSETS
        return send_from_directory(folder, name, max_age=3600)

    @app.get("/static/<name>")
    def static_file(name: str):
        return send_from_directory(STATIC, name, max_age=3600)

    @app.route("/sign-in", methods=["GET", "POST"])
    def sign_in():
        error = None
        if request.method == "POST":
            user, error = users.sign_in(store, request.form.get("email", ""), request.form.get("password", ""),
                                        now())
            if user is not None:
                session.clear()
                session.permanent = True
                session["sid"] = users.start_session(store, user, now())
                return redirect(_local_target(request.args.get("next", "")))
        return render_template("sign_in.html", title="Sign in", error=error,
                               email=request.form.get("email", "") if error else ""), 200 if error is None else 401

    @app.post("/sign-out")
    def sign_out():
        users.end_session(store, session.get("sid", ""))
        session.clear()
        return redirect(url_for("sign_in"))

    @app.get("/")
    @signed_in
    def inbox():
        store.sync()
        filters = Filters(**{k: request.args.get(k) or None for k in ("event", "setting", "child", "placing_la",
                                                                        "status")})
        page = max(1, request.args.get("page", 1, type=int))
        rows = store.list(filters, limit=50, offset=(page - 1) * 50)
        if filters.child:  # a list of one child's messages is a view of that child
            store.log_access(g.user.email, "list", filters.child, [filters.child])
        return render_template("list.html", title="Inbox", rows=rows, filters=filters, page=page,
                               counts=store.counts(filters), choices=store.choices())

    def viewed(message_id: str, page: str):
        """The message, read and recorded as a view of every child it names; not found outside this inbox."""
        store.sync()
        found = store.body(message_id)
        if found is None:
            abort(404)
        row, body, verified, delivery = found
        note = case_note(orjson.loads(body))
        store.log_access(g.user.email, page, message_id, [c.key for c in note.children])
        return row, body, verified, delivery, note

    def message_page(message_id: str, errors: dict[str, str] | None = None, status: int = 200):
        row, _, verified, delivery, note = viewed(message_id, "message")
        if store.mark_read(message_id, g.user.email) and responder is not None and \
                responder.answerable(row.event, row.sender):
            responder.read(message_id)  # the sender sees that a person has read it
        roles = [term.display("routing-role", r) for r in delivery.get("roles", [])]
        return render_template(
            "message.html", title=note.title, row=store.body(message_id)[0], note=note, verified=verified,
            roles=roles, own_children=len(delivery.get("children") or []), errors=errors or {},
            done=_DONE.get(request.args.get("done", "")), history=store.actions(message_id),
            answerable=responder is not None and responder.answerable(row.event, row.sender),
            decisions=term.code_systems()["decision-code"].concepts, people=store.people(),
            assigned=store.assigned_to(message_id), form=request.form), status

    @app.get("/messages/<message_id>")
    @signed_in
    def message(message_id: str):
        return message_page(message_id)

    @app.post("/messages/<message_id>/<action>")
    @signed_in
    def act(message_id: str, action: str):
        """One form per action; each records what the person did and, except notes and assignments (which stay
        in the organisation), sends it to the sender through the exchange."""
        store.sync()
        found = store.body(message_id)
        if found is None or action not in ("acknowledge", "decision", "ask", "assign", "note"):
            abort(404)
        row = found[0]
        text = request.form.get("text", "").strip()
        errors: dict[str, str] = {}
        answerable = responder is not None and responder.answerable(row.event, row.sender)
        if action in ("acknowledge", "decision", "ask") and not answerable:
            abort(404)
        if len(text) > _MAX_TEXT:
            errors["text"] = f"Write at most {_MAX_TEXT} characters"
        elif action == "decision" and request.form.get("decision") not in \
                term.code_systems()["decision-code"].codes:
            errors["decision"] = "Select the decision or action"
        elif action in ("ask", "note") and not text:
            errors["text"] = "Write your question" if action == "ask" else "Write the note"
        elif action == "assign" and request.form.get("colleague") not in {e for e, _ in store.people()}:
            errors["colleague"] = "Select a colleague"
        if errors:
            return message_page(message_id, {f"{action}-{k}": v for k, v in errors.items()}, 400)
        try:
            return record_and_send(message_id, action, text)
        except MessageInvalid:  # what the officer wrote made a message the standard refuses: nothing was queued
            return message_page(message_id, {f"{action}-text": "This cannot be sent as written: remove unusual "
                                                                "characters and try again"}, 400)

    def record_and_send(message_id: str, action: str, text: str):
        sent = True
        if action == "acknowledge":
            sent = responder.acknowledge(message_id, g.user.name)
            store.record_action(message_id, g.user.email, "acknowledged")
            done = "acknowledged"
        elif action == "decision":
            code = request.form["decision"]
            sent = responder.decide(message_id, code, text)
            store.record_action(message_id, g.user.email, "decided",
                                term.display("decision-code", code) + (f": {text}" if text else ""))
            done = "decided"
        elif action == "ask":
            sent = responder.ask(message_id, text)
            store.record_action(message_id, g.user.email, "asked", text)
            done = "asked"
        elif action == "assign":
            store.record_action(message_id, g.user.email, "assigned", request.form["colleague"])
            done = "assigned"
        else:
            store.record_action(message_id, g.user.email, "noted", text)
            done = "noted"
        return redirect(url_for("message", message_id=message_id, done=done if sent else "waiting"))

    @contextlib.contextmanager
    def sender_outbox():
        """The participant's outbox, brought up to date with the answers its inbox received, held with the lock its
        connection is shared by (the threads sending actions) for as long as the page reads it."""
        if responder is None:
            abort(404)
        with responder.lock:
            responder.outbox.record_acknowledgements(store)
            responder.outbox.record_responses(store)
            yield responder.outbox

    @app.get("/sent")
    @signed_in
    def sent():
        with sender_outbox() as outbox:
            rows = [(message_id, event, state, sent_at, outbox.accountable(message_id, now()))
                    for message_id, event, state, sent_at in outbox.sent(limit=50)]
        return render_template("sent.html", title="Sent", rows=rows)

    @app.get("/sent/<message_id>")
    @signed_in
    def sent_message(message_id: str):
        with sender_outbox() as outbox:
            found = outbox.status(message_id)
            states = outbox.accountable(message_id, now()) if found is not None else []
        if found is None:
            abort(404)
        return render_template("sent_message.html", title=events.get(found.event, found.event), found=found,
                               states=states)

    @app.get("/messages/<message_id>/raw")
    @signed_in
    def raw(message_id: str):
        row, body, *_ = viewed(message_id, "raw message")
        pretty = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
        return render_template("raw.html", title="The message as sent", row=row, pretty=pretty)

    @app.get("/settings/<urn>")
    @signed_in
    def setting(urn: str):
        store.sync()
        rows = list(reversed(store.list(Filters(setting=urn), limit=500)))
        if not rows:
            abort(404)
        store.log_access(g.user.email, "setting", urn, [])
        return render_template("subject.html", title=rows[0].setting_name or urn, kind="Setting", rows=rows)

    @app.get("/children/<la>/<local_id>")
    @signed_in
    def child(la: str, local_id: str):
        store.sync()
        key = f"{la}/{local_id}"
        rows = list(reversed(store.list(Filters(child=key), limit=500)))
        if not rows:
            abort(404)
        store.log_access(g.user.email, "child", key, [key])
        return render_template("subject.html", title=f"Child {local_id} of LA {la}", kind="Child", rows=rows)

    @app.get("/access-log")
    @signed_in
    def access_log():
        if g.user.role not in ("manager", "administrator"):
            abort(404)
        return render_template("access_log.html", title="Who saw what", rows=store.access_log())

    return app
