"""The checkpoint signing keys: generated and kept like the signing secret, rotated, published
without a login (issue 11, item 2)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from interventions.config import Settings
from interventions.register.keys import KeyStore, KeyStoreError
from tests.factories import Factory
from tests.helpers import REGISTER, ok, record_entries, register_command


def _pem(private: Ed25519PrivateKey) -> str:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_the_first_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(register_keys_dir=tmp_path / "keys")
    first = KeyStore(settings).current()
    again = KeyStore(settings).current()
    assert first.key_id == again.key_id
    raw = base64.b64decode(first.public_key)
    assert len(raw) == 32
    assert first.key_id == hashlib.sha256(raw).hexdigest()[:16]
    pem = tmp_path / "keys" / f"{first.key_id}.pem"
    assert pem.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pem.stat().st_mode & 0o077 == 0  # readable by the service's user only
    assert (tmp_path / "keys" / "current").read_text().strip() == first.key_id


def test_the_keys_sit_beside_the_secret_by_default(tmp_path: Path) -> None:
    settings = Settings(secret_file=tmp_path / "etc" / "secret")
    key = KeyStore(settings).current()
    assert (tmp_path / "etc" / ".interventions-register-keys" / f"{key.key_id}.pem").is_file()


def test_rotation_makes_a_new_key_current_and_keeps_the_old_one(tmp_path: Path) -> None:
    store = KeyStore(Settings(register_keys_dir=tmp_path))
    old = store.current()
    new = store.rotate()
    assert new.key_id != old.key_id
    assert store.current().key_id == new.key_id
    assert (tmp_path / f"{old.key_id}.pem").is_file()


def test_a_key_given_by_the_environment_is_used_and_not_rotated(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    store = KeyStore(Settings(register_keys_dir=tmp_path, register_signing_key=_pem(private)))
    key = store.current()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert key.public_key == base64.b64encode(raw).decode()
    assert not any(tmp_path.iterdir())  # nothing written
    with pytest.raises(KeyStoreError, match="INTERVENTIONS_REGISTER_SIGNING_KEY"):
        store.rotate()


@pytest.mark.parametrize("value", ["not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END"])
def test_a_bad_key_in_the_environment_is_named(tmp_path: Path, value: str) -> None:
    store = KeyStore(Settings(register_keys_dir=tmp_path, register_signing_key=value))
    with pytest.raises(KeyStoreError, match="INTERVENTIONS_REGISTER_SIGNING_KEY"):
        store.current()


def test_a_key_file_that_is_not_its_name_is_refused(tmp_path: Path) -> None:
    store = KeyStore(Settings(register_keys_dir=tmp_path))
    key = store.current()
    other = store.rotate()
    (tmp_path / f"{key.key_id}.pem").write_bytes((tmp_path / f"{other.key_id}.pem").read_bytes())
    (tmp_path / "current").write_text(key.key_id)
    with pytest.raises(KeyStoreError, match=f"not {key.key_id}"):
        store.current()


async def test_the_keys_are_public_and_rotation_keeps_old_ones_published(
    client: httpx.AsyncClient, factory: Factory, settings: Settings, database: object
) -> None:
    # No login: anyone must be able to verify. Before any checkpoint, the current key.
    keys = ok(await client.get(f"{REGISTER}/keys"))
    current = KeyStore(settings).current()
    assert [k["keyId"] for k in keys if k["current"]] == [current.key_id]
    assert {k["algorithm"] for k in keys} == {"Ed25519"}

    org = await factory.org()
    await record_entries(database, org.id, 2)
    first = ok(await client.post(f"{REGISTER}/rs/checkpoints", headers=org.admin.headers), 201)
    assert first["keyId"] == current.key_id

    result = await register_command(settings, "rotate-key")
    assert result.exit_code == 0, result.output
    rotated = KeyStore(settings).current()
    assert rotated.key_id in result.output

    await record_entries(database, org.id, 1)
    second = ok(await client.post(f"{REGISTER}/rs/checkpoints", headers=org.admin.headers), 201)
    assert second["keyId"] == rotated.key_id

    keys = {k["keyId"]: k for k in ok(await client.get(f"{REGISTER}/keys"))}
    assert keys[current.key_id]["retiredAt"] is not None
    assert not keys[current.key_id]["current"]
    assert keys[rotated.key_id]["retiredAt"] is None
    assert keys[rotated.key_id]["current"]
    assert keys[rotated.key_id]["publicKey"] == rotated.public_key

    # Both checkpoints still verify: the old key stays published.
    verification = ok(await client.get(f"{REGISTER}/rs/verification", headers=org.viewer.headers))
    assert verification["valid"], verification
    assert verification["checkpoints"] == 2


async def test_rotation_is_refused_when_the_key_comes_from_the_environment(
    settings: Settings,
) -> None:
    pem = _pem(Ed25519PrivateKey.generate())
    result = await register_command(settings, "rotate-key", INTERVENTIONS_REGISTER_SIGNING_KEY=pem)
    assert result.exit_code == 1
    assert "INTERVENTIONS_REGISTER_SIGNING_KEY" in result.output
