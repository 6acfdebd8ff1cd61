"""Conditional requests: ETag on every answer that carries one intervention, If-Match on the
writes (412 when stale), If-None-Match on the read (304)."""

from __future__ import annotations

from typing import Any

import httpx

from interventions.db import Database, utcnow
from interventions.interventions import repository as repo
from tests.factories import Org
from tests.helpers import (
    MB,
    ROUTINE,
    RS,
    SIGNATURE,
    UNPLANNED,
    assert_problem,
    org_state,
    plan,
    routine_body,
    unplanned_body,
)


def etag(data: dict[str, Any]) -> str:
    return f'"{data["id"]}.{data["version"]}"'


def with_tag(headers: dict[str, str], name: str, value: str) -> dict[str, str]:
    return {**headers, name: value}


async def preventive(client: httpx.AsyncClient, org: Org) -> httpx.Response:
    r = await client.post(ROUTINE, json=routine_body(org), headers=org.admin.headers)
    assert r.status_code == 201, r.text
    return r


async def test_creations_and_reads_carry_the_version(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    created = await preventive(client, org)
    data = created.json()["data"]
    assert data["version"] == 1
    assert created.headers["etag"] == etag(data) == f'"{data["id"]}.1"'
    read = await client.get(f"{RS}/{data['id']}", headers=org.admin.headers)
    assert read.headers["etag"] == created.headers["etag"]
    unplanned = await client.post(UNPLANNED, json=unplanned_body(org), headers=org.admin.headers)
    assert unplanned.headers["etag"] == etag(unplanned.json()["data"])


async def test_of_two_editors_of_one_version_the_second_gets_412(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    iid = (await preventive(client, org)).json()["data"]["id"]
    read = await client.get(f"{RS}/{iid}", headers=org.admin.headers)
    seen = read.headers["etag"]
    first = await client.patch(
        f"{RS}/preventive/{iid}",
        json={"description": "First editor"},
        headers=with_tag(org.admin.headers, "If-Match", seen),
    )
    assert first.status_code == 200, first.text
    assert first.json()["data"]["version"] == 2
    assert first.headers["etag"] == f'"{iid}.2"' != seen
    second = await client.patch(
        f"{RS}/preventive/{iid}",
        json={"description": "Second editor"},
        headers=with_tag(org.manager.headers, "If-Match", seen),
    )
    problem = assert_problem(second, 412)
    assert problem["errors"][0]["field"] == "If-Match"
    assert second.headers["etag"] == first.headers["etag"]
    now = (await client.get(f"{RS}/{iid}", headers=org.admin.headers)).json()["data"]
    assert now["description"] == "First editor"
    assert now["version"] == 2
    # The second editor reads again, and writes over what they have seen.
    third = await client.patch(
        f"{RS}/preventive/{iid}",
        json={"description": "Second editor"},
        headers=with_tag(org.manager.headers, "If-Match", f'"other", {first.headers["etag"]}'),
    )
    assert third.status_code == 200, third.text
    assert third.headers["etag"] == f'"{iid}.3"'


async def test_if_match_star_and_weak_tags(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    created = await preventive(client, org)
    iid, tag = created.json()["data"]["id"], created.headers["etag"]
    url = f"{RS}/preventive/{iid}"
    weak = await client.patch(
        url, json={"description": "x"}, headers=with_tag(org.admin.headers, "If-Match", "W/" + tag)
    )
    assert_problem(weak, 412)  # If-Match compares strongly: a weak tag never matches
    star = await client.patch(
        url, json={"description": "y"}, headers=with_tag(org.admin.headers, "If-Match", "*")
    )
    assert star.status_code == 200, star.text


async def test_if_none_match_is_304_until_it_changes(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    created = await preventive(client, org)
    iid, tag = created.json()["data"]["id"], created.headers["etag"]
    for value in (tag, f'"nope", {tag}', "W/" + tag, "*"):
        r = await client.get(
            f"{RS}/{iid}", headers=with_tag(org.admin.headers, "If-None-Match", value)
        )
        assert r.status_code == 304, (value, r.text)
        assert r.content == b""
        assert r.headers["etag"] == tag
    other = await client.get(
        f"{RS}/{iid}", headers=with_tag(org.admin.headers, "If-None-Match", '"x.1"')
    )
    assert other.status_code == 200
    changed = await client.patch(
        f"{RS}/preventive/{iid}", json={"description": "Changed"}, headers=org.admin.headers
    )
    assert changed.status_code == 200
    r = await client.get(f"{RS}/{iid}", headers=with_tag(org.admin.headers, "If-None-Match", tag))
    assert r.status_code == 200
    assert r.headers["etag"] == changed.headers["etag"] != tag
    assert r.json()["data"]["description"] == "Changed"


async def test_stale_if_match_on_every_write_is_412_and_changes_nothing(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    planned = await plan(client, org)
    iid = planned["id"]
    stale = f'"{iid}.{planned["version"] + 7}"'
    bad = with_tag(org.manager.headers, "If-Match", stale)
    execute = {
        "interventionId": iid,
        "firstName": "Paul",
        "lastName": "Durand",
        "signature": SIGNATURE,
    }
    before = await org_state(factory, org)
    check_in = {"interventionId": iid, "codePin": planned["codePin"]}
    assert_problem(await client.patch(f"{MB}/check-in", json=check_in, headers=bad), 412)
    assert_problem(
        await client.request(
            "DELETE", f"{RS}/{iid}", json={"cancellationReason": "x"}, headers=bad
        ),
        412,
    )
    assert_problem(
        await client.patch(f"{RS}/training-exercise/{iid}", json={"description": "x"}, headers=bad),
        412,
    )
    assert await org_state(factory, org) == before
    # With the current version, each goes through and answers the next one.
    tag = f'"{iid}.{planned["version"]}"'
    r = await client.patch(
        f"{MB}/check-in", json=check_in, headers=with_tag(org.manager.headers, "If-Match", tag)
    )
    assert r.status_code == 200, r.text
    tag = r.headers["etag"]
    assert_problem(await client.patch(f"{MB}/execute", json=execute, headers=bad), 412)
    r = await client.patch(
        f"{MB}/execute", json=execute, headers=with_tag(org.manager.headers, "If-Match", tag)
    )
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == etag(r.json()["data"])
    tag = r.headers["etag"]
    before = await org_state(factory, org)
    verify = {"decision": 1, "decisionComment": "Fine"}
    assert_problem(await client.patch(f"{RS}/{iid}/verify", json=verify, headers=bad), 412)
    assert await org_state(factory, org) == before
    r = await client.patch(
        f"{RS}/{iid}/verify", json=verify, headers=with_tag(org.admin.headers, "If-Match", tag)
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == 5


async def test_cancel_with_the_current_version(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    created = await preventive(client, org)
    iid, tag = created.json()["data"]["id"], created.headers["etag"]
    r = await client.request(
        "DELETE", f"{RS}/{iid}", headers=with_tag(org.admin.headers, "If-Match", tag)
    )
    assert r.status_code == 204, r.text
    read = await client.get(f"{RS}/{iid}", headers=org.admin.headers)
    assert read.json()["data"]["status"] == 7
    assert read.headers["etag"] == f'"{iid}.2"'


async def test_another_organisations_intervention_is_404_not_412(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    other: Org = await factory.org()
    created = await preventive(client, other)
    iid, tag = created.json()["data"]["id"], created.headers["etag"]
    for value in (tag, '"stale"', "*"):
        headers = with_tag(org.admin.headers, "If-Match", value)
        r = await client.patch(f"{RS}/preventive/{iid}", json={"description": "x"}, headers=headers)
        assert_problem(r, 404)
        assert_problem(await client.request("DELETE", f"{RS}/{iid}", headers=headers), 404)
        none = with_tag(org.admin.headers, "If-None-Match", value)
        assert_problem(await client.get(f"{RS}/{iid}", headers=none), 404)


async def test_a_value_naming_no_entity_tag_matches_nothing(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    created = await preventive(client, org)
    iid = created.json()["data"]["id"]
    before = await org_state(factory, org)
    bare = f"{iid}.1"  # the tag without its quotes
    for value in ("abc", bare, '"a', "**", ""):
        r = await client.patch(
            f"{RS}/preventive/{iid}",
            json={"description": "x"},
            headers=with_tag(org.admin.headers, "If-Match", value),
        )
        assert_problem(r, 412)
        r = await client.get(
            f"{RS}/{iid}", headers=with_tag(org.admin.headers, "If-None-Match", value)
        )
        assert r.status_code == 200, (value, r.text)
    assert await org_state(factory, org) == before


async def test_a_replayed_answer_keeps_its_etag(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    headers = {**org.admin.headers, "Idempotency-Key": "etag-replay"}
    first = await client.post(ROUTINE, json=routine_body(org), headers=headers)
    again = await client.post(ROUTINE, json=routine_body(org), headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["etag"] == first.headers["etag"]


async def test_a_write_lands_only_on_the_version_it_read(
    client: httpx.AsyncClient, factory: Any, database: Database
) -> None:
    """The conditional UPDATE compares the version too: a writer holding a row that another
    write has moved past (same status) writes nothing."""
    org: Org = await factory.org()
    iid = (await preventive(client, org)).json()["data"]["id"]
    async with database.transaction() as db:
        row = await repo.get(db, org.id, iid)
        moved, written = await repo.write(db, row, {"description": "one", "updated_at": utcnow()})
        assert written
        assert moved.version == row.version + 1
        _, written = await repo.write(db, row, {"description": "two", "updated_at": utcnow()})
        assert not written
    read = (await client.get(f"{RS}/{iid}", headers=org.admin.headers)).json()["data"]
    assert (read["description"], read["version"]) == ("one", 2)
