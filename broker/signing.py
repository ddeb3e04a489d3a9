"""Detached JWS (RFC 7515 appendix F) with EdDSA/Ed25519 over the exact bytes sent.

The compact form is ``BASE64URL(header)..BASE64URL(signature)``; the signing input is the
header and the base64url of the payload bytes, as RFC 7515 defines, so any JOSE library can
verify it given the payload. No canonicalisation: FHIR decimals would not survive it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.keys import SigningKey, b64url, b64url_decode
from sgx.errors import (
    AlgorithmNotAllowed,
    BadSignature,
    IssuedAtOutsideWindow,
    MalformedSignature,
    SenderMismatch,
    UnknownCritical,
)

ALG = "EdDSA"
MESSAGE_TYP = "sgx-message+jws"
DEFAULT_WINDOW_SECONDS = 300
_UNDERSTOOD_CRIT: frozenset[str] = frozenset()
# Key-carrying headers are never honoured: keys come from the directory only.
_REFUSED_HEADERS = ("jku", "x5u", "jwk", "x5c")


@dataclass(frozen=True)
class SignedHeader:
    """The protected header of a message signature."""

    kid: str
    sender: str
    message_id: str
    event: str
    issued_at: int
    typ: str = MESSAGE_TYP

    def as_dict(self) -> dict:
        return {"alg": ALG, "typ": self.typ, "kid": self.kid, "iss": self.sender, "jti": self.message_id,
                "sgx-evt": self.event, "iat": self.issued_at}


def sign(payload: bytes, key: SigningKey, header: SignedHeader) -> str:
    """Sign the exact payload bytes; return the detached compact JWS."""
    if header.kid != key.kid:
        raise ValueError(f"header kid {header.kid!r} is not the key's kid {key.kid!r}")
    protected = b64url(orjson.dumps(header.as_dict()))
    signing_input = f"{protected}.{b64url(payload)}".encode("ascii")
    return f"{protected}..{b64url(key.private.sign(signing_input))}"


def sign_message(payload: bytes, key: SigningKey, *, sender: str, message_id: str, event: str,
                 now: datetime | None = None) -> str:
    issued = int((now or datetime.now(UTC)).timestamp())
    return sign(payload, key, SignedHeader(key.kid, sender, message_id, event, issued))


def read_header(jws: str) -> dict:
    """The protected header of a detached compact JWS, unverified (to find the kid)."""
    if not isinstance(jws, str) or jws.count(".") != 2:
        raise MalformedSignature("the signature is not a compact JWS (three dot-separated parts)")
    protected, payload_part, signature = jws.split(".")
    if payload_part:
        raise MalformedSignature("the JWS carries its payload; send a detached JWS (header..signature)")
    try:
        header = orjson.loads(b64url_decode(protected))
        b64url_decode(signature)
    except (ValueError, orjson.JSONDecodeError):
        raise MalformedSignature("the JWS header or signature is not base64url JSON") from None
    if not isinstance(header, dict):
        raise MalformedSignature("the JWS protected header is not a JSON object")
    return header


def verify(payload: bytes, jws: str, public_key_for: Callable[[str, str, int], Ed25519PublicKey], *,
           expected_sender: str | None = None, typ: str = MESSAGE_TYP, now: datetime | None = None,
           window_seconds: int = DEFAULT_WINDOW_SECONDS) -> SignedHeader:
    """Verify a detached JWS over `payload`.

    Args:
        public_key_for: (kid, sender, issued_at) -> key; raises UnknownKey, RevokedKey or ExpiredKey.
        expected_sender: the sender the message or the connection names; the signer must be it.

    Raises:
        SignatureRejected: a subclass naming the reason.
    """
    header = read_header(jws)
    if header.get("alg") != ALG:
        raise AlgorithmNotAllowed(f"alg {header.get('alg')!r} is not accepted; sign with EdDSA (Ed25519)")
    crit = header.get("crit")
    if crit is not None:
        unknown = [c for c in crit if c not in _UNDERSTOOD_CRIT] if isinstance(crit, list) else [crit]
        if unknown or not crit:
            raise UnknownCritical(f"critical header parameters {unknown!r} are not understood")
    if any(h in header for h in _REFUSED_HEADERS):
        raise MalformedSignature("the JWS header carries a key or key URL; keys come from the directory only")
    if header.get("typ") != typ:
        raise MalformedSignature(f"typ must be {typ!r}")
    fields = {k: header.get(k) for k in ("kid", "iss", "jti", "sgx-evt")}
    # type() rather than isinstance: JSON true is a Python bool, which isinstance counts as an int.
    if not all(isinstance(v, str) and v for v in fields.values()) or type(header.get("iat")) is not int:
        raise MalformedSignature("the header needs kid, iss, jti, sgx-evt (strings) and iat (integer seconds)")
    signed = SignedHeader(fields["kid"], fields["iss"], fields["jti"], fields["sgx-evt"], header["iat"], typ)
    if expected_sender is not None and signed.sender != expected_sender:
        raise SenderMismatch("the signer is not the sender named by the message and the connection")
    moment = int((now or datetime.now(UTC)).timestamp())
    if abs(moment - signed.issued_at) > window_seconds:
        raise IssuedAtOutsideWindow(f"issued-at is more than {window_seconds} s from now; check the sender's clock "
                                    "or resend a freshly signed message")
    public = public_key_for(signed.kid, signed.sender, signed.issued_at)
    protected, _, signature = jws.split(".")
    try:
        public.verify(b64url_decode(signature), f"{protected}.{b64url(payload)}".encode("ascii"))
    except InvalidSignature:
        raise BadSignature("the signature does not verify over the bytes received") from None
    return signed


def sign_attached(claims: dict, key: SigningKey, typ: str) -> str:
    """A standalone compact JWS (payload attached) over JSON claims: for documents kept on their own, such as
    conformance certificates, rather than messages that travel beside their signature."""
    protected = b64url(orjson.dumps({"alg": ALG, "typ": typ, "kid": key.kid}))
    payload = b64url(orjson.dumps(claims))
    signature = key.private.sign(f"{protected}.{payload}".encode("ascii"))
    return f"{protected}.{payload}.{b64url(signature)}"


def verify_attached(jws: str, public: Ed25519PublicKey, typ: str) -> tuple[dict, dict]:
    """The protected header and claims of a standalone compact JWS, once its signature checks out.

    Raises:
        MalformedSignature: not a compact JWS of that type with a JSON object as payload.
        AlgorithmNotAllowed: not EdDSA.
        BadSignature: the signature does not verify with `public`.
    """
    parts = jws.strip().split(".") if isinstance(jws, str) else []
    if len(parts) != 3 or not parts[1]:
        raise MalformedSignature("not a compact JWS with its payload (three dot-separated parts)")
    try:
        header, claims = orjson.loads(b64url_decode(parts[0])), orjson.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, orjson.JSONDecodeError):
        raise MalformedSignature("the JWS parts are not base64url JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise MalformedSignature("the JWS header and payload must be JSON objects")
    if header.get("alg") != ALG:
        raise AlgorithmNotAllowed(f"alg {header.get('alg')!r} is not accepted; EdDSA (Ed25519) only")
    if header.get("typ") != typ or "crit" in header or any(h in header for h in _REFUSED_HEADERS):
        raise MalformedSignature(f"the JWS header must have typ {typ!r} and no crit or key members")
    try:
        public.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
    except InvalidSignature:
        raise BadSignature("the signature does not verify with the given public key") from None
    return header, claims
