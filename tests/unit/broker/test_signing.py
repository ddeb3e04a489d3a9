"""Detached JWS over the exact bytes: every refusal has its own error, and other JOSE code agrees."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from jwcrypto import jwk, jws

from broker import signing
from broker.directory import Directory, Participant
from broker.jws import REFUSED_HEADERS, b64url
from broker.keys import SigningKey
from standard.errors import (
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


# -- the published contract and its worked examples ------------------------------------------------------------

def test_rfc8037_appendix_a4_is_reproduced_byte_for_byte():
    """The primitives are plain RFC 7515/8037: their own example (attached payload) comes out exactly."""
    from broker.signature_contract import test_vector_key

    key = test_vector_key()
    protected = b64url(b'{"alg":"EdDSA"}')
    payload = b64url(b"Example of Ed25519 signing")
    assert b64url(key.private.sign(f"{protected}.{payload}".encode())) == (
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg")


def test_the_published_worked_examples_are_what_the_exchange_produces_byte_for_byte():
    from broker import signature_contract as sc

    published = sc.CONTRACT_FILE.read_bytes()
    contract = orjson.loads(published)
    regenerated = sc.worked_examples()
    assert contract["workedExamples"] == regenerated
    assert sc.render({**contract, "workedExamples": regenerated}) == published  # the file's exact bytes
    message = contract["workedExamples"]["message"]
    assert message["compactDetachedJws"] == (
        "eyJhbGciOiJFZERTQSIsInR5cCI6InNneC1tZXNzYWdlK2p3cyIsImtpZCI6ImtQcktfcW14VldhWVZBOXd3QkY2SXVvM3ZWeno3VHhIQ1R3"
        "WEJ5Z3JTNGsiLCJpc3MiOiJwcm92aWRlci1leGFtcGxlLWNhcmUiLCJqdGkiOiJ1cm46dXVpZDowYjRhZDBhNC01YzFlLTRmNmUtOWQ0My04"
        "ZDdmMmUxYzNhMTAiLCJzZ3gtZXZ0Ijoic2VyaW91cy1pbmNpZGVudCIsImlhdCI6MTc2NzI1OTgwMH0..qRZV25PvQ-biBZTT1V71dLMjRJo9"
        "IU54UTI99nBAYwWkoEnRHRFgXgo1CyQfIkNV2YVKV4hAVMAwzICcffEMDg")


def test_the_worked_examples_follow_from_their_published_inputs_alone():
    """What a vendor does: from the published key, header text and payload text only, compute the signature."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from broker.jws import b64url_decode
    from broker.signature_contract import load

    examples = load()["workedExamples"]
    private = Ed25519PrivateKey.from_private_bytes(b64url_decode(examples["testKey"]["privateJwk"]["d"]))
    for name, payload_field in (("message", "payloadUtf8"), ("deliveryNote", "noteUtf8")):
        example = examples[name]
        header, payload = example["protectedHeaderJson"].encode(), example[payload_field].encode()
        signing_input = f"{b64url(header)}.{b64url(payload)}"
        assert signing_input == example["signingInput"]
        signature = b64url(private.sign(signing_input.encode("ascii")))
        assert f"{b64url(header)}..{signature}" == example["compactDetachedJws"], name
        assert orjson.loads(header)["typ"] == load()["protectedHeader"][name]["typ"]
        # The broken twin: signing the raw payload (RFC 7797 b64:false style) gives other bytes.
        raw_input = b64url(header).encode() + b"." + payload
        assert b64url(private.sign(raw_input)) != signature
    assert len(examples["message"]["payloadUtf8"].encode()) == examples["message"]["payloadBytes"]


def test_the_worked_example_verifies_with_the_published_public_key_and_jwcrypto_agrees():
    from broker.keys import public_key_from_jwk
    from broker.signature_contract import load

    examples = load()["workedExamples"]
    example, public = examples["message"], examples["testKey"]["publicJwk"]
    payload = example["payloadUtf8"].encode()
    at = datetime.fromtimestamp(example["inputs"]["iat"], UTC)
    signed = signing.verify(payload, example["compactDetachedJws"], lambda *_: public_key_from_jwk(public),
                            expected_sender=example["inputs"]["iss"], now=at)
    assert (signed.kid, signed.message_id, signed.event) == (
        public["kid"], example["inputs"]["jti"], example["inputs"]["sgx-evt"])
    theirs = jws.JWS()
    theirs.deserialize(example["compactAttachedJws"])
    theirs.verify(jwk.JWK(**public), alg="EdDSA")
    with pytest.raises(BadSignature):
        signing.verify(payload.replace(b"0.50", b"0.5"), example["compactDetachedJws"],
                       lambda *_: public_key_from_jwk(public), now=at)


def test_the_contract_states_what_the_code_does():
    from broker import router
    from broker.directory import DIRECTORY_TYP
    from broker.keys import KID_FORM
    from broker.signature_contract import load

    contract = load()
    assert (contract["algorithm"]["alg"], contract["clock"]["windowSeconds"]) == (
        signing.ALG, signing.DEFAULT_WINDOW_SECONDS)
    message, note = contract["protectedHeader"]["message"], contract["protectedHeader"]["deliveryNote"]
    assert (message["typ"], note["typ"]) == (signing.MESSAGE_TYP, router.DELIVERY_TYP)
    header = signing.SignedHeader("k", "s", "m", "e", 1).as_dict()
    assert [m["name"] for m in message["members"]] == list(header)
    assert [m["name"] for m in note["members"]] == list(header)
    assert contract["protectedHeader"]["refusedMembers"] == list(REFUSED_HEADERS)
    assert [h["name"] for h in contract["transport"]["headers"]] == [
        router.SIGNATURE, router.SENDER, router.DELIVERY, router.DELIVERY_SIGNATURE]
    assert contract["directory"]["protectedHeader"]["typ"] == DIRECTORY_TYP
    assert contract["kid"]["form"] == KID_FORM.pattern
    from broker.node import Node

    assert contract["clock"]["receivingNodeWindowSeconds"] == Node.__init__.__kwdefaults__["window_seconds"]
    note_example = orjson.loads(contract["workedExamples"]["deliveryNote"]["noteUtf8"])
    assert [m["name"] for m in contract["deliveryNote"]["members"] if m.get("required", True)] == list(note_example)


def test_the_docs_page_and_the_site_publish_the_same_contract(tmp_path):
    from html.parser import HTMLParser
    from pathlib import Path

    from broker.signature_contract import CONTRACT_FILE, load
    from standard.generate.site import write_site

    contract = load()
    message = contract["workedExamples"]["message"]
    published = [message["compactDetachedJws"], message["protectedHeaderJson"], message["payloadUtf8"],
                 message["payloadSha256Hex"], contract["workedExamples"]["testKey"]["privateJwk"]["d"],
                 contract["workedExamples"]["testKey"]["publicJwk"]["kid"]]
    names = [m["name"] for m in contract["protectedHeader"]["message"]["members"]] + [
        h["name"] for h in contract["transport"]["headers"]] + [
        m["name"] for m in contract["deliveryNote"]["members"]] + [
        contract["protectedHeader"]["message"]["typ"], contract["protectedHeader"]["deliveryNote"]["typ"],
        contract["directory"]["protectedHeader"]["typ"], contract["kid"]["form"]]
    markdown = (Path(__file__).resolve().parents[3] / "docs" / "signatures.md").read_text(encoding="utf-8")
    for text in published + names:
        assert text in markdown, text

    write_site(tmp_path)
    assert (tmp_path / "signature-contract.json").read_bytes() == CONTRACT_FILE.read_bytes()

    class Text(HTMLParser):
        def __init__(self):
            super().__init__()
            self.parts: list[str] = []

        def handle_data(self, data):
            self.parts.append(data)

    page = Text()
    page.feed((tmp_path / "signatures.html").read_text(encoding="utf-8"))
    text = "".join(page.parts)
    assert "<h1>" not in text  # markup, not escaped text
    for value in published[:3] + names:
        assert value in text, value
    assert 'href="signatures.html"' in (tmp_path / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("iat", [True, "1772452800", 1772452800.0, None])
def test_iat_must_be_a_json_integer(world, iat):
    key, directory = world
    header = {"alg": "EdDSA", "typ": signing.MESSAGE_TYP, "kid": "la-886-1", "iss": "la-886", "jti": "x",
              "sgx-evt": "e", "iat": iat}
    with pytest.raises(MalformedSignature, match="iat"):
        _verify(_forge(header, key), directory)
    header["iat"] = int(NOW.timestamp())  # the same header with an integer is accepted
    assert _verify(_forge(header, key), directory).issued_at == int(NOW.timestamp())


def test_the_window_is_inclusive_at_300_seconds_as_published(world):
    key, directory = world
    for offset in (-300, 300):
        _verify(_sign(key, now=NOW + timedelta(seconds=offset)), directory)
    for offset in (-301, 301):
        with pytest.raises(IssuedAtOutsideWindow):
            _verify(_sign(key, now=NOW + timedelta(seconds=offset)), directory)
