"""Finding interventions (filters, sorting, pagination) and the detailed read."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import Org
from tests.helpers import RS, intervention_history


async def _training(
    client: httpx.AsyncClient, org: Org, start: str, end: str, **extra: Any
) -> dict[str, Any]:
    body = {
        "scheduledStart": start,
        "scheduledEnd": end,
        "ruleId": org.training_rule_id,
        "siteIds": [org.site_ids[0]],
        "creationStatus": 1,
        **extra,
    }
    r = await client.post(f"{RS}/training-exercise", json=body, headers=org.admin.headers)
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


async def _curative(
    client: httpx.AsyncClient, org: Org, anomaly: int, **extra: Any
) -> dict[str, Any]:
    body = {
        "scheduledStart": "2025-03-01T08:00:00Z",
        "scheduledEnd": "2025-03-01T10:00:00Z",
        "anomalyIds": [anomaly],
        "creationStatus": 0,
        **extra,
    }
    r = await client.post(f"{RS}/curative", json=body, headers=org.admin.headers)
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


async def _ids(client: httpx.AsyncClient, org: Org, query: str = "") -> list[int]:
    r = await client.get(f"{RS}?pageSize=100{query}", headers=org.viewer.headers)
    assert r.status_code == 200, r.text
    return [d["id"] for d in r.json()["data"]]


async def test_filters(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    other: Org = await factory.org()
    t1 = await _training(
        client, org, "2025-01-10T08:00:00Z", "2025-01-10T09:00:00Z", description="Fire drill north"
    )
    t2 = await _training(
        client,
        org,
        "2025-02-10T08:00:00Z",
        "2025-02-10T09:00:00Z",
        description="Drill 100% south_wing",
        siteIds=[org.site_ids[1]],
        assignedProfileId=org.manager.profile_id,
    )
    c1 = await _curative(
        client, org, org.anomaly_ids[2], assignedCompanyContactId=org.contact_ids[1]
    )
    await _training(client, other, "2025-01-10T08:00:00Z", "2025-01-10T09:00:00Z")

    assert sorted(await _ids(client, org)) == sorted([t1["id"], t2["id"], c1["id"]])
    assert await _ids(client, org, "&type=2") == [c1["id"]]
    assert sorted(await _ids(client, org, "&type=3&type=2")) == sorted(
        [t1["id"], t2["id"], c1["id"]]
    )
    assert await _ids(client, org, "&status=1") == [c1["id"]]
    assert await _ids(client, org, "&creationStatus=0") == [c1["id"]]
    assert await _ids(client, org, f"&siteId={org.site_ids[1]}") == [t2["id"]]
    assert await _ids(client, org, f"&ruleId={org.training_rule_id}&sort=scheduledStart") == [
        t1["id"],
        t2["id"],
    ]
    assert await _ids(client, org, f"&assignedProfileId={org.manager.profile_id}") == [t2["id"]]
    assert await _ids(client, org, f"&companyId={org.company_ids[1]}") == [c1["id"]]
    assert await _ids(
        client,
        org,
        "&scheduledStartFrom=2025-02-01T00:00:00Z&scheduledStartTo=2025-02-28T00:00:00Z",
    ) == [t2["id"]]
    assert await _ids(client, org, "&q=NORTH") == [t1["id"]]
    # LIKE wildcards in q are literal characters.
    assert await _ids(client, org, "&q=100%25") == [t2["id"]]
    assert await _ids(client, org, "&q=s_uth") == []
    assert await _ids(client, org, "&q=south_wing") == [t2["id"]]


async def test_sorting_and_pagination(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    created = [
        await _training(client, org, f"2025-01-{day:02d}T08:00:00Z", f"2025-01-{day:02d}T09:00:00Z")
        for day in (5, 1, 3, 4, 2)
    ]
    by_date = [c["id"] for c in sorted(created, key=lambda c: c["scheduledStart"])]
    assert await _ids(client, org, "&sort=scheduledStart") == by_date
    assert await _ids(client, org) == by_date[::-1]  # default: -scheduledStart
    r = await client.get(f"{RS}?sort=scheduledStart&page=2&pageSize=2", headers=org.admin.headers)
    body = r.json()
    assert body["totalCount"] == 5
    assert body["pagination"] == {"page": 2, "pageSize": 2}
    assert [d["id"] for d in body["data"]] == by_date[2:4]
    r = await client.get(f"{RS}?page=9", headers=org.admin.headers)
    assert r.json()["data"] == []
    assert r.json()["totalCount"] == 5


async def test_bad_list_parameters(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    for query, field in [
        ("pageSize=101", "pageSize"),
        ("pageSize=0", "pageSize"),
        ("page=0", "page"),
        ("status=8", "status"),
        ("type=x", "type"),
        ("sort=description", "sort"),
        ("scheduledStartFrom=2023-02-29T00:00:00Z", "scheduledStartFrom"),
        ("siteId=9007199254740992", "siteId"),
    ]:
        r = await client.get(f"{RS}?{query}", headers=org.admin.headers)
        assert r.status_code == 400, query
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["field"] == field, query


async def test_detail(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    c = await _curative(client, org, org.anomaly_ids[0], description="Replace extinguisher")
    r = await client.get(f"{RS}/{c['id']}", headers=org.viewer.headers)
    assert r.status_code == 200
    d = r.json()["data"]
    assert d["sites"] == [{"id": org.site_ids[0], "name": "Site 0"}]
    assert d["anomalies"] == [
        {
            "id": org.anomaly_ids[0],
            "siteId": org.site_ids[0],
            "title": "Anomaly 0",
            "risk": 0,
            "status": 1,
        }
    ]
    assert d["siteRules"] == []
    assert d["rules"] == []
    assert d["signatureUrl"] is None
    assert [h["action"] for h in d["history"]] == ["create"]
    assert d["history"][0]["userId"] == org.admin.user_id
    # A viewer may do nothing; an admin may cancel and check in, not verify yet, and not
    # update (curative interventions have no update endpoint).
    assert d["actions"] == {
        "canBeUpdated": False,
        "canBeDeleted": False,
        "canBeExecuted": False,
        "canBeVerified": False,
    }
    d = (await client.get(f"{RS}/{c['id']}", headers=org.admin.headers)).json()["data"]
    assert d["actions"] == {
        "canBeUpdated": False,
        "canBeDeleted": True,
        "canBeExecuted": True,
        "canBeVerified": False,
    }


async def test_detail_of_preventive_lists_site_rules_and_rules(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    r = await client.post(
        f"{RS}/preventive/routine",
        json={
            "scheduledStart": "2025-01-01T08:00:00Z",
            "scheduledEnd": "2025-01-01T09:00:00Z",
            "creationStatus": 1,
            "routineId": org.routine_id,
        },
        headers=org.admin.headers,
    )
    iid = r.json()["data"]["id"]
    d = (await client.get(f"{RS}/{iid}", headers=org.admin.headers)).json()["data"]
    assert [s["id"] for s in d["siteRules"]] == sorted(
        org.site_rule[(org.site_ids[0], rule)] for rule in org.rule_ids
    )
    assert [r["id"] for r in d["rules"]] == sorted(org.rule_ids)
    assert all(r["type"] == 1 for r in d["rules"])
    assert d["sites"][0]["id"] == org.site_ids[0]


async def test_history_names_changes_by_their_wire_names(
    client: httpx.AsyncClient, factory: Any
) -> None:
    """SPEC §4.3: the changed fields are named as the rest of the API names them, for entries
    written now and for entries recorded before (snake_case in the database)."""
    org: Org = await factory.org()
    drill = await _training(client, org, "2025-01-10T08:00:00Z", "2025-01-10T09:00:00Z")
    url = f"{RS}/training-exercise/{drill['id']}"
    body = {
        "scheduledStart": "2025-01-11T08:00:00Z",
        "scheduledEnd": "2025-01-11T09:00:00Z",
        "assignedProfileId": org.manager.profile_id,
        "assignedCompanyContactId": org.contact_ids[1],
        "siteIds": [org.site_ids[1]],
        "creationStatus": 0,
    }
    r = await client.patch(url, json=body, headers=org.admin.headers)
    assert r.status_code == 200, r.text
    detail = (await client.get(f"{RS}/{drill['id']}", headers=org.admin.headers)).json()["data"]
    (update,) = detail["history"][1:]
    assert set(update["changes"]) == {
        "scheduledStart",
        "scheduledEnd",
        "assignedProfileId",
        "assignedCompanyContactId",
        "companyId",
        "siteIds",
        "creationStatus",
        "status",
    }
    assert update["changes"]["scheduledStart"] == {
        "from": "2025-01-10T08:00:00.000Z",
        "to": "2025-01-11T08:00:00.000Z",
    }
    assert update["changes"]["assignedProfileId"] == {"from": None, "to": org.manager.profile_id}
    # Stored with the wire names too, not only read with them (the migration renamed the
    # members of entries made before: tests/register/test_journal.py).
    entries = await intervention_history(factory.db, drill["id"])
    stored = next(e.changes for e in entries if e.action == "update")
    assert "scheduledStart" in stored
    assert "scheduled_start" not in stored
