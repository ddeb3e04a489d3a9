"""Ed25519 signing keys: generate, store (private keys 0600, never printed), publish as JWK."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sgx.errors import DirectoryError


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or any(c in text for c in "+/= \n"):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


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

    @classmethod
    def generate(cls, kid: str) -> SigningKey:
        return cls(kid, Ed25519PrivateKey.generate())

    def save(self, path: Path) -> None:
        """Write the private key as PKCS#8 PEM, readable by the owner only."""
        pem = self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(f"kid: {self.kid}\n".encode() + pem)
        os.chmod(path, 0o600)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        data = path.read_bytes()
        first, _, pem = data.partition(b"\n")
        if not first.startswith(b"kid: "):
            raise DirectoryError(f"{path}: not a key file written by 'sgx directory keygen' (no kid line)")
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise DirectoryError(f"{path}: not an Ed25519 private key; generate one with 'sgx directory keygen'")
        return cls(first[5:].decode().strip(), key)


def public_jwk(kid: str, public: Ed25519PublicKey) -> dict:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": "EdDSA", "x": b64url(raw)}


def public_key_from_jwk(jwk: dict) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise DirectoryError(f"key {jwk.get('kid')!r} is not an Ed25519 OKP key")
    return Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))


def key_files(keys_dir: Path, participant_id: str | None = None) -> list[Path]:
    """Key files named <participant>-<n>.key, oldest first by n (so the last is the newest key)."""
    pattern = f"{participant_id}-*.key" if participant_id else "*-*.key"

    def number(path: Path) -> int:
        suffix = path.stem.rsplit("-", 1)[-1]
        return int(suffix) if suffix.isdigit() else -1

    files = [p for p in keys_dir.glob(pattern) if number(p) >= 0 and (
        participant_id is None or p.stem.rsplit("-", 1)[0] == participant_id)]
    return sorted(files, key=lambda p: (p.stem.rsplit("-", 1)[0], number(p)))
