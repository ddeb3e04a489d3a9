"""`sgx directory add-key`: register a public key a participant made elsewhere; refuse, clearly and without a
traceback, private keys, other key types, malformed files, unknown participants and duplicates.
`sgx directory migrate-keys`: earlier key files rewritten in the plain form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker import directory as d
from broker import signing
from broker.cli import load_signed
from broker.jws import b64url
from broker.keys import SigningKey, jwk_thumbprint, public_jwk, public_key_file
from sgx.cli import cli
from standard.errors import ExpiredKey, UnknownKey

PEM, SPKI = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
PKCS8, NONE = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()


def run(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert (result.exit_code == 0) == ok, result.output
    if not ok:  # a clear message and exit 1 or 2, never an exception escaping to the user
        assert result.exit_code in (1, 2) and isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.output
    return result.output


@pytest.fixture()
def root(tmp_path):
    folder = tmp_path / "exchange"
    run("directory", "init", "--dir", folder)
    run("directory", "add-participant", "--dir", folder, "--id", "provider-vendor", "--kind", "provider",
        "--name", "Vendor Care Ltd")
    return folder


def _draft(root) -> d.Directory:
    return d.Directory.from_payload(orjson.loads((root / "directory.draft.json").read_bytes()))


def _write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_vendor_jwk_is_registered_under_its_thumbprint_and_verifies_the_vendors_signatures(root, tmp_path):
    vendor = Ed25519PrivateKey.generate()  # made "elsewhere": only the public half reaches the operator
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": public_jwk("", vendor.public_key())["x"]}
    out = run("directory", "add-key", "--dir", root, "--participant", "provider-vendor", "--public-key",
              _write(tmp_path, "vendor.jwk", orjson.dumps(jwk)))
    kid = jwk_thumbprint(vendor.public_key())
    assert f"key {kid} added for provider-vendor" in out
    run("directory", "sign", "--dir", root)
    published = load_signed(root)
    entry = published.participant("provider-vendor").keys[0]
    assert (entry["kid"], entry["x"], entry["alg"], entry["use"]) == (kid, jwk["x"], "EdDSA", "sig")
    valid_from, valid_until = (datetime.fromisoformat(entry[k].replace("Z", "+00:00"))
                               for k in ("valid_from", "valid_until"))
    assert timedelta(days=364) < valid_until - valid_from < timedelta(days=366)

    # The vendor signs with its own key and the kid it can compute itself; the exchange verifies it.
    body = b'{"resourceType":"Bundle"}'
    token = signing.sign_message(body, SigningKey(kid, vendor), sender="provider-vendor", message_id="urn:uuid:1",
                                 event="serious-incident")
    assert signing.verify(body, token, published.public_key_for, expected_sender="provider-vendor").kid == kid


def test_a_pem_public_key_with_a_kid_and_validity_dates(root, tmp_path):
    vendor = Ed25519PrivateKey.generate()
    pem = _write(tmp_path, "vendor.pem", vendor.public_key().public_bytes(PEM, SPKI))
    run("directory", "add-key", "--dir", root, "--participant", "provider-vendor", "--public-key", pem,
        "--kid", "vendor-2026", "--not-before", "2026-01-01", "--expires", "2099-01-01T00:00:00Z")
    entry = _draft(root).participant("provider-vendor").keys[0]
    assert (entry["kid"], entry["valid_from"], entry["valid_until"]) == (
        "vendor-2026", "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z")
    directory = _draft(root)
    key = SigningKey("vendor-2026", vendor)
    with pytest.raises(ExpiredKey):  # signed before --not-before
        signing.verify(b"x", signing.sign_message(b"x", key, sender="provider-vendor", message_id="m", event="e",
                                                  now=datetime(2025, 12, 31, tzinfo=UTC)),
                       directory.public_key_for, now=datetime(2025, 12, 31, tzinfo=UTC))


def test_the_jwks_own_kid_is_kept(root, tmp_path):
    jwk = public_jwk("vendor-a", Ed25519PrivateKey.generate().public_key())
    run("directory", "add-key", "--dir", root, "--participant", "provider-vendor", "--public-key",
        _write(tmp_path, "k.jwk", orjson.dumps(jwk)))
    assert [k["kid"] for k in _draft(root).participant("provider-vendor").keys] == ["vendor-a"]


def _refused(root, tmp_path, data: bytes, *extra, participant="provider-vendor") -> str:
    before = (root / "directory.draft.json").read_bytes()
    out = run("directory", "add-key", "--dir", root, "--participant", participant, "--public-key",
              _write(tmp_path, "sent.key", data), *extra, ok=False)
    assert (root / "directory.draft.json").read_bytes() == before  # nothing registered
    return out


def test_a_private_key_is_refused_and_never_registered(root, tmp_path):
    private = Ed25519PrivateKey.generate()
    for data in (private.private_bytes(PEM, PKCS8, NONE),
                 orjson.dumps({**public_jwk("k", private.public_key()), "d": b64url(b"\0" * 32)})):
        out = _refused(root, tmp_path, data)
        assert "PRIVATE key" in out and "never send a private key" in out and "sent.key" in out
        assert "BEGIN PRIVATE KEY" not in out and b64url(b"\0" * 32) not in out  # the key is not echoed


@pytest.mark.parametrize(("make", "says"), [
    (lambda: rsa.generate_private_key(65537, 2048).public_key().public_bytes(PEM, SPKI), "an RSA key"),
    (lambda: ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(PEM, SPKI), "an EC (ECDSA) key"),
    (lambda: orjson.dumps({"kty": "RSA", "n": "AQAB", "e": "AQAB"}), "an RSA key"),
    (lambda: b"hello", "not a public key"),
    (lambda: b"{oops", "not valid JSON"),
])
def test_other_keys_and_malformed_files_are_refused(root, tmp_path, make, says):
    assert says in _refused(root, tmp_path, make())


def test_an_unknown_participant_is_refused(root, tmp_path):
    data = orjson.dumps(public_jwk("k", Ed25519PrivateKey.generate().public_key()))
    assert "participant 'provider-nobody' is not in the directory" in _refused(
        root, tmp_path, data, participant="provider-nobody")


def test_a_duplicate_kid_or_a_key_registered_twice_is_refused(root, tmp_path):
    first = Ed25519PrivateKey.generate().public_key()
    run("directory", "add-key", "--dir", root, "--participant", "provider-vendor", "--public-key",
        _write(tmp_path, "a.pem", first.public_bytes(PEM, SPKI)), "--kid", "vendor-1")
    second = Ed25519PrivateKey.generate().public_key().public_bytes(PEM, SPKI)
    assert "already has a key 'vendor-1'" in _refused(root, tmp_path, second, "--kid", "vendor-1")
    again = first.public_bytes(PEM, SPKI)
    assert "already registered for 'provider-vendor' as 'vendor-1'" in _refused(root, tmp_path, again, "--kid",
                                                                              "vendor-2")
    out = _refused(root, tmp_path, again, "--kid", "x", participant="la-886")
    assert "already registered for 'provider-vendor'" in out


def test_contradictory_or_unusable_options_are_refused(root, tmp_path):
    jwk = orjson.dumps(public_jwk("vendor-a", Ed25519PrivateKey.generate().public_key()))
    assert "JWK's kid is 'vendor-a' but --kid says 'vendor-b'" in _refused(root, tmp_path, jwk, "--kid", "vendor-b")
    bare = orjson.dumps({"kty": "OKP", "crv": "Ed25519", "x": public_jwk("", Ed25519PrivateKey.generate()
                                                                          .public_key())["x"]})
    assert "is not usable" in _refused(root, tmp_path, bare, "--kid", "../../etc/passwd")
    assert "must be after --not-before" in _refused(root, tmp_path, bare, "--not-before", "2026-05-01",
                                                    "--expires", "2026-04-01")
    assert "is in the past" in _refused(root, tmp_path, bare, "--expires", "2001-01-01")
    assert "not an ISO 8601" in _refused(root, tmp_path, bare, "--expires", "next year")
    out = run("directory", "add-key", "--dir", root, "--participant", "provider-vendor", "--public-key",
              tmp_path / "missing.jwk", ok=False)
    assert "missing.jwk: cannot read" in out


def test_keygen_writes_plain_pem_and_the_kid_beside_it(root):
    run("directory", "keygen", "--dir", root, "--participant", "la-886")
    path = root / "keys" / "la-886-1.key"
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert orjson.loads(public_key_file(path).read_bytes())["kid"] == "la-886-1"
    assert (root / "keys" / "operator.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    out = run("directory", "keygen", "--dir", root, "--participant", "la-nowhere", ok=False)
    assert "'la-nowhere' is not in the directory" in out


def test_an_exchange_folder_with_earlier_key_files_still_signs_and_migrates(root):
    """A folder made by an earlier version: its key files carry a kid line. Signing works before and after
    `migrate-keys`, which rewrites them in the plain form (same kid and key)."""
    run("directory", "keygen", "--dir", root, "--participant", "la-886")
    keys = root / "keys"
    originals = {}
    for name in ("operator.key", "la-886-1.key"):
        key = SigningKey.load(keys / name)
        originals[name] = key.public_jwk()
        (keys / name).write_bytes(f"kid: {key.kid}\n".encode() + key.private_pem())
        public_key_file(keys / name).unlink()  # earlier versions wrote no public JWK beside the key
    run("directory", "sign", "--dir", root)
    assert "valid" in run("directory", "verify", "--dir", root)
    out = run("directory", "migrate-keys", "--dir", root)
    assert "migrated 2 key file(s): la-886-1.key, operator.key" in out
    for name, jwk in originals.items():
        assert (keys / name).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
        assert SigningKey.load(keys / name).public_jwk() == jwk
    assert "migrated 0 key file(s)" in run("directory", "migrate-keys", "--dir", root)
    run("directory", "sign", "--dir", root)
    assert "valid: version 3" in run("directory", "verify", "--dir", root)


def test_an_unknown_kid_is_what_a_vendor_gets_when_signing_with_an_unregistered_key(root, tmp_path):
    """The broken twin of registration: a key never added is refused when it signs."""
    run("directory", "sign", "--dir", root)
    vendor = Ed25519PrivateKey.generate()
    token = signing.sign_message(b"x", SigningKey(jwk_thumbprint(vendor.public_key()), vendor),
                                 sender="provider-vendor", message_id="m", event="e")
    with pytest.raises(UnknownKey):
        signing.verify(b"x", token, load_signed(root).public_key_for)


def test_a_key_file_copied_without_its_public_jwk_still_signs_with_the_registered_kid(root):
    """A participant's machine may get only <kid>.key; the outbox then takes the kid from the directory."""
    from broker.exchange_folder import ExchangeFolder

    run("directory", "keygen", "--dir", root, "--participant", "la-886")
    run("directory", "sign", "--dir", root)
    key_file = root / "keys" / "la-886-1.key"
    public_key_file(key_file).unlink()
    assert SigningKey.load(key_file).kid != "la-886-1"  # the PEM alone does not carry the kid
    assert ExchangeFolder(root).outbox("la-886").key.kid == "la-886-1"


@pytest.mark.parametrize("first", ["-", "_"])
def test_a_thumbprint_starting_with_a_dash_or_underscore_is_a_usable_kid(root, tmp_path, first):
    """Base64url thumbprints may begin with - or _ (about one key in 32): they must register as any other."""
    while not jwk_thumbprint((vendor := Ed25519PrivateKey.generate()).public_key()).startswith(first):
        pass
    kid = jwk_thumbprint(vendor.public_key())
    run("directory", "add-key", "--dir", root, "--participant", "provider-vendor", "--public-key",
        _write(tmp_path, "v.pem", vendor.public_key().public_bytes(PEM, SPKI)))
    assert [k["kid"] for k in _draft(root).participant("provider-vendor").keys] == [kid]
