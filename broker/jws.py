"""JWS (RFC 7515) with EdDSA/Ed25519: the one place where the project encodes, decodes and checks a JWS, for the
three things it signs: messages (compact, detached payload), the participant directory (flattened JSON) and
conformance certificates (compact, attached payload).

One policy for all three:
- base64url is decoded strictly: the URL-safe alphabet only, no padding, no whitespace, and the canonical encoding
  only (the unused low bits of the last character must be zero), so one value has exactly one text and a token
  cannot be altered without its signature failing or the token being refused;
- the protected header is a JSON object whose alg is EdDSA (every other alg, "none" and HMAC included, is refused),
  which lists no critical extension (none is understood), carries no key or key URL (keys come from the directory
  only) and has the typ of its use.

Errors are `SignatureRejected` subclasses naming the reason; a caller that reports in its own terms (the directory)
wraps them.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from standard.errors import AlgorithmNotAllowed, BadSignature, MalformedSignature, UnknownCritical

if TYPE_CHECKING:
    from broker.keys import SigningKey

ALG = "EdDSA"
# Key-carrying headers are never honoured: keys come from the directory only.
REFUSED_HEADERS = ("jku", "x5u", "jwk", "x5c")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of a base64url text, strictly.

    Raises:
        ValueError: not a string; a character outside the URL-safe alphabet (padding, whitespace, + and / among
            them); a length no encoding has (4n + 1); or a non-canonical text (unused low bits set), which a
            lenient decoder would read as the same bytes as another text.
    """
    if not isinstance(text, str) or not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url (the URL-safe alphabet without padding)")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url(data) != text:
        raise ValueError("not canonical base64url (the last character's unused bits are set)")
    return data


def check_header(header: object, typ: str) -> dict:
    """The header, once it passes the one policy (module docstring) for a JWS of type `typ`.

    Raises:
        MalformedSignature: not a JSON object, a key or key URL in it, or another typ.
        AlgorithmNotAllowed: alg is not EdDSA.
        UnknownCritical: it lists critical extensions (none is understood, so any is refused).
    """
    if not isinstance(header, dict):
        raise MalformedSignature("the JWS protected header is not a JSON object")
    if header.get("alg") != ALG:
        raise AlgorithmNotAllowed(f"alg {header.get('alg')!r} is not accepted; sign with EdDSA (Ed25519)")
    if "crit" in header:
        raise UnknownCritical(f"critical header parameters {header['crit']!r} are not understood")
    if any(h in header for h in REFUSED_HEADERS):
        raise MalformedSignature("the JWS header carries a key or key URL; keys come from the directory only")
    if header.get("typ") != typ:
        raise MalformedSignature(f"typ must be {typ!r}")
    return header


@dataclass(frozen=True)
class Token:
    """A JWS taken apart: the texts as received (the signing input is made of them) and what they decode to."""

    protected: str
    header: dict
    payload: str  # base64url; empty for a detached payload
    signature: bytes

    def claims(self) -> dict:
        """The attached payload as a JSON object."""
        try:
            claims = orjson.loads(b64url_decode(self.payload))
        except (ValueError, orjson.JSONDecodeError):
            raise MalformedSignature("the JWS payload is not base64url JSON") from None
        if not isinstance(claims, dict):
            raise MalformedSignature("the JWS payload must be a JSON object")
        return claims


def _token(protected: object, payload: object, signature: object) -> Token:
    if not all(isinstance(part, str) for part in (protected, payload, signature)):
        raise MalformedSignature("the JWS parts must be strings")
    try:
        header = orjson.loads(b64url_decode(protected))  # type: ignore[arg-type]
        raw_signature = b64url_decode(signature)  # type: ignore[arg-type]
        if payload:
            b64url_decode(payload)  # type: ignore[arg-type]
    except (ValueError, orjson.JSONDecodeError):
        raise MalformedSignature("the JWS header, payload or signature is not strict base64url (JSON header)") from None
    if not isinstance(header, dict):
        raise MalformedSignature("the JWS protected header is not a JSON object")
    return Token(protected, header, payload, raw_signature)  # type: ignore[arg-type]


def parse_compact(jws: object, *, detached: bool) -> Token:
    """A compact JWS (`header.payload.signature`; `header..signature` when the payload travels beside it).

    Raises:
        MalformedSignature: not three parts, a payload where none is expected (or none where one is), or a part
            that is not strict base64url.
    """
    if not isinstance(jws, str) or jws.count(".") != 2:
        raise MalformedSignature("the signature is not a compact JWS (three dot-separated parts)")
    protected, payload, signature = jws.split(".")
    if detached and payload:
        raise MalformedSignature("the JWS carries its payload; send a detached JWS (header..signature)")
    if not detached and not payload:
        raise MalformedSignature("not a compact JWS with its payload (three dot-separated parts)")
    return _token(protected, payload, signature)


def parse_flattened(document: object) -> Token:
    """A JWS in flattened JSON serialisation (RFC 7515 section 7.2.2): protected, payload, signature.

    Raises:
        MalformedSignature: not that shape, or a part that is not strict base64url.
    """
    if not isinstance(document, dict) or not {"protected", "payload", "signature"} <= set(document):
        raise MalformedSignature("not a flattened JWS (a JSON object with protected, payload and signature)")
    if not document["payload"]:
        raise MalformedSignature("the flattened JWS has no payload")
    return _token(document["protected"], document["payload"], document["signature"])


def verify_signature(token: Token, public: Ed25519PublicKey, payload: bytes | None = None) -> None:
    """Check the signature over the protected header and the payload (the detached `payload` bytes when given).

    Raises:
        BadSignature: it does not verify.
    """
    payload_text = b64url(payload) if payload is not None else token.payload
    try:
        public.verify(token.signature, f"{token.protected}.{payload_text}".encode("ascii"))
    except InvalidSignature:
        raise BadSignature("the signature does not verify") from None


def sign(header: dict, payload: bytes, key: SigningKey) -> tuple[str, str, str]:
    """The protected header, payload and signature texts of `payload` signed with `key`; `header` gets alg and kid."""
    protected = b64url(orjson.dumps({"alg": ALG, **header, "kid": key.kid}))
    payload_text = b64url(payload)
    signature = key.private.sign(f"{protected}.{payload_text}".encode("ascii"))
    return protected, payload_text, b64url(signature)


def sign_compact(header: dict, payload: bytes, key: SigningKey, *, detached: bool) -> str:
    protected, payload_text, signature = sign(header, payload, key)
    return f"{protected}.{'' if detached else payload_text}.{signature}"


def sign_flattened(header: dict, payload: bytes, key: SigningKey) -> dict:
    protected, payload_text, signature = sign(header, payload, key)
    return {"payload": payload_text, "protected": protected, "signature": signature}
