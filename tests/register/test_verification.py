"""Nothing rewrites the journal unnoticed (issue 11, item 3): the database refuses UPDATE and
DELETE, and an edit, a deletion, a reordering or a forged checkpoint made past that guard
(as the database's owner could) is named, at the right entry, by ``interventions register
verify``, by ``GET /register/v1/rs/verification`` and by the verifier shipped in an export,
which agree on every case."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from interventions.config import Settings
from interventions.db import Database
from interventions.register import checkpoints, journal, keys
from tests.factories import Factory, Org
from tests.helpers import (
    REGISTER,
    ok,
    record_entries,
    register_command,
    run_exported_verifier,
    run_sql,
    swap_entries,
    tamper,
)

VERIFICATION = f"{REGISTER}/rs/verification"


@dataclass
class Journal:
    """An organisation with 12 entries and checkpoints at entries 6 and 12."""

    org: Org
    checkpoints: list[Any]
    entries: list[Any]


async def _journal(factory: Factory, settings: Settings, database: Database) -> Journal:
    org = await factory.org()
    store = keys.KeyStore(settings)
    for _ in range(2):
        await record_entries(database, org.id, 6)
        async with database.transaction() as db:
            await checkpoints.make(db, store, org.id)
    async with database.transaction(write=False) as db:
        made = await checkpoints.repo.checkpoints(db, org.id)
        entries = await checkpoints.repo.page_of_entries(db, org.id, after=0, limit=100)
    assert [c.seq for c in made] == [6, 12]
    return Journal(org, made, entries)


@dataclass
class Verdicts:
    cli_code: int
    cli: str
    http: dict[str, Any]
    verifier_code: int
    verifier: str


async def _verdicts(
    client: httpx.AsyncClient, settings: Settings, org: Org, tmp_path: Path
) -> Verdicts:
    """What the CLI, the HTTP endpoint and the exported verifier say of ``org``'s journal."""
    cli = await register_command(settings, "verify", "--organization", str(org.id))
    http = ok(await client.get(VERIFICATION, headers=org.viewer.headers))
    await asyncio.to_thread(tmp_path.mkdir)
    archive = tmp_path / "register.zip"
    exported = await register_command(
        settings, "export", "--organization", str(org.id), str(archive)
    )
    assert exported.exit_code == 0, exported.output
    code, line = await asyncio.to_thread(run_exported_verifier, archive, tmp_path)
    return Verdicts(cli.exit_code, " ".join(cli.output.split()), http, code, line)


def _forged_checkpoint(org_id: int, entry: Any) -> str:
    """A checkpoint of entry ``entry`` signed by a key the service never published."""
    private = Ed25519PrivateKey.generate()
    key = keys.SigningKey(keys.key_id_of(private.public_key()), private)
    document = {
        "organizationId": org_id,
        "seq": entry.seq,
        "hash": entry.hash,
        "signedAt": "2026-01-01T00:00:00.000Z",
        "keyId": key.key_id,
    }
    signature = key.sign(journal.canonical(document))
    return (
        "INSERT INTO journal_checkpoints (id, organization_id, seq, hash, signed_at, key_id, "
        f"signature) VALUES ('forged', {org_id}, {entry.seq}, '{entry.hash}', "
        f"'2026-01-01 00:00:00', '{key.key_id}', '{signature}')"
    )


def _recomputed(entry: Any, changes: dict[str, Any]) -> tuple[str, str]:
    """An entry's changes replaced, and its hash recomputed to match (the JSON as SQL text)."""
    forged = entry._replace(changes=changes)
    return journal.canonical(changes).decode(), journal.entry_hash(journal.document(forged))


CASES = ["edit", "edit-float", "edit-and-rehash", "delete", "delete-last", "reorder"]
CASES += ["checkpoint-hash", "checkpoint-signature", "checkpoint-unknown-key"]


@pytest.mark.parametrize("case", CASES)
async def test_tampering_is_named_at_the_right_entry_by_all_three(
    client: httpx.AsyncClient,
    factory: Factory,
    settings: Settings,
    database: Database,
    tmp_path: Path,
    case: str,
) -> None:
    j = await _journal(factory, settings, database)
    o = j.org.id
    at = f"organization_id = {o} AND seq ="
    first, second = (c.id for c in j.checkpoints)
    statements: tuple[str, ...]
    if case == "edit":
        statements = (f"UPDATE journal_entries SET changes = '{{\"n\": 99}}' WHERE {at} 4",)
        expected = "entry 4 was altered (hash mismatch)"
    elif case == "edit-float":
        statements = (f"UPDATE journal_entries SET changes = '{{\"n\": 2.5}}' WHERE {at} 4",)
        expected = "entry 4 cannot be hashed (float values have no place in the journal)"
    elif case == "edit-and-rehash":
        text, digest = _recomputed(j.entries[3], {"n": 99})
        statements = (
            f"UPDATE journal_entries SET changes = '{text}', hash = '{digest}' WHERE {at} 4",
        )
        expected = "entry 5 does not follow entry 4 (prevHash mismatch)"
    elif case == "delete":
        statements = (f"DELETE FROM journal_entries WHERE {at} 5",)
        expected = "entry 5 is missing"
    elif case == "delete-last":
        statements = (f"DELETE FROM journal_entries WHERE {at} 12",)
        expected = "entry 12 is missing (the head is at entry 12)"
    elif case == "reorder":
        statements = swap_entries(o, 7, 8)
        expected = "entries out of order at 7"
    elif case == "checkpoint-hash":
        statements = (f"UPDATE journal_checkpoints SET hash = '{'f' * 64}' WHERE id = '{first}'",)
        expected = f"checkpoint {first} signature invalid"
    elif case == "checkpoint-signature":
        other = base64.b64encode(bytes(64)).decode()
        statements = (
            f"UPDATE journal_checkpoints SET signature = '{other}' WHERE id = '{second}'",
        )
        expected = f"checkpoint {second} signature invalid"
    else:
        statements = (_forged_checkpoint(o, j.entries[8]),)
        expected = "checkpoint forged is signed by unknown key"

    untouched = await _verdicts(client, settings, j.org, tmp_path / "before")
    assert untouched.cli_code == 0
    assert f"organisation {o}: OK: 12 entries, 2 checkpoints (head: entry 12)" in untouched.cli
    assert untouched.http == {
        "valid": True,
        "entries": 12,
        "head": {"seq": 12, "hash": j.entries[-1].hash},
        "checkpoints": 2,
        "firstProblem": None,
    }
    assert (untouched.verifier_code, untouched.verifier) == (0, "OK: 12 entries, 2 checkpoints")

    await tamper(settings.database_url, *statements)
    found = await _verdicts(client, settings, j.org, tmp_path / "after")
    assert found.cli_code == 1
    assert f"organisation {o}: FAILED: {expected}" in found.cli
    assert found.http["valid"] is False
    assert found.http["firstProblem"]["message"].startswith(expected)
    assert f"FAILED: {found.http['firstProblem']['message']}" in found.cli
    assert found.verifier_code == 1
    assert found.verifier == f"FAILED: {found.http['firstProblem']['message']}"


async def test_an_untouched_journal_of_service_writes_verifies(
    client: httpx.AsyncClient, factory: Factory, settings: Settings, tmp_path: Path
) -> None:
    """Entries the service itself records (creating and cancelling an intervention)."""
    org = await factory.org()
    body = {
        "scheduledStart": "2025-01-10T08:00:00Z",
        "scheduledEnd": "2025-01-10T09:00:00Z",
        "ruleId": org.training_rule_id,
        "siteIds": [org.site_ids[0]],
        "creationStatus": 1,
        "description": "Évacuation — « niveau 2 » \u2028 ✓",
    }
    made = ok(
        await client.post(
            "/interventions/v2/rs/training-exercise", json=body, headers=org.admin.headers
        ),
        201,
    )
    r = await client.request(
        "DELETE",
        f"/interventions/v2/rs/{made['id']}",
        json={"cancellationReason": "Site closed"},
        headers=org.admin.headers,
    )
    assert r.status_code == 204, r.text
    ok(await client.post(f"{REGISTER}/rs/checkpoints", headers=org.admin.headers), 201)
    found = await _verdicts(client, settings, org, tmp_path / "export")
    assert found.http["valid"], found.http
    assert found.http["entries"] >= 2
    assert found.cli_code == 0
    assert found.verifier == f"OK: {found.http['entries']} entries, 1 checkpoints"


async def test_the_database_refuses_to_rewrite_the_journal(
    factory: Factory, settings: Settings, database: Database, backend: str
) -> None:
    org = await factory.org()
    await record_entries(database, org.id, 2)
    where = f"WHERE organization_id = {org.id} AND seq = 1"
    statements = [
        f"UPDATE journal_entries SET changes = '{{}}' {where}",
        f"DELETE FROM journal_entries {where}",
    ]
    for statement in statements:
        if backend == "postgresql":
            with pytest.raises(asyncpg.PostgresError):
                await run_sql(statement, settings.database_url)
        else:
            import sqlite3

            path = settings.database_url.removeprefix("sqlite:///")
            with sqlite3.connect(path) as connection, pytest.raises(sqlite3.DatabaseError):
                connection.execute(statement)
    async with database.transaction(write=False) as db:
        rows = await checkpoints.repo.page_of_entries(db, org.id, after=0, limit=10)
    assert [r.seq for r in rows] == [1, 2]


async def test_verify_every_organisation_and_memory_bounded_pages(
    factory: Factory, settings: Settings, database: Database
) -> None:
    from interventions.register import verification

    good, bad = await factory.org(), await factory.org()
    await record_entries(database, good.id, 25)
    await record_entries(database, bad.id, 25)
    await tamper(
        settings.database_url,
        f"DELETE FROM journal_entries WHERE organization_id = {bad.id} AND seq = 23",
    )
    # Pages of 4 entries: the walk crosses page boundaries and still finds entry 23.
    async with database.transaction(write=False) as db:
        assert (await verification.verify(db, good.id, page_size=4)).valid
        found = await verification.verify(db, bad.id, page_size=4)
    assert found.first_problem is not None
    assert found.first_problem.message == "entry 23 is missing"
    assert found.entries == 22

    every = await register_command(settings, "verify")
    assert every.exit_code == 1
    output = " ".join(every.output.split())
    assert f"organisation {good.id}: OK: 25 entries, 0 checkpoints" in output
    assert f"organisation {bad.id}: FAILED: entry 23 is missing" in output
