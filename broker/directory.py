"""The participant directory: who takes part, their roles and keys, and the settings.

Published by the scheme operator as a JWS in flattened JSON serialisation (RFC 7515 §7.2.2),
signed with the operator's Ed25519 key and carrying an expiry, like a trust list: a directory
past its expiry, or not signed by the operator, is refused and the exchange fails closed.

Long-running parts (the router, a node) follow the signed file with `LiveDirectory`: a newly signed
directory takes effect at their next batch, a file that fails verification is never adopted (the last
good directory stays in force, with an error logged, until its own expiry), and once the directory in
force has expired they stop routing (`DirectoryExpired`) rather than trust a stale list of keys.
"""

from __future__ import annotations

import csv
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker import jws
from broker.keys import SigningKey, public_jwk, public_key_from_jwk
from standard.errors import DirectoryError, DirectoryExpired, ExpiredKey, RevokedKey, SignatureRejected, UnknownKey

log = logging.getLogger("sgx.directory")

DIRECTORY_TYP = "sgx-directory+jws"
# A long-running part re-reads its signed directory file when the file changes (checked at every batch) and,
# whatever the file's metadata says, at least this often.
RECHECK_SECONDS = 30
REFERENCE = Path(__file__).resolve().parents[1] / "standard" / "source" / "reference"

# Participant kinds (the standard's participant-kind code system).
LA, LADO, ICB, OFSTED, CQC, POLICE, PROVIDER, OPERATOR = (
    "la-childrens-services", "lado", "icb", "ofsted", "cqc", "police-force", "provider", "operator")
REGULATOR_KINDS = frozenset({OFSTED, CQC})


def parse_time(value: str | None) -> datetime | None:
    """A time as the directory and the exchange write it (ISO 8601, "Z" for UTC); None for none."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Participant:
    id: str
    kind: str
    name: str
    codes: dict[str, str] = field(default_factory=dict)  # dfe_la, gss, ods, ...
    keys: list[dict] = field(default_factory=list)  # public JWKs with valid_from / valid_until / revoked_at
    subscriptions: list[str] = field(default_factory=list)  # events received on request (e.g. Reg 45 reviews)
    # Conformance certificates of the systems the participant runs (system, version, kit, dates, the signed JWS).
    certificates: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {"id": self.id, "kind": self.kind, "name": self.name, "codes": self.codes, "keys": self.keys,
               "subscriptions": self.subscriptions}
        if self.certificates:  # only when there are some, so directories without any keep their bytes
            out["certificates"] = self.certificates
        return out


@dataclass
class Setting:
    urn: str
    name: str
    type: str
    host_la: str
    host_icb: str | None
    regulators: list[str]
    provider: str | None = None
    police: str | None = None
    postcode: str | None = None  # of the setting itself (public on Ofsted's list); never a child's address

    def as_dict(self) -> dict:
        return {"urn": self.urn, "name": self.name, "type": self.type, "host_la": self.host_la,
                "host_icb": self.host_icb, "regulators": self.regulators, "provider": self.provider,
                "police": self.police, "postcode": self.postcode}


@dataclass
class Directory:
    """The directory's content. Build it, `sign` it with the operator key; `load` it to use it."""

    participants: dict[str, Participant] = field(default_factory=dict)
    settings: dict[str, Setting] = field(default_factory=dict)
    version: int = 1
    issued_at: str = ""
    expires_at: str = ""
    _by_postcode: dict[str, list[Setting]] | None = field(default=None, repr=False, compare=False)
    # The signed file and trust anchor it was loaded from (set by `load`), so that it can be followed.
    source: tuple[Path, Ed25519PublicKey] | None = field(default=None, repr=False, compare=False)

    # -- reading ---------------------------------------------------------------------------------
    def participant(self, participant_id: str) -> Participant:
        try:
            return self.participants[participant_id]
        except KeyError:
            raise DirectoryError(f"participant {participant_id!r} is not in the directory") from None

    def setting(self, urn: str) -> Setting | None:
        return self.settings.get(urn)

    def settings_at(self, postcode: str) -> list[Setting]:
        """Settings registered at a postcode (normalised `AB1 2CD`)."""
        if self._by_postcode is None:
            self._by_postcode = {}
            for setting in self.settings.values():
                if setting.postcode:
                    self._by_postcode.setdefault(setting.postcode, []).append(setting)
        return self._by_postcode.get(postcode, [])

    def default_icb(self, la_id: str) -> str | None:
        """The ICB of an LA's area (participant id) from the public LA -> ICB table, or None if it has none."""
        la = self.participants.get(la_id)
        ods = la_to_icb().get(la.codes.get("dfe_la", "")) if la else None
        return f"icb-{ods}" if ods else None

    def lado_of(self, la_id: str) -> str | None:
        code = self.participants[la_id].codes.get("dfe_la") if la_id in self.participants else None
        pid = f"lado-{code}"
        return pid if code and pid in self.participants else None

    def public_key_for(self, kid: str, sender: str, issued_at: int, *,
                       checked_at: datetime | None = None) -> Ed25519PublicKey:
        """The sender's key `kid` if it was valid when the message was signed.

        Args:
            checked_at: when the message is being checked. A key revoked by then is refused whatever the
                message's issued-at says (the router passes it: a revocation also stops messages signed
                before it and still queued, since when a key was compromised is rarely known).
        """
        participant = self.participants.get(sender)
        jwk = next((k for k in participant.keys if k.get("kid") == kid), None) if participant else None
        if jwk is None:
            raise UnknownKey(f"no key {kid!r} for participant {sender!r} in the directory")
        moment = datetime.fromtimestamp(issued_at, UTC)
        revoked = parse_time(jwk.get("revoked_at"))
        if revoked and moment >= revoked:
            raise RevokedKey(f"key {kid!r} was revoked before the message was signed")
        if revoked and checked_at is not None and checked_at >= revoked:
            raise RevokedKey(f"key {kid!r} was revoked at {jwk['revoked_at']}, before the message was processed")
        valid_from, valid_until = parse_time(jwk.get("valid_from")), parse_time(jwk.get("valid_until"))
        if (valid_from and moment < valid_from) or (valid_until and moment >= valid_until):
            raise ExpiredKey(f"key {kid!r} was not valid when the message was signed")
        return public_key_from_jwk(jwk)

    # -- building --------------------------------------------------------------------------------
    def add(self, participant: Participant) -> Participant:
        self.participants[participant.id] = participant
        return participant

    def add_key(self, participant_id: str, key: SigningKey, *, valid_from: datetime | None = None,
                valid_until: datetime | None = None) -> None:
        self.add_public_key(participant_id, key.kid, key.public, valid_from=valid_from, valid_until=valid_until)

    def add_public_key(self, participant_id: str, kid: str, public: Ed25519PublicKey, *,
                       valid_from: datetime | None = None, valid_until: datetime | None = None) -> dict:
        """Register a participant's public key (one it made itself, or from `add_key`) under `kid`."""
        jwk = public_jwk(kid, public)
        jwk["valid_from"] = _iso(valid_from or datetime.now(UTC) - timedelta(minutes=5))
        if valid_until:
            jwk["valid_until"] = _iso(valid_until)
        self.participant(participant_id).keys.append(jwk)
        return jwk

    def revoke_key(self, participant_id: str, kid: str, at: datetime | None = None) -> None:
        for jwk in self.participant(participant_id).keys:
            if jwk["kid"] == kid:
                jwk["revoked_at"] = _iso(at or datetime.now(UTC))
                return
        raise DirectoryError(f"participant {participant_id!r} has no key {kid!r}")

    def add_setting(self, setting: Setting) -> Setting:
        for pid in [setting.host_la, setting.host_icb, setting.provider, setting.police, *setting.regulators]:
            if pid is not None and pid not in self.participants:
                raise DirectoryError(f"setting {setting.urn}: participant {pid!r} is not in the directory; add it "
                                     "first")
        self.settings[setting.urn] = setting
        self._by_postcode = None
        return setting

    def expired(self, now: datetime) -> bool:
        """Whether the directory is past its expiry (one built in memory, never signed, has none)."""
        expires = parse_time(self.expires_at)
        return expires is not None and now >= expires

    def payload(self) -> dict:
        return {"version": self.version, "issued_at": self.issued_at, "expires_at": self.expires_at,
                "participants": [p.as_dict() for p in sorted(self.participants.values(), key=lambda p: p.id)],
                "settings": [s.as_dict() for s in sorted(self.settings.values(), key=lambda s: s.urn)]}

    @classmethod
    def from_payload(cls, data: dict) -> Directory:
        try:
            d = cls(version=data["version"], issued_at=data["issued_at"], expires_at=data["expires_at"])
            for p in data["participants"]:
                d.participants[p["id"]] = Participant(**p)
            for s in data["settings"]:
                d.settings[s["urn"]] = Setting(**s)
        except (KeyError, TypeError) as exc:
            raise DirectoryError(f"the directory payload is malformed ({exc}); rebuild it with 'sgx directory'") \
                from None
        return d

    # -- signing ---------------------------------------------------------------------------------
    def sign(self, operator_key: SigningKey, *, valid_for: timedelta = timedelta(days=7),
             now: datetime | None = None) -> bytes:
        """The signed directory file (flattened JWS JSON); bumps the version."""
        moment = now or datetime.now(UTC)
        self.issued_at, self.expires_at = _iso(moment), _iso(moment + valid_for)
        signed = jws.sign_flattened({"typ": DIRECTORY_TYP}, orjson.dumps(self.payload()), operator_key)
        return orjson.dumps(signed, option=orjson.OPT_INDENT_2)


def load(path_or_bytes: Path | bytes, operator_public: Ed25519PublicKey, *, now: datetime | None = None,
         allow_expired: bool = False) -> Directory:
    """Read a signed directory; refuse one that is not the operator's or has expired.

    Args:
        allow_expired: accept an expired directory (to check old signatures, e.g. audit checkpoints; never to
            route).
    """
    where = str(path_or_bytes) if isinstance(path_or_bytes, Path) else "directory"
    try:
        raw = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
        document = orjson.loads(raw)
    except FileNotFoundError:
        draft = path_or_bytes.with_name("directory.draft.json") if isinstance(path_or_bytes, Path) else None
        if draft is not None and draft.exists():  # initialised, never signed
            raise DirectoryError(f"{where}: the directory has not been signed yet; sign it with 'sgx directory sign "
                                 f"--dir {draft.parent}'") from None
        raise DirectoryError(f"{where}: no directory file, so this is not an exchange folder; give the right --dir, "
                             "or create one with 'sgx directory init'") from None
    except (ValueError, orjson.JSONDecodeError):
        raise DirectoryError(f"{where}: not a signed directory (flattened JWS JSON)") from None
    if not isinstance(document, dict) or not {"protected", "payload", "signature"} <= set(document):
        raise DirectoryError(f"{where}: not a signed directory (flattened JWS JSON with protected, payload and "
                             "signature)")
    try:
        token = jws.parse_flattened(document)
    except SignatureRejected as exc:  # a part altered: its text is not what the operator's signing wrote
        raise DirectoryError(f"{where}: the operator's signature does not verify ({exc}); do not use this directory "
                             "and fetch it again from the operator") from None
    try:
        jws.check_header(token.header, DIRECTORY_TYP)
    except SignatureRejected as exc:
        raise DirectoryError(f"{where}: the directory must be signed with EdDSA as {DIRECTORY_TYP} ({exc})") from None
    try:
        jws.verify_signature(token, operator_public)
    except SignatureRejected:
        raise DirectoryError(f"{where}: the operator's signature does not verify; do not use this directory and "
                             "fetch it again from the operator") from None
    try:
        directory = Directory.from_payload(token.claims())
    except SignatureRejected as exc:
        raise DirectoryError(f"{where}: the signed directory's payload is not a JSON object ({exc})") from None
    expires = parse_time(directory.expires_at)
    if expires is None or (not allow_expired and (now or datetime.now(UTC)) >= expires):
        raise DirectoryExpired(f"{where}: the directory expired at {directory.expires_at}; the exchange refuses to "
                               "route on a stale directory; ask the operator for the current one")
    if isinstance(path_or_bytes, Path):
        directory.source = (path_or_bytes, operator_public)
    return directory


def _file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class LiveDirectory:
    """The directory a long-running part works with, kept current from the signed file it was loaded from.

    `current(now)` is called at every batch boundary: it re-reads the file when its inode, size or mtime
    changed, and at least every `recheck_seconds` anyway. A file that does not verify, or that is older
    (version, issued-at) than the directory in force, is not adopted: the error is logged at every check and
    the directory in force stays until its own expiry. Past that expiry `current` raises DirectoryExpired.
    A directory built in memory (no file) is only checked for expiry.
    """

    def __init__(self, directory: Directory, *, recheck_seconds: float = RECHECK_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self._directory, self.recheck_seconds, self._clock = directory, recheck_seconds, clock
        self._source = directory.source
        self._state = _file_state(self._source[0]) if self._source else None
        self._checked = clock()
        self._lock = threading.Lock()  # routers side by side may share one

    @property
    def directory(self) -> Directory:
        """The directory in force (without checking the file or the expiry)."""
        return self._directory

    def current(self, now: datetime) -> Directory:
        """The directory in force at `now`, after picking up a newly signed file.

        Raises:
            DirectoryExpired: the directory in force has expired and the file holds no valid newer one.
        """
        with self._lock:
            if self._source is not None:
                path, _ = self._source
                state = _file_state(path)
                if state != self._state or self._clock() - self._checked >= self.recheck_seconds:
                    self._reload(state, now)
            directory = self._directory
        if directory.expired(now):
            raise DirectoryExpired(f"the directory in force (version {directory.version}) expired at "
                                   f"{directory.expires_at} and no valid newer one has been published: refusing to "
                                   "go on; ask the operator for the current directory and sign it ('sgx directory "
                                   "sign')")
        return directory

    def _reload(self, state: tuple[int, int, int] | None, now: datetime) -> None:
        path, anchor = self._source  # type: ignore[misc] - only called with a source
        self._state, self._checked = state, self._clock()
        try:
            fresh = load(path, anchor, now=now)
        except DirectoryError as exc:
            log.error("directory %s not adopted, keeping version %s (expires %s): %s", path,
                      self._directory.version, self._directory.expires_at, exc)
            return
        if (fresh.version, fresh.issued_at) < (self._directory.version, self._directory.issued_at):
            log.error("directory %s not adopted: version %s issued %s is older than version %s in force (a "
                      "rollback would bring back revoked keys)", path, fresh.version, fresh.issued_at,
                      self._directory.version)
            return
        if fresh.payload() != self._directory.payload():
            log.warning("directory version %s (expires %s) adopted from %s", fresh.version, fresh.expires_at, path)
            self._directory = fresh


def _rows(name: str) -> list[dict]:
    with open(REFERENCE / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@functools.cache
def la_to_icb() -> dict[str, str]:
    """DfE LA code -> ICB ODS code (the partial public table with the corrections applied)."""
    mapping: dict[str, str] = {}
    for row in _rows("la_to_icb_partial.csv"):
        if row["icb_ods_code"] and row["dfe_la_code"] not in mapping:
            mapping[row["dfe_la_code"]] = row["icb_ods_code"]
    for row in _rows("la_to_icb_corrections.csv"):
        mapping[row["dfe_la_code"]] = row["icb_ods_code"]
    return mapping


@functools.cache
def las_in_several_icbs() -> frozenset[str]:
    """DfE LA codes whose area the public table splits between two or more ICBs: for a setting there, the
    ICB follows from where the setting is, not from its LA, so the table's first ICB is only a guess."""
    icbs: dict[str, set[str]] = {}
    for row in _rows("la_to_icb_partial.csv"):
        if row["icb_ods_code"]:
            icbs.setdefault(row["dfe_la_code"], set()).add(row["icb_ods_code"])
    return frozenset(code for code, found in icbs.items() if len(found) > 1)


def reference_directory() -> Directory:
    """Every live English LA (children's services and LADO), every ICB, Ofsted and CQC, with no keys yet."""
    from standard import terminology

    d = Directory()
    for concept in terminology.code_systems()["dfe-la"].concepts:
        props = dict(concept.properties)
        if props.get("status") != "live":
            continue
        codes = {"dfe_la": concept.code, "gss": props.get("gss", "")}
        d.add(Participant(f"la-{concept.code}", LA, f"{concept.display} children's services", codes))
        d.add(Participant(f"lado-{concept.code}", LADO, f"{concept.display} LADO", dict(codes)))
    for concept in terminology.code_systems()["icb"].concepts:
        d.add(Participant(f"icb-{concept.code}", ICB, concept.display,
                          {"ods": concept.code, "gss": dict(concept.properties).get("gss", "")}))
    d.add(Participant("ofsted", OFSTED, "Ofsted"))
    d.add(Participant("cqc", CQC, "Care Quality Commission"))
    d.add(Participant("router", OPERATOR, "Safeguarding Exchange router"))
    return d


DRAFT_FILE = "directory.draft.json"


def load_draft(root: Path) -> Directory:
    """The directory being edited in an exchange folder (unsigned)."""
    path = root / DRAFT_FILE
    if not path.exists():
        raise DirectoryError(f"{path} does not exist; start with 'sgx directory init --dir {root}'")
    return Directory.from_payload(orjson.loads(path.read_bytes()))


def save_draft(root: Path, directory: Directory) -> None:
    (root / DRAFT_FILE).write_bytes(orjson.dumps(directory.payload(), option=orjson.OPT_INDENT_2))
