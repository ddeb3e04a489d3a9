"""The published signature contract (standard/source/signature-contract.json) and its worked examples.

The contract says, for implementations written elsewhere, exactly what the exchange signs and checks. Its
worked examples are computed here with the exchange's own signing code from a published TEST key (RFC 8037
appendix A.1, which is RFC 8032's first test vector): Ed25519 is deterministic, so the same inputs give the
same bytes in any language. The test suite recomputes them and compares them with the published file.

    python -m broker.signature_contract --write   # after a deliberate change: rewrite the worked examples
"""

from __future__ import annotations

import hashlib
import sys
from datetime import UTC, datetime

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker import signing
from broker.jws import b64url, b64url_decode
from broker.keys import SigningKey, jwk_thumbprint, public_jwk
from standard import artefacts

CONTRACT_FILE = artefacts.SIGNATURE_CONTRACT

# A PUBLISHED TEST KEY (RFC 8037 appendix A.1). Anyone can sign with it: it is for reproducing the worked
# examples only and must never be registered in a directory or used for anything else.
TEST_VECTOR_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"

EXAMPLE_SENDER = "provider-example-care"
EXAMPLE_MESSAGE_ID = "urn:uuid:0b4ad0a4-5c1e-4f6e-9d43-8d7f2e1c3a10"
EXAMPLE_EVENT = "serious-incident"
EXAMPLE_SIGNED_AT = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
EXAMPLE_ROUTED_AT = datetime(2026, 1, 1, 9, 30, 2, tzinfo=UTC)
# Any bytes can be signed; these are short on purpose, and hold a decimal and a non-ASCII letter to show
# that the bytes are signed as sent: nothing is canonicalised, re-encoded or re-serialised.
EXAMPLE_PAYLOAD = ('{"resourceType":"Bundle","id":"signature-test-vector","type":"message",'
                   '"note":"signature test vector, not a valid message","score":0.50,"label":"café"}').encode()


def test_vector_key() -> SigningKey:
    """The published test key, with its RFC 7638 thumbprint as kid."""
    private = Ed25519PrivateKey.from_private_bytes(b64url_decode(TEST_VECTOR_D))
    return SigningKey(jwk_thumbprint(private.public_key()), private)


def _utc(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def load() -> dict:
    return orjson.loads(CONTRACT_FILE.read_bytes())


def _signed(payload: bytes, key: SigningKey, jws: str) -> dict:
    protected, _, signature = jws.split(".")
    return {
        "protectedHeaderJson": b64url_decode(protected).decode("utf-8"),
        "protectedHeaderB64url": protected,
        "signingInput": f"{protected}.{b64url(payload)}",
        "signatureB64url": signature,
        "compactDetachedJws": jws,
        "compactAttachedJws": f"{protected}.{b64url(payload)}.{signature}",
    }


def _test_key_description(key: SigningKey) -> dict:
    pem = key.private_pem().decode("ascii")
    spki = key.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "warning": "PUBLISHED TEST KEY (RFC 8037 appendix A.1 = RFC 8032 section 7.1 TEST 1). Anyone can sign "
                   "with it. Use it only to reproduce these examples; never register it or sign anything else.",
        "privateJwk": {**public_jwk(key.kid, key.public), "d": TEST_VECTOR_D},
        "privatePkcs8Pem": pem,
        "publicJwk": key.public_jwk(),
        "publicSpkiPem": spki.decode("ascii"),
        "rfc7638Thumbprint": key.thumbprint(),
    }


def message_example(key: SigningKey | None = None) -> dict:
    """A message signature, made as the outbox makes it."""
    key = key or test_vector_key()
    jws = signing.sign_message(EXAMPLE_PAYLOAD, key, sender=EXAMPLE_SENDER, message_id=EXAMPLE_MESSAGE_ID,
                               event=EXAMPLE_EVENT, now=EXAMPLE_SIGNED_AT)
    return {
        "inputs": {"kid": key.kid, "iss": EXAMPLE_SENDER, "jti": EXAMPLE_MESSAGE_ID, "sgx-evt": EXAMPLE_EVENT,
                   "iat": int(EXAMPLE_SIGNED_AT.timestamp()), "iatUtc": _utc(EXAMPLE_SIGNED_AT)},
        "payloadUtf8": EXAMPLE_PAYLOAD.decode("utf-8"),
        "payloadB64url": b64url(EXAMPLE_PAYLOAD),
        "payloadBytes": len(EXAMPLE_PAYLOAD),
        "payloadSha256Hex": hashlib.sha256(EXAMPLE_PAYLOAD).hexdigest(),
        **_signed(EXAMPLE_PAYLOAD, key, jws),
        "amqp": {"body": "the payload bytes, exactly", "properties": {
            "message_id": EXAMPLE_MESSAGE_ID, "user_id": EXAMPLE_SENDER, "content_type": "application/fhir+json",
            "delivery_mode": 2, "headers": {"sgx-signature": jws, "sgx-sender": EXAMPLE_SENDER}}},
    }


def delivery_note_example(key: SigningKey | None = None) -> dict:
    """The note the router adds to a delivery, made by the router's own code."""
    from broker import routing
    from broker.directory import Directory
    from broker.router import DELIVERY, DELIVERY_SIGNATURE, SENDER, SIGNATURE, Router
    from broker.transport import Envelope

    key = key or test_vector_key()
    router = Router(Directory(), None, key, ":memory:", b"\0" * 32,  # type: ignore[arg-type] - signs only
                    now=lambda: EXAMPLE_ROUTED_AT)
    message = Envelope(EXAMPLE_MESSAGE_ID, EXAMPLE_PAYLOAD, {SIGNATURE: "(the sender's JWS, unchanged)",
                                                            SENDER: EXAMPLE_SENDER})
    delivered = router._delivery(message, EXAMPLE_MESSAGE_ID, routing.Route("la-371", ["host-la"]))
    note = delivered.headers[DELIVERY].encode("utf-8")
    return {
        "inputs": {"kid": key.kid, "iss": "router", "jti": EXAMPLE_MESSAGE_ID, "sgx-evt": "delivery",
                   "iat": int(EXAMPLE_ROUTED_AT.timestamp()), "iatUtc": _utc(EXAMPLE_ROUTED_AT)},
        "noteUtf8": note.decode("utf-8"),
        "noteB64url": b64url(note),
        **_signed(note, key, delivered.headers[DELIVERY_SIGNATURE]),
    }


def worked_examples() -> dict:
    key = test_vector_key()
    return {"testKey": _test_key_description(key), "message": message_example(key),
            "deliveryNote": delivery_note_example(key)}


def render(contract: dict) -> bytes:
    """The file's exact bytes: two-space indented JSON, UTF-8, a final newline."""
    return orjson.dumps(contract, option=orjson.OPT_INDENT_2) + b"\n"


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print(__doc__)
        return 2
    contract = load()
    contract["workedExamples"] = worked_examples()
    CONTRACT_FILE.write_bytes(render(contract))
    print(f"wrote the worked examples into {CONTRACT_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
