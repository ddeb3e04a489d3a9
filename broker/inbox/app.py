"""The web inbox: server-rendered pages in GOV.UK Frontend's look that work without JavaScript.

One application serves one participant's inbox, so a person can only ever reach their own organisation's
messages: any other message id is simply not found. Every page that shows a child is written to the access log.
Sessions are signed cookies (HttpOnly, Secure, SameSite=Strict, eight hours); every form carries a CSRF token."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path

import orjson
from flask import Flask, abort, g, redirect, render_template, request, send_from_directory, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from broker.inbox import users
from broker.inbox.facts import case_note
from broker.inbox.store import STATUSES, Filters, InboxStore
from standard import catalogue as cat

ASSETS = Path(__file__).resolve().parent / "assets" / "node_modules" / "govuk-frontend" / "dist" / "govuk"
STATIC = Path(__file__).resolve().parent / "static"
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
}


def secret_key(root: Path, participant: str) -> bytes:
    """The key that signs session cookies, made once per inbox and kept with the exchange's keys (mode 600)."""
    path = root / "keys" / f"inbox-{participant}.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def create_app(store: InboxStore, participant: str, *, key: bytes,
               now: Callable[[], datetime] = lambda: datetime.now(UTC), secure_cookies: bool = True) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.config.update(SECRET_KEY=key, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SECURE=secure_cookies,
                      SESSION_COOKIE_SAMESITE="Strict", PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
                      WTF_CSRF_TIME_LIMIT=None, MAX_CONTENT_LENGTH=64 * 1024)
    CSRFProtect(app)
    events = {e.code: e.display for e in cat.EVENTS}

    def signed_in(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            user = users.find(store, session.get("user", ""))
            if user is None:
                return redirect(url_for("sign_in", next=request.full_path))
            g.user = user
            return view(*args, **kwargs)
        return wrapper

    @app.context_processor
    def common() -> dict:
        return {"participant": participant, "user": g.get("user"), "events": events, "statuses": STATUSES}

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
                session["user"] = user.email
                target = request.args.get("next", "")
                return redirect(target if target.startswith("/") and not target.startswith("//") else "/")
        return render_template("sign_in.html", title="Sign in", error=error), 200 if error is None else 401

    @app.post("/sign-out")
    def sign_out():
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
        return render_template("list.html", title="Inbox", rows=rows, filters=filters, page=page,
                               counts=store.counts(filters), choices=store.choices())

    @app.get("/messages/<message_id>")
    @signed_in
    def message(message_id: str):
        store.sync()
        found = store.body(message_id)
        if found is None:
            abort(404)
        row, body, verified = found
        note = case_note(orjson.loads(body))
        store.mark_read(message_id, g.user.email)
        store.log_access(g.user.email, "message", message_id, [c.key for c in note.children])
        return render_template("message.html", title=note.title, row=row, note=note, verified=verified)

    @app.get("/messages/<message_id>/raw")
    @signed_in
    def raw(message_id: str):
        store.sync()
        found = store.body(message_id)
        if found is None:
            abort(404)
        row, body, _ = found
        note = case_note(orjson.loads(body))
        store.log_access(g.user.email, "raw message", message_id, [c.key for c in note.children])
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
