"""Ed25519 signing keys: generate, store (private keys 0600, never printed), publish as JWK.

A private key file is plain PKCS#8 PEM, as any tool writes it. Beside it, `<name>.pub.jwk` holds the public
JWK with the key's `kid` (public, not secret). Key files of earlier versions start with a `kid: ...` line
before the PEM; they still load, and `migrate_key_file` rewrites them in the plain form.

Public keys a participant generated elsewhere come in as a JWK (OKP, Ed25519) or a PEM SubjectPublicKeyInfo
(`read_public_key`); anything else, and above all a private key, is refused with a reason.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broker.jws import b64url, b64url_decode
from standard.errors import DirectoryError

LEGACY_KID_PREFIX = b"kid: "
# A kid names one key of its participant in the directory; keep it plain (it may name a file: no leading dot).
# Base64url characters may start it, since an RFC 7638 thumbprint may begin with "-" or "_".
KID_FORM = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._:-]{0,127}")
NEVER_SEND_PRIVATE = ("never send a private key to anyone, the operator included: send only the public key "
                      "(JWK without \"d\", or PEM 'PUBLIC KEY'). A private key that has been sent is exposed: "
                      "generate a new key pair")


def public_key_file(private_key_file: Path) -> Path:
    """Where the public JWK (with the kid) of a private key file lives: `keys/x.key` -> `keys/x.pub.jwk`."""
    return private_key_file.with_name(private_key_file.stem + ".pub.jwk")


@dataclass(frozen=True)
class SigningKey:
    """A participant's private signing key and the kid the directory knows it by."""

    kid: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def public_jwk(self) -> dict:
        return public_jwk(self.kid, self.public)

    def thumbprint(self) -> str:
        return jwk_thumbprint(self.public)

    def named_as_registered(self, registered: list[dict]) -> SigningKey:
        """This key under the kid a directory registered its public key with; itself when not registered."""
        x = public_jwk("", self.public)["x"]
        kid = next((k["kid"] for k in registered if k.get("x") == x and k.get("kid")), None)
        return SigningKey(kid, self.private) if kid else self

    @classmethod
    def generate(cls, kid: str) -> SigningKey:
        return cls(kid, Ed25519PrivateKey.generate())

    def private_pem(self) -> bytes:
        return self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())

    def save(self, path: Path) -> None:
        """Write the private key as plain PKCS#8 PEM, readable by the owner only, and its public JWK (with the
        kid) beside it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written under another name, then renamed: a crash never leaves half a key behind.
        partial = path.with_name(path.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(self.private_pem())
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(partial, 0o600)
        public_key_file(path).write_bytes(orjson.dumps(self.public_jwk(), option=orjson.OPT_INDENT_2))
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path, kid: str | None = None) -> SigningKey:
        """Read a private key file: plain PKCS#8 PEM or the earlier form with a `kid:` line first.

        The kid is, in order: the earlier form's `kid:` line, `kid` if given, the `kid` of the public JWK
        beside the file (which must be this key's), else the key's RFC 7638 thumbprint.

        Raises:
            DirectoryError: naming the file: missing, not PEM, encrypted, not Ed25519, or a mismatched JWK.
        """
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DirectoryError(f"{path}: no such key file; make one with 'sgx directory keygen'") from None
        legacy_kid = None
        if data.startswith(LEGACY_KID_PREFIX):
            first, _, data = data.partition(b"\n")
            legacy_kid = first[len(LEGACY_KID_PREFIX):].decode("utf-8", "replace").strip()
        private = _private_key_from_pem(data, path)
        return cls(legacy_kid or kid or _kid_beside(path, private.public_key()), private)


def _private_key_from_pem(data: bytes, path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise DirectoryError(f"{path}: the private key is encrypted; store it as unencrypted PKCS#8 PEM with "
                             "mode 600 (the file permissions protect it)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise DirectoryError(f"{path}: not a PKCS#8 PEM private key ('-----BEGIN PRIVATE KEY-----'); make one "
                             "with 'sgx directory keygen'") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise DirectoryError(f"{path}: not an Ed25519 private key; the exchange signs with Ed25519 only; "
                             "generate one with 'sgx directory keygen'")
    return key


def _kid_beside(path: Path, public: Ed25519PublicKey) -> str:
    side = public_key_file(path)
    if not side.exists():
        return jwk_thumbprint(public)
    try:
        jwk = orjson.loads(side.read_bytes())
        kid, x = jwk["kid"], jwk["x"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise DirectoryError(f"{side}: not a public JWK with a kid; delete it to use the key's thumbprint as "
                             "kid, or write it again") from None
    if x != public_jwk("", public)["x"]:
        raise DirectoryError(f"{side}: this public key is not the one of {path.name}; the files were mixed up")
    return kid


def is_legacy_key_file(path: Path) -> bool:
    """A key file of the earlier form (a `kid:` line before the PEM)."""
    with open(path, "rb") as fh:
        return fh.read(len(LEGACY_KID_PREFIX)) == LEGACY_KID_PREFIX


def migrate_key_file(path: Path) -> bool:
    """Rewrite an earlier-form key file as plain PKCS#8 PEM with its public JWK beside it (same kid);
    returns False when it already was plain."""
    if not is_legacy_key_file(path):
        return False
    SigningKey.load(path).save(path)
    return True


def public_jwk(kid: str, public: Ed25519PublicKey) -> dict:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": "EdDSA", "x": b64url(raw)}


def jwk_thumbprint(public: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of an Ed25519 public key: the required members crv, kty, x in
    that order, no whitespace."""
    x = public_jwk("", public)["x"]
    return b64url(hashlib.sha256(f'{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}'.encode("ascii")).digest())


def public_key_from_jwk(jwk: dict) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise DirectoryError(f"key {jwk.get('kid')!r} is not an Ed25519 OKP key")
    return Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))


_KEY_KIND = [(rsa.RSAPublicKey, "an RSA key"), (ec.EllipticCurvePublicKey, "an EC (ECDSA) key"),
             (ed448.Ed448PublicKey, "an Ed448 key"), (x25519.X25519PublicKey, "an X25519 (key agreement) key"),
             (x448.X448PublicKey, "an X448 (key agreement) key"), (dsa.DSAPublicKey, "a DSA key")]
_ONLY_ED25519 = "the exchange accepts only Ed25519 signing keys (JWK kty OKP, crv Ed25519)"


def read_public_key(data: bytes, where: str) -> tuple[Ed25519PublicKey, str | None]:
    """A public key a participant sent: a JWK (OKP, Ed25519; a JWK Set with one key is fine) or PEM
    SubjectPublicKeyInfo. Returns the key and the JWK's kid, if it has one.

    Raises:
        DirectoryError: naming `where`: a private key (refused outright), another key type, or not a key.
    """
    text = data.strip()
    if text.startswith(b"{"):
        try:
            jwk = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise DirectoryError(f"{where}: starts like JSON but is not valid JSON; send the public JWK as "
                                 "one JSON object") from None
        return _from_jwk(jwk, where)
    if b"-----BEGIN " in text:
        return _from_pem(text, where), None
    raise DirectoryError(f"{where}: not a public key; send a JWK (JSON with kty OKP, crv Ed25519, x) or a PEM "
                         "public key ('-----BEGIN PUBLIC KEY-----')")


def _from_jwk(jwk: object, where: str) -> tuple[Ed25519PublicKey, str | None]:
    if isinstance(jwk, dict) and isinstance(jwk.get("keys"), list):
        if len(jwk["keys"]) != 1:
            raise DirectoryError(f"{where}: a JWK Set with {len(jwk['keys'])} keys; send one key at a time")
        jwk = jwk["keys"][0]
    if not isinstance(jwk, dict):
        raise DirectoryError(f"{where}: a JWK is a JSON object")
    if any(member in jwk for member in ("d", "p", "q", "dp", "dq", "qi", "k")):
        raise DirectoryError(f"{where}: this JWK holds a PRIVATE key (member \"d\" or \"k\"); refused: "
                             + NEVER_SEND_PRIVATE)
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty != "OKP" or crv != "Ed25519":
        kind = {"RSA": "an RSA key", "EC": "an EC (ECDSA) key", "oct": "a symmetric key"}.get(
            kty, f"a {kty} {crv} key" if kty == "OKP" else f"a key of kty {kty!r}")
        raise DirectoryError(f"{where}: {kind}; {_ONLY_ED25519}")
    if jwk.get("alg") not in (None, "EdDSA"):
        raise DirectoryError(f"{where}: the JWK says alg {jwk['alg']!r}; signatures use alg EdDSA: set alg "
                             "EdDSA or leave it out")
    if jwk.get("use") not in (None, "sig"):
        raise DirectoryError(f"{where}: the JWK says use {jwk['use']!r}; a signing key has use 'sig' or none")
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise DirectoryError(f"{where}: the JWK's kid is not a string")
    try:
        raw = b64url_decode(jwk.get("x"))
        if len(raw) != 32:
            raise ValueError("length")
        public = Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise DirectoryError(f"{where}: the JWK's x is not 32 bytes of base64url (no padding)") from None
    return public, kid


def _from_pem(text: bytes, where: str) -> Ed25519PublicKey:
    label = text.split(b"-----BEGIN ", 1)[1].split(b"-----", 1)[0].decode("ascii", "replace")
    if "PRIVATE KEY" in label:
        raise DirectoryError(f"{where}: this PEM holds a PRIVATE key ({label}); refused: " + NEVER_SEND_PRIVATE)
    if label == "CERTIFICATE":
        raise DirectoryError(f"{where}: a certificate; send its public key instead "
                             "('openssl x509 -in FILE -pubkey -noout')")
    if label == "RSA PUBLIC KEY":
        raise DirectoryError(f"{where}: an RSA key; {_ONLY_ED25519}")
    if label != "PUBLIC KEY":
        raise DirectoryError(f"{where}: a PEM {label!r}; send an Ed25519 public key as '-----BEGIN PUBLIC "
                             "KEY-----' (SubjectPublicKeyInfo)")
    try:
        public = serialization.load_pem_public_key(text)
    except (ValueError, UnsupportedAlgorithm):
        raise DirectoryError(f"{where}: the PEM public key cannot be read (damaged base64 or not "
                             "SubjectPublicKeyInfo)") from None
    if not isinstance(public, Ed25519PublicKey):
        kind = next((name for cls, name in _KEY_KIND if isinstance(public, cls)), "another kind of key")
        raise DirectoryError(f"{where}: {kind}; {_ONLY_ED25519}")
    return public


def key_files(keys_dir: Path, participant_id: str | None = None) -> list[Path]:
    """Key files named <participant>-<n>.key, oldest first by n (so the last is the newest key)."""
    pattern = f"{participant_id}-*.key" if participant_id else "*-*.key"

    def number(path: Path) -> int:
        suffix = path.stem.rsplit("-", 1)[-1]
        return int(suffix) if suffix.isdigit() else -1

    files = [p for p in keys_dir.glob(pattern) if number(p) >= 0 and (
        participant_id is None or p.stem.rsplit("-", 1)[0] == participant_id)]
    return sorted(files, key=lambda p: (p.stem.rsplit("-", 1)[0], number(p)))


def secret_file(path: Path, make: Callable[[], bytes]) -> bytes:
    """A secret kept in a file of its own (the register's pseudonym key, an inbox's cookie key): made once by
    `make`, written whole and readable by its owner only before it appears under its name, then read back. If two
    processes make it at once, the first one's stays and both use it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
            fh.write(make())
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(partial, path)
        except FileExistsError:
            pass
        finally:
            partial.unlink()
    return path.read_bytes()
