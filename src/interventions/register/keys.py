"""The keys that sign checkpoints: Ed25519, kept like the signing secret, published.

Where the private key comes from (decided, see the README's "Verifying the register"):

- by default, PKCS#8 PEM files in a keys directory (``INTERVENTIONS_REGISTER_KEYS_DIR``,
  default ``.interventions-register-keys`` beside the signing secret's file), one per key,
  named ``<key id>.pem``, and a file ``current`` naming the key that signs now. The first
  key is generated on first use, like the signing secret; ``interventions register
  rotate-key`` adds a new one and makes it current. Every process on the machine reads the
  same directory, and reads ``current`` at each signing, so a rotation needs no restart.
- for several servers without a shared disk, the current key itself in
  ``INTERVENTIONS_REGISTER_SIGNING_KEY`` (PKCS#8 PEM text); rotating is setting a new one.

A key id is the first 16 hex characters of the SHA-256 of the raw 32-byte public key. Every
public key that signed is recorded in ``register_keys`` when it first signs (``publish``),
so that all processes publish the same set, and kept after rotation (``retired_at``): old
checkpoints stay verifiable.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import os
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from interventions.config import Settings
from interventions.db import Executor
from interventions.register import repository as repo

CURRENT = "current"
ALGORITHM = "Ed25519"


class KeyStoreError(Exception):
    """The signing key cannot be read or made (an operator's configuration problem)."""


def raw_public_key(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public: Ed25519PublicKey) -> str:
    """First 16 hex characters of the SHA-256 of the raw public key."""
    return hashlib.sha256(raw_public_key(public)).hexdigest()[:16]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    private: Ed25519PrivateKey

    @property
    def public_key(self) -> str:
        """The raw public key, base64."""
        return b64(raw_public_key(self.private.public_key()))

    def sign(self, message: bytes) -> str:
        """The Ed25519 signature of ``message``, base64."""
        return b64(self.private.sign(message))


def public_key_from(encoded: str) -> Ed25519PublicKey:
    """A published key (raw, base64) as a key object; ``ValueError`` if it is not one."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64") from exc
    return Ed25519PublicKey.from_public_bytes(raw)


def _from_pem(pem: bytes, where: str) -> SigningKey:
    try:
        private: Any = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyStoreError(f"{where} is not an unencrypted PKCS#8 PEM private key") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyStoreError(f"{where} is not an Ed25519 key")
    return SigningKey(key_id_of(private.public_key()), private)


def _pem(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class KeyStore:
    """The current signing key, from the environment or the keys directory."""

    def __init__(self, settings: Settings) -> None:
        self.pem = settings.register_signing_key
        self.directory = settings.resolved_register_keys_dir()

    @property
    def from_environment(self) -> bool:
        return bool(self.pem.strip())

    def current(self) -> SigningKey:
        """The key that signs now (generated into the directory the first time)."""
        if self.from_environment:
            return _from_pem(self.pem.strip().encode(), "INTERVENTIONS_REGISTER_SIGNING_KEY")
        try:
            key_id = (self.directory / CURRENT).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return self._first()
        except OSError as exc:
            raise KeyStoreError(f"{self.directory / CURRENT} cannot be read: {exc}") from exc
        return self._load(key_id)

    def rotate(self) -> SigningKey:
        """A new key, made current; the previous one stays in the directory."""
        if self.from_environment:
            raise KeyStoreError(
                "the signing key comes from INTERVENTIONS_REGISTER_SIGNING_KEY: rotate it by "
                "setting a new PKCS#8 PEM Ed25519 key there"
            )
        key = self._write_new()
        temporary = self.directory / f".{CURRENT}.{secrets.token_hex(8)}"
        temporary.write_text(key.key_id + "\n", encoding="ascii")
        os.replace(temporary, self.directory / CURRENT)
        return key

    def _load(self, key_id: str) -> SigningKey:
        path = self.directory / f"{key_id}.pem"
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise KeyStoreError(f"{path} cannot be read: {exc}") from exc
        key = _from_pem(pem, str(path))
        if key.key_id != key_id:
            raise KeyStoreError(f"{path} holds key {key.key_id}, not {key_id}")
        return key

    def _write_new(self) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        key = SigningKey(key_id_of(private.public_key()), private)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / f"{key.key_id}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(_pem(private))
            handle.flush()
            os.fsync(handle.fileno())
        return key

    def _first(self) -> SigningKey:
        """The first key; of several processes starting at once, one key wins (``current``
        is created with ``link(2)``, which fails when it exists) and the others use it."""
        key = self._write_new()
        temporary = self.directory / f".{CURRENT}.{secrets.token_hex(8)}"
        temporary.write_text(key.key_id + "\n", encoding="ascii")
        try:
            os.link(temporary, self.directory / CURRENT)
        except FileExistsError:
            (self.directory / f"{key.key_id}.pem").unlink(missing_ok=True)
            return self.current()
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        return key


async def publish(db: Executor, key: SigningKey, now: dt.datetime) -> None:
    """Record ``key``'s public half if it is new, retiring the keys published before it."""
    if await repo.insert_key(db, key_id=key.key_id, public_key=key.public_key, created_at=now):
        await repo.retire_keys_but(db, key_id=key.key_id, retired_at=now)


async def published(db: Executor) -> list[Any]:
    """Every key that ever signed, oldest first (records of ``register_keys``)."""
    return await repo.keys(db)
