"""Idempotency-Key on POST and PATCH: a retry replays the first answer and changes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
from sqlalchemy import select, update

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
