"""People who sign in to a participant's inbox: roles, Argon2id password hashes, and throttled sign-in.

Only the hash is stored. Five wrong passwords in a row lock the account for fifteen minutes, whatever the
address the attempts came from; the page never says whether the address or the password was wrong, or whether
the account is locked."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from broker import db as sqlite_db
from broker.inbox.store import InboxStore
from standard.errors import InboxError

ROLES = ("officer", "manager", "administrator")
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD = 12
REFUSED = ("The email address or password is not right, or the account is locked for 15 minutes after five wrong "
           "passwords. Ask your administrator if you have forgotten the password.")
_hasher = PasswordHasher()  # Argon2id with the library's current defaults (memory-hard)


@dataclass(frozen=True)
class User:
    email: str
    name: str
    role: str


def add_user(store: InboxStore, email: str, name: str, role: str, password: str) -> User:
    email = email.strip().lower()
    if role not in ROLES:
        raise InboxError(f"unknown role {role!r}; choose one of: {', '.join(ROLES)}")
    if "@" not in email:
        raise InboxError("give the person's work email address as their sign-in name")
    if len(password) < MIN_PASSWORD:
        raise InboxError(f"the password needs at least {MIN_PASSWORD} characters; a passphrase of a few words is "
                         "easiest to remember")
    if store.db.execute("SELECT 1 FROM users WHERE email = ?", (email,)).fetchone():
        raise InboxError(f"{email} already has an account")
    with sqlite_db.transaction(store.db):
        store.db.execute("INSERT INTO users (email, name, role, password_hash) VALUES (?,?,?,?)",
                         (email, name, role, _hasher.hash(password)))
    return User(email, name, role)


def find(store: InboxStore, email: str) -> User | None:
    row = store.db.execute("SELECT email, name, role FROM users WHERE email = ?", (email,)).fetchone()
    return User(*row) if row else None


def sign_in(store: InboxStore, email: str, password: str, now: datetime) -> tuple[User | None, str | None]:
    """The user, or None and why. Every refusal reads the same and costs the same hashing work, whether the
    address is unknown, the password wrong or the account locked, so the page tells an attacker nothing."""
    email = email.strip().lower()
    row = store.db.execute("SELECT name, role, password_hash, locked_until FROM users WHERE email = ?",
                           (email,)).fetchone()
    if row is None:
        _hasher.hash(password)
        return None, REFUSED
    name, role, password_hash, locked_until = row
    try:
        _hasher.verify(password_hash, password)
        right = True
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        right = False
    if locked_until and datetime.fromisoformat(locked_until) > now:
        return None, REFUSED
    if not right:
        with sqlite_db.transaction(store.db):
            # Counted in the database, so guesses made at the same time each count.
            failed = store.db.execute("UPDATE users SET failed = failed + 1 WHERE email = ? RETURNING failed",
                                      (email,)).fetchone()[0]
            if failed >= MAX_FAILURES:
                store.db.execute("UPDATE users SET failed = 0, locked_until = ? WHERE email = ?",
                                 ((now + LOCKOUT).isoformat(), email))
        return None, REFUSED
    with sqlite_db.transaction(store.db):
        store.db.execute("UPDATE users SET failed = 0, locked_until = NULL WHERE email = ?", (email,))
        if _hasher.check_needs_rehash(password_hash):
            store.db.execute("UPDATE users SET password_hash = ? WHERE email = ?", (_hasher.hash(password), email))
    return User(email, name, role), None


SESSION_LENGTH = timedelta(hours=8)


def start_session(store: InboxStore, user: User, now: datetime) -> str:
    """A new session for a signed-in person: its id goes in the (signed) cookie, its life is kept here, so that
    signing out ends it for every copy of the cookie."""
    session_id = secrets.token_urlsafe(32)
    with sqlite_db.transaction(store.db):
        store.db.execute("DELETE FROM sessions WHERE expires_at <= ?", (now.isoformat(),))
        store.db.execute("INSERT INTO sessions VALUES (?,?,?)", (session_id, user.email,
                                                                  (now + SESSION_LENGTH).isoformat()))
    return session_id


def session_user(store: InboxStore, session_id: str, now: datetime) -> User | None:
    row = store.db.execute("SELECT user FROM sessions WHERE id = ? AND expires_at > ?",
                           (session_id, now.isoformat())).fetchone()
    return find(store, row[0]) if row else None


def end_session(store: InboxStore, session_id: str) -> None:
    with sqlite_db.transaction(store.db):
        store.db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
