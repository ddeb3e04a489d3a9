"""People who sign in to a participant's inbox: roles, Argon2id password hashes, and throttled sign-in.

Only the hash is stored. Five wrong passwords in a row lock the account for fifteen minutes, whatever the
address the attempts came from, and the page never says whether the address or the password was wrong."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from broker import db as sqlite_db
from broker.inbox.store import InboxStore
from sgx.errors import InboxError

ROLES = ("officer", "manager", "administrator")
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD = 12
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
    """The user, or None and why (said the same way for an unknown address and a wrong password)."""
    email = email.strip().lower()
    row = store.db.execute("SELECT name, role, password_hash, failed, locked_until FROM users WHERE email = ?",
                           (email,)).fetchone()
    wrong = "The email address or password is not right."
    if row is None:
        _hasher.hash(password)  # the same work as for a real account, so timing does not tell them apart
        return None, wrong
    name, role, password_hash, failed, locked_until = row
    if locked_until and datetime.fromisoformat(locked_until) > now:
        return None, "Too many wrong passwords: this account is locked for 15 minutes. Ask your administrator " \
                     "if you have forgotten the password."
    try:
        _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        failed += 1
        lock = (now + LOCKOUT).isoformat() if failed >= MAX_FAILURES else None
        with sqlite_db.transaction(store.db):
            store.db.execute("UPDATE users SET failed = ?, locked_until = ? WHERE email = ?",
                             (0 if lock else failed, lock, email))
        return None, wrong
    with sqlite_db.transaction(store.db):
        store.db.execute("UPDATE users SET failed = 0, locked_until = NULL WHERE email = ?", (email,))
        if _hasher.check_needs_rehash(password_hash):
            store.db.execute("UPDATE users SET password_hash = ? WHERE email = ?", (_hasher.hash(password), email))
    return User(email, name, role), None
