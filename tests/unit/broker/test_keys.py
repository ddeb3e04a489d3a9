"""Key files: plain PKCS#8 PEM with the kid beside it; earlier files with a kid line still load and migrate;
public keys made elsewhere are read from a JWK or a PEM, and everything else is refused with its reason."""

from __future__ import annotations

import stat

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.keys import (
    SigningKey,
    b64url,
    is_legacy_key_file,
    jwk_thumbprint,
    key_files,
    migrate_key_file,
    public_jwk,
    public_key_file,
    public_key_from_jwk,
    read_public_key,
)
from standard.errors import DirectoryError

PEM, SPKI = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo


def _legacy_file(path, key: SigningKey) -> None:
    """A key file as earlier versions wrote it: a kid line, then the PKCS#8 PEM."""
    path.write_bytes(f"kid: {key.kid}\n".encode() + key.private_pem())
    path.chmod(0o600)


def _pkcs8(private) -> bytes:
    return private.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def test_a_saved_key_is_plain_pkcs8_pem_mode_600_with_its_public_jwk_beside_it(tmp_path):
    key = SigningKey.generate("la-886-1")
    path = tmp_path / "keys" / "la-886-1.key"
    key.save(path)
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    # Any PKCS#8 reader takes it as it is: no line before the PEM.
    other = serialization.load_pem_private_key(data, password=None)
    assert _pkcs8(other) == key.private_pem()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    side = orjson.loads(public_key_file(path).read_bytes())
    assert side == key.public_jwk() and "d" not in side
    assert public_key_file(path).name == "la-886-1.pub.jwk"
    loaded = SigningKey.load(path)
    assert (loaded.kid, loaded.public_jwk()) == ("la-886-1", key.public_jwk())
    assert not list(path.parent.glob("*.partial"))
    assert key_files(path.parent) == [path]  # the .pub.jwk beside it is not taken for a key file


def test_a_pem_alone_gets_its_thumbprint_as_kid_and_an_explicit_kid_wins(tmp_path):
    private = Ed25519PrivateKey.generate()
    path = tmp_path / "vendor.key"
    path.write_bytes(_pkcs8(private))
    assert SigningKey.load(path).kid == jwk_thumbprint(private.public_key())
    assert SigningKey.load(path, kid="provider-x-7").kid == "provider-x-7"


def test_rfc7638_thumbprint_of_the_rfc8037_example_key():
    # RFC 8037 appendix A.3 gives this key's thumbprint.
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    public, _ = read_public_key(orjson.dumps({"kty": "OKP", "crv": "Ed25519", "x": x}), "rfc8037.jwk")
    assert jwk_thumbprint(public) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_a_public_jwk_beside_the_key_that_is_another_keys_is_refused(tmp_path):
    key, other = SigningKey.generate("la-886-1"), SigningKey.generate("la-886-2")
    key.save(tmp_path / "la-886-1.key")
    public_key_file(tmp_path / "la-886-1.key").write_bytes(orjson.dumps(other.public_jwk()))
    with pytest.raises(DirectoryError, match=r"la-886-1\.pub\.jwk: this public key is not the one of la-886-1\.key"):
        SigningKey.load(tmp_path / "la-886-1.key")


def test_an_earlier_key_file_with_a_kid_line_still_loads(tmp_path):
    key = SigningKey.generate("operator-1")
    path = tmp_path / "operator.key"
    _legacy_file(path, key)
    assert is_legacy_key_file(path)
    loaded = SigningKey.load(path)
    assert (loaded.kid, loaded.public_jwk()) == ("operator-1", key.public_jwk())


def test_migration_rewrites_an_earlier_file_in_the_plain_form_with_the_same_kid_and_key(tmp_path):
    key = SigningKey.generate("la-886-3")
    path = tmp_path / "la-886-3.key"
    _legacy_file(path, key)
    assert migrate_key_file(path) is True
    assert path.read_bytes() == key.private_pem()
    assert not is_legacy_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = SigningKey.load(path)
    assert (loaded.kid, loaded.public_jwk()) == ("la-886-3", key.public_jwk())
    assert migrate_key_file(path) is False  # already plain: left alone
    assert path.read_bytes() == key.private_pem()


def test_the_plain_form_loses_the_kid_without_the_file_beside_it(tmp_path):
    """Why the public JWK is written beside the key: the PEM alone does not carry the kid."""
    key = SigningKey.generate("la-886-1")
    path = tmp_path / "la-886-1.key"
    key.save(path)
    public_key_file(path).unlink()
    assert SigningKey.load(path).kid == key.thumbprint() != "la-886-1"


@pytest.mark.parametrize(("content", "says"), [
    (b"not a key", "not a PKCS#8 PEM private key"),
    (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a PKCS#8 PEM private key"),
    ("rsa", "not an Ed25519 private key"),
    ("encrypted", "encrypted"),
])
def test_unusable_private_key_files_name_the_file_and_the_fix(tmp_path, content, says):
    if content == "rsa":
        content = _pkcs8(rsa.generate_private_key(65537, 2048))
    elif content == "encrypted":
        content = Ed25519PrivateKey.generate().private_bytes(
            PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"secret"))
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(DirectoryError, match=says) as err:
        SigningKey.load(path)
    assert "bad.key" in str(err.value)


def test_a_missing_key_file_is_named():
    from pathlib import Path

    with pytest.raises(DirectoryError, match="no such key file"):
        SigningKey.load(Path("/nonexistent/la-1-1.key"))


# -- public keys sent by participants ---------------------------------------------------------------------------

def test_a_public_jwk_a_jwk_set_of_one_and_a_pem_are_read_with_the_same_key():
    private = Ed25519PrivateKey.generate()
    jwk = public_jwk("vendor-key", private.public_key())
    pem = private.public_key().public_bytes(PEM, SPKI)
    minimal = {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"]}
    for data, kid in [(orjson.dumps(jwk), "vendor-key"), (orjson.dumps({"keys": [jwk]}), "vendor-key"),
                      (orjson.dumps(minimal), None), (b"\n" + pem, None)]:
        public, found = read_public_key(data, "key.file")
        assert found == kid
        assert public_jwk("", public)["x"] == jwk["x"]


def _rsa():
    return rsa.generate_private_key(65537, 2048)


@pytest.mark.parametrize(("make", "says"), [
    (lambda: _pkcs8(Ed25519PrivateKey.generate()), "PRIVATE key"),
    (lambda: Ed25519PrivateKey.generate().private_bytes(PEM, serialization.PrivateFormat.OpenSSH,
                                                         serialization.NoEncryption()), "PRIVATE key"),
    (lambda: _rsa().private_bytes(PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()), "PRIVATE key"),
    (lambda: b"kid: la-886-1\n" + _pkcs8(Ed25519PrivateKey.generate()), "PRIVATE key"),
    (lambda: orjson.dumps({**public_jwk("k", Ed25519PrivateKey.generate().public_key()),
                           "d": b64url(b"\1" * 32)}), "PRIVATE key"),
])
def test_a_private_key_is_refused_and_the_sender_told_never_to_send_one(make, says):
    with pytest.raises(DirectoryError, match=says) as err:
        read_public_key(make(), "vendor.key")
    assert "never send a private key" in str(err.value) and "vendor.key" in str(err.value)


def test_a_reader_that_only_checks_kty_crv_and_x_would_take_a_private_jwk():
    """The broken twin: the directory's own JWK reader takes whatever has kty, crv and x, so a private JWK
    would pass; the registration reader must look for d."""
    private_jwk = {**public_jwk("k", Ed25519PrivateKey.generate().public_key()), "d": b64url(b"\1" * 32)}
    assert public_key_from_jwk(private_jwk) is not None
    with pytest.raises(DirectoryError, match="PRIVATE key"):
        read_public_key(orjson.dumps(private_jwk), "vendor.jwk")


@pytest.mark.parametrize(("make", "says"), [
    (lambda: _rsa().public_key().public_bytes(PEM, SPKI), "an RSA key"),
    (lambda: _rsa().public_key().public_bytes(PEM, serialization.PublicFormat.PKCS1), "an RSA key"),
    (lambda: ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(PEM, SPKI), "an EC"),
    (lambda: ed448.Ed448PrivateKey.generate().public_key().public_bytes(PEM, SPKI), "an Ed448 key"),
    (lambda: x25519.X25519PrivateKey.generate().public_key().public_bytes(PEM, SPKI), "X25519"),
    (lambda: orjson.dumps({"kty": "RSA", "n": "AQAB", "e": "AQAB"}), "an RSA key"),
    (lambda: orjson.dumps({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}), "an EC"),
    (lambda: orjson.dumps({"kty": "OKP", "crv": "X25519", "x": "AA"}), "OKP X25519"),
])
def test_other_key_types_are_refused_with_what_they_are(make, says):
    with pytest.raises(DirectoryError, match=says) as err:
        read_public_key(make(), "vendor.pub")
    assert "only Ed25519" in str(err.value)


@pytest.mark.parametrize(("data", "says"), [
    (b"", "not a public key"),
    (b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", "not a public key"),
    (b'{"kty": "OKP",', "not valid JSON"),
    (b"[1, 2]", "not a public key"),
    (b'{"keys": []}', "JWK Set with 0 keys"),
    (b'{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}', "not 32 bytes"),
    (b'{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo="}', "not 32 bytes"),
    (b'{"kty": "OKP", "crv": "Ed25519"}', "not 32 bytes"),
    (b'{"kty": "OKP", "crv": "Ed25519", "alg": "ES256", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}',
     "alg 'ES256'"),
    (b'{"kty": "OKP", "crv": "Ed25519", "use": "enc", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}',
     "use 'enc'"),
    (b"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n", "cannot be read"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "a certificate"),
])
def test_malformed_public_key_files_are_refused_naming_the_file(data, says):
    with pytest.raises(DirectoryError, match=says) as err:
        read_public_key(data, "sent.jwk")
    assert str(err.value).startswith("sent.jwk: ")
