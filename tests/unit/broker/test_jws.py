"""One JWS module for messages, the directory and conformance certificates: strict base64url and one header policy,
fed malformed tokens through every use. The broken twin swaps in a lenient decoder (padding added, other
characters skipped, unused bits ignored, as base64 libraries commonly decode) and the same tokens are then accepted:
so it is the strict decoder that refuses them, in every use."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from broker import directory as d
from broker import jws, signing
from broker.keys import SigningKey
from conformance import certificate
from standard.errors import (
    AlgorithmNotAllowed,
    ConformanceError,
    DirectoryError,
    MalformedSignature,
    SignatureRejected,
    UnknownCritical,
)

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
KEY = SigningKey.generate("la-886-1")
OPERATOR = SigningKey.generate("operator-1")
BODY = b'{"resourceType":"Bundle","score":0.50}'
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _loose(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "==")


# Each turns a canonical base64url text into one a strict decoder must refuse.
def _padded(text: str) -> str:
    return text + "=" * (-len(text) % 4 or 4)


def _spaced(text: str) -> str:
    return f"{text[:8]} {text[8:20]}\n{text[20:]}"


def _unused_bits_set(text: str) -> str:
    # An Ed25519 signature is 64 bytes: 86 characters, the last carrying 2 bits and 4 unused (zero when canonical).
    return text[:-1] + _ALPHABET[_ALPHABET.index(text[-1]) | 1]


def _standard_alphabet(text: str) -> str:
    return text[:5] + "+/" + text[7:]


def _one_too_many(text: str) -> str:
    return text + "A" * ((1 - len(text)) % 4 or 4)  # a length of 4n + 1, which no byte string encodes to


SAME_BYTES = {"padding": _padded, "whitespace": _spaced, "unused bits set": _unused_bits_set}
MALFORMED = {**SAME_BYTES, "+ and / of the standard alphabet": _standard_alphabet, "4n+1 characters": _one_too_many}


def test_the_malformations_are_what_they_say():
    signature = jws.b64url(KEY.private.sign(b"x"))
    assert len(signature) == 86
    for name, spoil in SAME_BYTES.items():
        assert spoil(signature) != signature and _loose(spoil(signature)) == _loose(signature), name


@pytest.mark.parametrize("text", ["", "QQ", "QUE", "QUFB", jws.b64url(bytes(range(256)))])
def test_canonical_base64url_round_trips(text):
    assert jws.b64url(jws.b64url_decode(text)) == text


@pytest.mark.parametrize("spoil", MALFORMED.values(), ids=MALFORMED)
def test_the_strict_decoder_refuses(spoil):
    with pytest.raises(ValueError):
        jws.b64url_decode(spoil(jws.b64url(KEY.private.sign(b"x"))))


@pytest.mark.parametrize("bad", [None, b"QQ", "QR", "QUF=", "Q", "Q\u00e9"])
def test_the_strict_decoder_refuses_the_odd_ones(bad):
    with pytest.raises(ValueError):
        jws.b64url_decode(bad)


# The three uses, each with a way to spoil its signature text and a check that raises that use's error.

def _message():
    token = signing.sign_message(BODY, KEY, sender="la-886", message_id="urn:uuid:m", event="e", now=NOW)
    return token


def _verify_message(token: str) -> None:
    signing.verify(BODY, token, lambda kid, sender, iat: KEY.public, now=NOW)


def _spoil_message(token: str, spoil) -> str:
    protected, _, signature = token.split(".")
    return f"{protected}..{spoil(signature)}"


def _directory() -> bytes:
    return d.reference_directory().sign(OPERATOR, valid_for=timedelta(days=7), now=datetime.now(UTC))


def _verify_directory(document: bytes) -> None:
    d.load(document, OPERATOR.public)


def _spoil_directory(document: bytes, spoil) -> bytes:
    doc = orjson.loads(document)
    doc["signature"] = spoil(doc["signature"])
    return orjson.dumps(doc)


def _certificate() -> str:
    moment = int(datetime.now(UTC).timestamp())
    return signing.sign_attached({"iss": "op", "iat": moment, "exp": moment + 86400, "report": "sha256:x"},
                                 OPERATOR, certificate.TYP)


def _verify_certificate(token: str) -> None:
    certificate.verify(token, OPERATOR.public)


def _spoil_certificate(token: str, spoil) -> str:
    protected, payload, signature = token.split(".")
    return f"{protected}.{payload}.{spoil(signature)}"


USES = {
    "message": (_message, _verify_message, _spoil_message, SignatureRejected),
    "directory": (_directory, _verify_directory, _spoil_directory, DirectoryError),
    "certificate": (_certificate, _verify_certificate, _spoil_certificate, ConformanceError),
}


@pytest.mark.parametrize("use", USES)
def test_every_use_accepts_its_own_good_token(use):
    make, check, _, _ = USES[use]
    check(make())


@pytest.mark.parametrize("spoil", MALFORMED.values(), ids=MALFORMED)
@pytest.mark.parametrize("use", USES)
def test_every_use_refuses_a_malformed_signature_text(use, spoil):
    make, check, spoil_in, error = USES[use]
    with pytest.raises(error):
        check(spoil_in(make(), spoil))


@pytest.mark.parametrize("spoil", SAME_BYTES.values(), ids=SAME_BYTES)
@pytest.mark.parametrize("use", USES)
def test_broken_twin_a_lenient_decoder_accepts_them_in_every_use(use, spoil, monkeypatch):
    make, check, spoil_in, _ = USES[use]
    token = make()
    monkeypatch.setattr(jws, "b64url_decode", _loose)
    check(spoil_in(token, spoil))  # no error: what the strict decoder refused is taken as the same signature


# One header policy: EdDSA only, no crit, no key in the header, the typ of the use.

def _forged_header(use: str, changes: dict, drop: tuple[str, ...] = ()) -> object:
    """A token of the use signed with the right key but with the header changed, so only the policy refuses it."""
    make, *_ = USES[use]
    token = make()
    if use == "directory":
        doc = orjson.loads(token)
        protected, payload = doc["protected"], doc["payload"]
    else:
        protected, payload, _ = token.split(".")
    header = {k: v for k, v in orjson.loads(jws.b64url_decode(protected)).items() if k not in drop} | changes
    new_protected = jws.b64url(orjson.dumps(header))
    key = KEY if use == "message" else OPERATOR
    signed_payload = jws.b64url(BODY) if use == "message" else payload
    signature = jws.b64url(key.private.sign(f"{new_protected}.{signed_payload}".encode("ascii")))
    if use == "directory":
        return orjson.dumps({"protected": new_protected, "payload": payload, "signature": signature})
    return f"{new_protected}.{'' if use == 'message' else payload}.{signature}"


HEADERS = {
    "alg none": ({"alg": "none"}, (), AlgorithmNotAllowed),
    "alg HS256": ({"alg": "HS256"}, (), AlgorithmNotAllowed),
    "no alg": ({}, ("alg",), AlgorithmNotAllowed),
    "crit": ({"crit": ["exp"], "exp": 1}, (), UnknownCritical),
    "empty crit": ({"crit": []}, (), UnknownCritical),
    "a key in the header": ({"jwk": {"kty": "OKP"}}, (), MalformedSignature),
    "a key URL": ({"jku": "https://example.org/keys"}, (), MalformedSignature),
    "another typ": ({"typ": "JWT"}, (), MalformedSignature),
}


@pytest.mark.parametrize("case", HEADERS)
@pytest.mark.parametrize("use", USES)
def test_every_use_applies_the_one_header_policy(use, case):
    changes, drop, reason = HEADERS[case]
    _, check, _, error = USES[use]
    forged = _forged_header(use, changes, drop)
    with pytest.raises(error) as caught:
        check(forged)
    if use == "message":
        assert isinstance(caught.value, reason)


@pytest.mark.parametrize("case", HEADERS)
def test_the_policy_names_the_reason(case):
    changes, drop, reason = HEADERS[case]
    header = {k: v for k, v in {"alg": "EdDSA", "typ": "t", "kid": "k"}.items() if k not in drop} | changes
    with pytest.raises(reason):
        jws.check_header(header, "t")


def test_a_header_that_is_not_an_object_and_a_payload_where_none_belongs_are_refused():
    with pytest.raises(MalformedSignature):
        jws.check_header(["alg", "EdDSA"], "t")
    message = _message()
    protected, _, signature = message.split(".")
    with pytest.raises(MalformedSignature, match="detached"):
        jws.parse_compact(f"{protected}.{jws.b64url(BODY)}.{signature}", detached=True)
    with pytest.raises(MalformedSignature):
        jws.parse_compact(message, detached=False)
    with pytest.raises(MalformedSignature):
        jws.parse_flattened({"protected": protected, "signature": signature})


@pytest.mark.parametrize("case", HEADERS)
@pytest.mark.parametrize("use", USES)
def test_broken_twin_without_the_header_policy_every_use_accepts_the_forged_headers(use, case, monkeypatch):
    changes, drop, _ = HEADERS[case]
    _, check, _, _ = USES[use]
    forged = _forged_header(use, changes, drop)
    monkeypatch.setattr(jws, "check_header", lambda header, typ: header)
    check(forged)  # signed with the right key: only the policy stood in the way
