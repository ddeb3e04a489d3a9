"""Message signatures: detached JWS (RFC 7515 appendix F) with EdDSA/Ed25519 over the exact bytes sent, and
attached JWS for standalone documents (conformance certificates).

The compact form is ``BASE64URL(header)..BASE64URL(signature)``; the signing input is the
header and the base64url of the payload bytes, as RFC 7515 defines, so any JOSE library can
verify it given the payload. No canonicalisation: FHIR decimals would not survive it. Encoding, strict decoding
and the header policy are `broker.jws`, shared with the directory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker import jws as jose
from broker.jws import ALG
from broker.keys import SigningKey
from standard.errors import BadSignature, IssuedAtOutsideWindow, MalformedSignature, SenderMismatch

MESSAGE_TYP = "sgx-message+jws"
DEFAULT_WINDOW_SECONDS = 300


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
    return jose.sign_compact(header.as_dict(), payload, key, detached=True)


def sign_message(payload: bytes, key: SigningKey, *, sender: str, message_id: str, event: str,
                 now: datetime | None = None) -> str:
    issued = int((now or datetime.now(UTC)).timestamp())
    return sign(payload, key, SignedHeader(key.kid, sender, message_id, event, issued))


def read_header(jws: str) -> dict:
    """The protected header of a detached compact JWS, unverified (to find the kid)."""
    return jose.parse_compact(jws, detached=True).header


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
    token = jose.parse_compact(jws, detached=True)
    header = jose.check_header(token.header, typ)
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
    try:
        jose.verify_signature(token, public, payload)
    except BadSignature:
        raise BadSignature("the signature does not verify over the bytes received") from None
    return signed


def sign_attached(claims: dict, key: SigningKey, typ: str) -> str:
    """A standalone compact JWS (payload attached) over JSON claims: for documents kept on their own, such as
    conformance certificates, rather than messages that travel beside their signature."""
    return jose.sign_compact({"typ": typ}, orjson.dumps(claims), key, detached=False)


def verify_attached(jws: str, public: Ed25519PublicKey, typ: str) -> tuple[dict, dict]:
    """The protected header and claims of a standalone compact JWS, once its signature checks out.

    Raises:
        MalformedSignature: not a compact JWS of that type with a JSON object as payload, or not strict base64url.
        AlgorithmNotAllowed: not EdDSA.
        UnknownCritical: the header lists critical extensions.
        BadSignature: the signature does not verify with `public`.
    """
    # A certificate pasted from a file may end in a newline; nothing else is forgiven.
    token = jose.parse_compact(jws.strip() if isinstance(jws, str) else jws, detached=False)
    header = jose.check_header(token.header, typ)
    claims = token.claims()
    try:
        jose.verify_signature(token, public)
    except BadSignature:
        raise BadSignature("the signature does not verify with the given public key") from None
    return header, claims
