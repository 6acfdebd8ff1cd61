"""Idempotency-Key on POST and PATCH: a retry replays the first answer and changes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from interventions.idempotency.claims import sqlite_claims
from interventions.idempotency.middleware import purge_expired
from interventions.idempotency.models import IdempotencyKey
from tests.factories import PASSWORD, Org
from tests.helpers import (
    CURATIVE,
    LOGIN,
    MB,
    RS,
    UNPLANNED,
    assert_problem,
    curative_body,
    org_state,
    plan,
    unplanned_body,
)

REPLAYED = "idempotent-replayed"


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def interventions(factory: Any, org: Org) -> list[Any]:
    return list((await org_state(factory, org))["intervention_rows"])


async def test_an_offline_phone_sending_one_check_three_times_creates_one(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    headers = keyed(org.manager.headers, "8e03978e-40d5-43e8-bc93-6894a57f9324")
    answers = [
        await client.post(UNPLANNED, json=unplanned_body(org), headers=headers) for _ in range(3)
    ]
    assert [r.status_code for r in answers] == [201, 201, 201]
    assert answers[1].content == answers[0].content == answers[2].content  # presignedUrl too
    assert REPLAYED not in answers[0].headers
    assert [r.headers.get(REPLAYED) for r in answers[1:]] == ["true", "true"]
    for r in answers[1:]:
        assert r.headers["content-type"] == answers[0].headers["content-type"]
        assert r.headers["content-length"] == str(len(answers[0].content))
    rows = await interventions(factory, org)
    assert [row.id for row in rows] == [answers[0].json()["data"]["id"]]


async def test_a_request_without_the_header_is_processed_every_time(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    first = await client.post(UNPLANNED, json=unplanned_body(org), headers=org.manager.headers)
    second = await client.post(UNPLANNED, json=unplanned_body(org), headers=org.manager.headers)
    assert first.status_code == second.status_code == 201
    assert REPLAYED not in second.headers
    assert first.json()["data"]["id"] != second.json()["data"]["id"]
    assert len(await interventions(factory, org)) == 2


async def test_the_same_key_with_another_request_is_a_422_and_changes_nothing(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    headers = keyed(org.admin.headers, "key-1")
    first = await client.post(CURATIVE, json=curative_body(org), headers=headers)
    assert first.status_code == 201, first.text
    before = await org_state(factory, org)
    other = {**curative_body(org), "anomalyIds": [org.anomaly_ids[1]]}
    r = await client.post(CURATIVE, json=other, headers=headers)
    assert_problem(r, 422)
    assert r.json()["errors"][0]["field"] == "Idempotency-Key"
    # Another endpoint, the same key: another request too.
    r = await client.post(UNPLANNED, json=unplanned_body(org), headers=headers)
    assert_problem(r, 422)
    assert await org_state(factory, org) == before
    # The first request, again: still its answer.
    again = await client.post(CURATIVE, json=curative_body(org), headers=headers)
    assert again.status_code == 201
    assert again.content == first.content


async def test_concurrent_requests_under_one_key_create_one_intervention(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    headers = keyed(org.manager.headers, "concurrent")
    answers = await asyncio.gather(
        *(client.post(UNPLANNED, json=unplanned_body(org), headers=headers) for _ in range(4))
    )
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {201, 409}, [r.text for r in answers]
    created = [r for r in answers if r.status_code == 201]
    assert created
    assert {r.content for r in created} == {created[0].content}
    assert sum(REPLAYED not in r.headers for r in created) == 1
    rows = await interventions(factory, org)
    assert [row.id for row in rows] == [created[0].json()["data"]["id"]]


@asynccontextmanager
async def writes_held(backend: str, url: str) -> AsyncIterator[Any]:
    """Another connection holds what a keyed request's work waits for once it has claimed its
    key: the interventions table locked against writes (PostgreSQL), the database's write
    lock (SQLite). Yields a function telling whether a key is claimed now."""
    if backend == "postgresql":
        conn = await asyncpg.connect(url)
        try:
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute("LOCK TABLE interventions IN EXCLUSIVE MODE")

            async def claimed() -> bool:
                found = await conn.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())"
                )
                return bool(found)

            try:
                yield claimed
            finally:
                await transaction.rollback()
        finally:
            await conn.close()
    else:
        path = str(make_url(url).database)
        lite = sqlite3.connect(path, isolation_level=None)
        try:
            lite.execute("BEGIN IMMEDIATE")

            async def claimed() -> bool:
                return bool(sqlite_claims(path).held)

            try:
                yield claimed
            finally:
                lite.execute("ROLLBACK")
        finally:
            lite.close()


async def until(condition: Any) -> None:
    for _ in range(500):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the first request never claimed its key")


async def test_the_key_sent_again_while_its_first_request_runs_is_a_409(
    backend: str, database_url: str, client: httpx.AsyncClient, factory: Any
) -> None:
    """The draft's in-flight case: the first request has claimed its key and waits (for a
    lock held elsewhere); the same request under the same key is a 409 at once and changes
    nothing; the first then completes, and the key replays its answer."""
    org: Org = await factory.org()
    headers = keyed(org.manager.headers, "in-flight")
    body = unplanned_body(org)
    async with writes_held(backend, database_url) as claimed:
        first = asyncio.create_task(client.post(UNPLANNED, json=body, headers=headers))
        await until(claimed)
        # Bounded: without the claim, this one would queue behind the held lock too.
        again = await asyncio.wait_for(client.post(UNPLANNED, json=body, headers=headers), 20)
        assert_problem(again, 409)
        assert "Idempotency-Key" in again.json()["detail"]
        assert REPLAYED not in again.headers
        assert not first.done()
    answered = await first
    assert answered.status_code == 201, answered.text
    later = await client.post(UNPLANNED, json=body, headers=headers)
    assert later.status_code == 201
    assert later.headers.get(REPLAYED) == "true"
    assert later.content == answered.content
    rows = await interventions(factory, org)
    assert [row.id for row in rows] == [answered.json()["data"]["id"]]


# Holds the claim of (user, key) on an SQLite database from another process until its
# standard input closes, as another `serve --workers` process would.
_HOLDER = """
import sys
from interventions.idempotency.claims import sqlite_claims
assert sqlite_claims(sys.argv[1]).take(int(sys.argv[2]), sys.argv[3])
print("held", flush=True)
sys.stdin.read()
"""


async def test_a_key_claimed_by_another_worker_process_is_a_409(
    backend: str, database_url: str, client: httpx.AsyncClient, factory: Any
) -> None:
    """Claims hold across the processes serving one database: PostgreSQL's advisory lock
    taken by another session, SQLite's byte-range lock taken by another process."""
    org: Org = await factory.org()
    key = "other-worker"
    headers = keyed(org.manager.headers, key)
    if backend == "postgresql":
        conn = await asyncpg.connect(database_url)
        await conn.execute(
            "SELECT pg_advisory_lock(hashtextextended($1, 0))",
            f"{org.id}:{org.manager.user_id}:{key}",
        )

        async def release() -> None:
            await conn.close()
    else:
        holder = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _HOLDER,
            str(make_url(database_url).database),
            str(org.manager.user_id),
            key,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert await holder.stdout.readline() == b"held\n"

        async def release() -> None:
            assert holder.stdin is not None
            holder.stdin.close()
            assert await holder.wait() == 0

    try:
        refused = await client.post(UNPLANNED, json=unplanned_body(org), headers=headers)
        assert_problem(refused, 409)
        # Another key of the same caller, and the same key of another caller, go through.
        other_key = keyed(org.manager.headers, "another-key")
        other_caller = keyed(org.admin.headers, key)
        for other in (other_key, other_caller):
            r = await client.post(UNPLANNED, json=unplanned_body(org), headers=other)
            assert r.status_code == 201, r.text
    finally:
        await release()
    assert len(await interventions(factory, org)) == 2
    r = await client.post(UNPLANNED, json=unplanned_body(org), headers=headers)
    assert r.status_code == 201, r.text
    assert REPLAYED not in r.headers


async def test_keys_are_per_caller_and_per_organisation(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    other: Org = await factory.org()
    key = "shared-key"
    by_admin = await client.post(
        UNPLANNED, json=unplanned_body(org), headers=keyed(org.admin.headers, key)
    )
    by_manager = await client.post(
        UNPLANNED, json=unplanned_body(org), headers=keyed(org.manager.headers, key)
    )
    elsewhere = await client.post(
        UNPLANNED, json=unplanned_body(other), headers=keyed(other.admin.headers, key)
    )
    for r in (by_admin, by_manager, elsewhere):
        assert r.status_code == 201, r.text
        assert REPLAYED not in r.headers
    assert by_admin.json()["data"]["id"] != by_manager.json()["data"]["id"]
    assert len(await interventions(factory, org)) == 2
    assert len(await interventions(factory, other)) == 1


async def test_the_same_user_in_another_organisation_has_other_keys(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    other: Org = await factory.org()
    there = (await factory.join(org.admin, other.id)).headers  # the same user, elsewhere
    key = "same-user-key"
    here = await client.post(
        UNPLANNED, json=unplanned_body(org), headers=keyed(org.admin.headers, key)
    )
    # The same key and the same bytes from the same user, in the other organisation: its own.
    r = await client.post(UNPLANNED, json=unplanned_body(org), headers=keyed(there, key))
    assert here.status_code == 201
    assert_problem(r, 422)  # the first organisation's ids mean nothing there
    assert REPLAYED not in r.headers
    assert len(await interventions(factory, other)) == 0


async def test_a_refusal_is_not_kept_so_the_corrected_request_goes_through(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    headers = keyed(org.admin.headers, "fix-and-retry")
    wrong = {**curative_body(org), "anomalyIds": [2_000_000_001]}
    assert_problem(await client.post(CURATIVE, json=wrong, headers=headers), 422)
    r = await client.post(CURATIVE, json=curative_body(org), headers=headers)
    assert r.status_code == 201, r.text
    assert REPLAYED not in r.headers


async def test_a_retried_verification_hears_what_the_first_heard(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    created = await client.post(UNPLANNED, json=unplanned_body(org), headers=org.admin.headers)
    iid = created.json()["data"]["id"]
    body = {"decision": 1, "decisionComment": "Good"}
    headers = keyed(org.admin.headers, "verify-once")
    first = await client.patch(f"{RS}/{iid}/verify", json=body, headers=headers)
    assert first.status_code == 200, first.text
    state = await org_state(factory, org)
    again = await client.patch(f"{RS}/{iid}/verify", json=body, headers=headers)
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers[REPLAYED] == "true"
    assert await org_state(factory, org) == state
    # Without the key the lifecycle answers: verified already.
    assert_problem(
        await client.patch(f"{RS}/{iid}/verify", json=body, headers=org.admin.headers), 409
    )


async def test_a_retried_check_in_is_replayed(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    planned = await plan(client, org)
    body = {"interventionId": planned["id"], "codePin": planned["codePin"]}
    headers = keyed(org.manager.headers, "check-in-1")
    first = await client.patch(f"{MB}/check-in", json=body, headers=headers)
    again = await client.patch(f"{MB}/check-in", json=body, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert again.content == first.content


async def test_an_expired_key_is_new_again_and_purged(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    headers = keyed(org.manager.headers, "expires")
    first = await client.post(UNPLANNED, json=unplanned_body(org), headers=headers)
    assert first.status_code == 201
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    async with factory.db.writer() as s:
        await s.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.organization_id == org.id)
            .values(expires_at=past)
        )
        await s.commit()
    second = await client.post(UNPLANNED, json=unplanned_body(org), headers=headers)
    assert second.status_code == 201
    assert REPLAYED not in second.headers
    assert second.json()["data"]["id"] != first.json()["data"]["id"]
    # The second answer took the key over: it is the one replayed now, for 24 hours.
    third = await client.post(UNPLANNED, json=unplanned_body(org), headers=headers)
    assert third.content == second.content
    async with factory.db.reader() as s:
        (expires,) = (
            await s.execute(
                select(IdempotencyKey.expires_at).where(IdempotencyKey.organization_id == org.id)
            )
        ).one()
    assert dt.timedelta(hours=23) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=24)
    async with factory.db.writer() as s:
        await s.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.organization_id == org.id)
            .values(expires_at=past)
        )
        await s.commit()
    assert await purge_expired(factory.db) >= 1
    async with factory.db.reader() as s:
        left = await s.execute(
            select(IdempotencyKey.key).where(IdempotencyKey.organization_id == org.id)
        )
        assert left.all() == []


async def test_malformed_keys_are_400(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    for value in ("", "k" * 256, "clé".encode("latin-1"), "a\x01b"):
        r = await client.post(
            UNPLANNED,
            json=unplanned_body(org),
            headers=[*org.manager.headers.items(), ("Idempotency-Key", value)],
        )
        assert_problem(r, 400, "Idempotency-Key")
    r = await client.post(
        UNPLANNED,
        json=unplanned_body(org),
        headers=[*org.manager.headers.items(), ("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
    )
    assert_problem(r, 400, "Idempotency-Key")
    assert await interventions(factory, org) == []
    ok = await client.post(
        UNPLANNED, json=unplanned_body(org), headers=keyed(org.manager.headers, "k" * 255)
    )
    assert ok.status_code == 201


async def test_login_is_not_keyed(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    body = {"email": org.admin.email, "password": PASSWORD, "organizationId": org.id}
    first = await client.post(LOGIN, json=body, headers={"Idempotency-Key": "login"})
    second = await client.post(LOGIN, json=body, headers={"Idempotency-Key": "login"})
    assert first.status_code == second.status_code == 201
    assert first.json()["data"]["sessionToken"] != second.json()["data"]["sessionToken"]
