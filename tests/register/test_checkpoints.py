"""Checkpoints: the journal's head signed on demand and by the worker, one per head, public by
id (issue 11, item 2)."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from interventions.config import Settings
from interventions.db import Database
from interventions.register import checkpoints, journal
from interventions.register.keys import KeyStore
from tests.factories import Factory
from tests.helpers import (
    REGISTER,
    assert_problem,
    ok,
    record_entries,
    register_command,
)

CHECKPOINTS = f"{REGISTER}/rs/checkpoints"
SIGNED = {"organizationId", "seq", "hash", "signedAt", "keyId"}


def _signature_holds(checkpoint: dict[str, object], public_key: str) -> bool:
    document = {name: checkpoint[name] for name in SIGNED}
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))
    try:
        key.verify(base64.b64decode(str(checkpoint["signature"])), journal.canonical(document))
    except Exception:
        return False
    return True


async def test_a_checkpoint_signs_the_head_and_anyone_can_check_it(
    client: httpx.AsyncClient, factory: Factory, settings: Settings, database: Database
) -> None:
    org = await factory.org()
    head = await record_entries(database, org.id, 3)
    made = ok(await client.post(CHECKPOINTS, headers=org.manager.headers), 201)
    assert (made["organizationId"], made["seq"], made["hash"]) == (org.id, head.seq, head.hash)
    assert made["timestampToken"] is None
    assert made["tsaUrl"] is None
    assert made["signedAt"].endswith("Z")
    assert 8 <= len(made["id"]) <= 16

    # The same head again: the same checkpoint, not a second one.
    again = ok(await client.post(CHECKPOINTS, headers=org.admin.headers), 200)
    assert again["id"] == made["id"]

    # Public, by id: exactly what the signature covers, and the signature.
    public = ok(await client.get(f"{REGISTER}/checkpoints/{made['id']}"))
    assert set(public) == {"id", "signature", *SIGNED}
    keys = {k["keyId"]: k["publicKey"] for k in ok(await client.get(f"{REGISTER}/keys"))}
    assert _signature_holds(public, keys[public["keyId"]])
    assert not _signature_holds({**public, "seq": public["seq"] - 1}, keys[public["keyId"]])
    assert public["keyId"] == KeyStore(settings).current().key_id

    listed = await client.get(CHECKPOINTS, headers=org.viewer.headers)
    body = listed.json()
    assert listed.status_code == 200
    assert [c["id"] for c in body["data"]] == [made["id"]]
    assert body["totalCount"] == 1


async def test_who_may_sign_and_what_cannot_be_signed(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    org = await factory.org()
    assert_problem(await client.post(CHECKPOINTS), 401)
    assert_problem(await client.post(CHECKPOINTS, headers=org.viewer.headers), 403)
    # Nothing recorded yet: no head to sign.
    problem = assert_problem(await client.post(CHECKPOINTS, headers=org.admin.headers), 409)
    assert "no entry" in problem["detail"]
    await record_entries(database, org.id, 1)
    ok(await client.post(CHECKPOINTS, headers=org.admin.headers), 201)
    # Another organisation sees none of it.
    other = await factory.org()
    listed = await client.get(CHECKPOINTS, headers=other.admin.headers)
    assert listed.json()["totalCount"] == 0


async def test_a_public_checkpoint_id_is_checked(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{REGISTER}/checkpoints/unknown-id"), 404)
    assert_problem(await client.get(f"{REGISTER}/checkpoints/not%20an%20id"), 400)
    assert_problem(await client.get(f"{REGISTER}/checkpoints/{'x' * 17}"), 400)


async def test_the_worker_signs_the_heads_that_moved_once_whatever_the_workers(
    factory: Factory, settings: Settings, database: Database
) -> None:
    moved, still = await factory.org(), await factory.org()
    await record_entries(database, moved.id, 2)
    await record_entries(database, still.id, 2)
    await checkpoints.checkpoint_round(database, settings)
    async with database.transaction(write=False) as db:
        signed_still = await checkpoints.repo.checkpoints(db, still.id)
    assert [c.seq for c in signed_still] == [2]

    head = await record_entries(database, moved.id, 3)
    # Several workers at once: one checkpoint per head all the same.
    rounds = await asyncio.gather(
        *(checkpoints.checkpoint_round(database, settings) for _ in range(4))
    )
    assert sum(rounds) >= 1
    async with database.transaction(write=False) as db:
        moved_rows = await checkpoints.repo.checkpoints(db, moved.id)
        still_rows = await checkpoints.repo.checkpoints(db, still.id)
    assert [c.seq for c in moved_rows] == [2, head.seq]
    assert [c.id for c in still_rows] == [c.id for c in signed_still]  # its head did not move


async def test_the_checkpoint_command(
    factory: Factory, settings: Settings, database: Database
) -> None:
    org = await factory.org()
    head = await record_entries(database, org.id, 4)
    result = await register_command(settings, "checkpoint", "--organization", str(org.id))
    assert result.exit_code == 0, result.output
    assert f"organisation {org.id}: entry {head.seq} signed: checkpoint " in result.output
    again = await register_command(settings, "checkpoint", "--organization", str(org.id))
    assert f"entry {head.seq} already signed" in again.output

    empty = await factory.org()
    refused = await register_command(settings, "checkpoint", "--organization", str(empty.id))
    assert refused.exit_code == 1
    assert "no entry yet" in refused.output

    await record_entries(database, org.id, 1)
    every = await register_command(settings, "checkpoint")
    assert every.exit_code == 0, every.output
    assert f"organisation {org.id}: entry {head.seq + 1} signed" in every.output


@pytest.mark.parametrize("interval", [0, -1])
def test_the_interval_must_be_positive(interval: int) -> None:
    with pytest.raises(ValueError, match="checkpoint_interval_seconds"):
        Settings(checkpoint_interval_seconds=interval)
