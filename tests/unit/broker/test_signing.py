"""Detached JWS over the exact bytes: every refusal has its own error, and other JOSE code agrees."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from jwcrypto import jwk, jws

from broker import signing
from broker.directory import Directory, Participant
from broker.keys import SigningKey, b64url
from sgx.errors import (
    AlgorithmNotAllowed,
    BadSignature,
    ExpiredKey,
    IssuedAtOutsideWindow,
    MalformedSignature,
    RevokedKey,
    SenderMismatch,
    UnknownCritical,
    UnknownKey,
)

PAYLOAD = b'{"resourceType":"Bundle","value":0.50}'
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture()
def world():
    key = SigningKey.generate("la-886-1")
    directory = Directory()
    directory.add(Participant("la-886", "la-childrens-services", "Kent"))
    directory.add_key("la-886", key, valid_from=NOW - timedelta(days=1))
    return key, directory


def _sign(key, payload=PAYLOAD, **overrides):
    return signing.sign_message(payload, key, sender=overrides.get("sender", "la-886"), message_id="urn:uuid:1",
                                event="placement-started", now=overrides.get("now", NOW))


def _forge(header: dict, key: SigningKey, payload=PAYLOAD) -> str:
    protected = b64url(json.dumps(header).encode())
    sig = key.private.sign(f"{protected}.{b64url(payload)}".encode())
    return f"{protected}..{b64url(sig)}"


def _verify(token, directory, payload=PAYLOAD, **kw):
    return signing.verify(payload, token, directory.public_key_for, now=kw.pop("now", NOW), **kw)


def test_round_trip_over_exact_bytes(world):
    key, directory = world
    header = _verify(_sign(key), directory, expected_sender="la-886")
    assert (header.sender, header.message_id, header.event, header.kid) == (
        "la-886", "urn:uuid:1", "placement-started", "la-886-1")


def test_any_flipped_byte_of_the_payload_fails(world):
    key, directory = world
    token = _sign(key)
    for i in range(len(PAYLOAD)):
        changed = bytearray(PAYLOAD)
        changed[i] ^= 0x01
        with pytest.raises(BadSignature):
            _verify(token, directory, payload=bytes(changed))


def test_a_changed_protected_header_fails(world):
    key, directory = world
    protected, _, sig = _sign(key).split(".")
    header = json.loads(base64.urlsafe_b64decode(protected + "=="))
    header["jti"] = "urn:uuid:2"
    with pytest.raises(BadSignature):
        _verify(f"{b64url(json.dumps(header).encode())}..{sig}", directory)


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "ES256", "Ed25519"])
def test_only_eddsa_is_accepted(world, alg):
    key, directory = world
    header = {"alg": alg, "typ": signing.MESSAGE_TYP, "kid": "la-886-1", "iss": "la-886", "jti": "x",
              "sgx-evt": "e", "iat": int(NOW.timestamp())}
    with pytest.raises(AlgorithmNotAllowed):
        _verify(_forge(header, key), directory)


def test_hs256_with_the_public_key_as_secret_is_refused(world):
    key, directory = world
    raw = base64.urlsafe_b64decode(key.public_jwk()["x"] + "=")
    header = b64url(json.dumps({"alg": "HS256", "typ": signing.MESSAGE_TYP, "kid": "la-886-1", "iss": "la-886",
                                "jti": "x", "sgx-evt": "e", "iat": int(NOW.timestamp())}).encode())
    mac = hmac.new(raw, f"{header}.{b64url(PAYLOAD)}".encode(), hashlib.sha256).digest()
    with pytest.raises(AlgorithmNotAllowed):
        _verify(f"{header}..{b64url(mac)}", directory)


def test_unknown_crit_is_refused(world):
    key, directory = world
    header = {"alg": "EdDSA", "typ": signing.MESSAGE_TYP, "kid": "la-886-1", "iss": "la-886", "jti": "x",
              "sgx-evt": "e", "iat": int(NOW.timestamp()), "crit": ["exp-policy"], "exp-policy": 1}
    with pytest.raises(UnknownCritical):
        _verify(_forge(header, key), directory)


def test_embedded_keys_and_key_urls_are_refused(world):
    key, directory = world
    header = {"alg": "EdDSA", "typ": signing.MESSAGE_TYP, "kid": "la-886-1", "iss": "la-886", "jti": "x",
              "sgx-evt": "e", "iat": int(NOW.timestamp()), "jwk": key.public_jwk()}
    with pytest.raises(MalformedSignature):
        _verify(_forge(header, key), directory)


def test_sender_mismatch(world):
    key, directory = world
    with pytest.raises(SenderMismatch):
        _verify(_sign(key), directory, expected_sender="la-383")


def test_issued_at_outside_the_window(world):
    key, directory = world
    with pytest.raises(IssuedAtOutsideWindow):
        _verify(_sign(key, now=NOW - timedelta(minutes=10)), directory)
    with pytest.raises(IssuedAtOutsideWindow):
        _verify(_sign(key, now=NOW + timedelta(minutes=10)), directory)


def test_unknown_revoked_and_expired_keys(world):
    key, directory = world
    with pytest.raises(UnknownKey):
        _verify(_sign(SigningKey.generate("la-886-9")), directory)
    directory.revoke_key("la-886", "la-886-1", at=NOW - timedelta(minutes=1))
    with pytest.raises(RevokedKey):
        _verify(_sign(key), directory)
    newer = SigningKey.generate("la-886-2")
    directory.add_key("la-886", newer, valid_from=NOW + timedelta(days=1))
    with pytest.raises(ExpiredKey):
        _verify(_sign(newer), directory)


def test_rotation_old_messages_still_verify_after_the_new_key_takes_over(world):
    key, directory = world
    old_token = _sign(key)
    directory.participants["la-886"].keys[0]["valid_until"] = (NOW + timedelta(minutes=1)).isoformat()
    newer = SigningKey.generate("la-886-2")
    directory.add_key("la-886", newer, valid_from=NOW + timedelta(minutes=1))
    assert _verify(old_token, directory).kid == "la-886-1"
    later = NOW + timedelta(minutes=2)
    with pytest.raises(ExpiredKey):
        _verify(_sign(key, now=later), directory, now=later)
    assert _verify(_sign(newer, now=later), directory, now=later).kid == "la-886-2"


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c", "e30.e30.", "!!..!!"])
def test_malformed_tokens(world, token):
    _, directory = world
    with pytest.raises(MalformedSignature):
        _verify(token, directory)


def test_interoperates_with_jwcrypto_both_ways(world):
    key, directory = world
    public = jwk.JWK(**key.public_jwk())
    token = _sign(key)
    protected, _, sig = token.split(".")
    theirs = jws.JWS()
    theirs.deserialize(f"{protected}.{b64url(PAYLOAD)}.{sig}")
    theirs.verify(public, alg="EdDSA")  # raises if it disagrees

    private = jwk.JWK.from_pem(key.private.private_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).Encoding.PEM,
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).PrivateFormat.PKCS8,
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).NoEncryption()))
    signer = jws.JWS(PAYLOAD)
    signer.add_signature(private, protected=json.dumps(
        {"alg": "EdDSA", "typ": signing.MESSAGE_TYP, "kid": "la-886-1", "iss": "la-886", "jti": "urn:uuid:1",
         "sgx-evt": "placement-started", "iat": int(NOW.timestamp())}))
    compact = signer.serialize(compact=True)
    head, _, tail = compact.split(".")
    assert _verify(f"{head}..{tail}", directory).sender == "la-886"
