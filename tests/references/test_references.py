"""Reference data over HTTP (issue 3, part 8): sites, rules, site rules, routines, companies,
company contacts, anomalies and profiles. Each family: list, read, create, update, archive;
tenant-scoped; viewers read only; profile writes are admin-only."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select

from interventions.db import Database, Executor
from interventions.notifications.models import OutboxEmail
from interventions.register.models import JournalEntry
from tests.factories import PASSWORD, Factory, Org
from tests.helpers import (
    ACCEPT,
    ACCEPT_WITH_PASSWORD,
    DATETIME_OUT,
    MAX_ID,
    MISSING,
    PROBLEM_JSON,
    PROFILES,
    ok,
)

SITES = "/sites/v1/rs"
RULES = "/rules/v1/rs"
SITE_RULES = "/site-rules/v1/rs"
ROUTINES = "/routines/v1/rs"
COMPANIES = "/companies/v1/rs"
CONTACTS = "/company-contacts/v1/rs"
ANOMALIES = "/anomalies/v1/rs"
FAMILIES = [SITES, RULES, SITE_RULES, ROUTINES, COMPANIES, CONTACTS, ANOMALIES, PROFILES]


# --- helpers ------------------------------------------------------------------------------------


def problem(r: httpx.Response, status: int, *fields: str) -> dict[str, Any]:
    """RFC 9457 problem details; ``fields`` must be among the offending fields named."""
    assert r.status_code == status, f"status {r.status_code}, not {status}: {r.text[:500]}"
    assert r.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = r.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    if fields:
        named = {e["field"] for e in body.get("errors") or []}
        assert set(fields) <= named, f"{sorted(named)} lacks {fields}: {body}"
    return body


def stamped(data: dict[str, Any], *members: str) -> dict[str, Any]:
    """``data`` without its server-set date-times, after checking their format."""
    out = dict(data)
    for member in ("createdAt", *members):
        assert DATETIME_OUT.match(out.pop(member)), member
    return out


async def other_org_ids(factory: Factory) -> dict[str, int]:
    """One id of each family in a second organisation."""
    other: Org = await factory.org()
    return {
        SITES: other.site_ids[0],
        RULES: other.rule_ids[0],
        SITE_RULES: other.site_rule_ids[0],
        ROUTINES: other.routine_id,
        COMPANIES: other.company_ids[0],
        CONTACTS: other.contact_ids[0],
        ANOMALIES: other.anomaly_ids[0],
        PROFILES: other.viewer.profile_id,
    }


def valid_bodies(org: Org) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """A create body and an update body each family accepts."""
    return {
        SITES: ({"name": "Gymnase"}, {"name": "Gymnase B"}),
        RULES: ({"name": "Désenfumage", "type": 1}, {"name": "Désenfumage annuel"}),
        SITE_RULES: (
            {"siteId": org.site_ids[0], "ruleId": org.rule_ids[0]},
            {"siteId": org.site_ids[1]},
        ),
        ROUTINES: (
            {"name": "SSI", "siteRuleIds": [org.site_rule_ids[0]], "rrule": "FREQ=YEARLY"},
            {"name": "SSI annuel"},
        ),
        COMPANIES: ({"name": "Veritas", "type": 1}, {"name": "Veritas SA"}),
        CONTACTS: ({"companyId": org.company_ids[0], "name": "Paul"}, {"name": "Paul D."}),
        ANOMALIES: ({"siteId": org.site_ids[0], "title": "Porte bloquée"}, {"risk": 2}),
        PROFILES: ({"email": f"new-{org.id}@example.org", "role": "viewer"}, {"role": "manager"}),
    }


def existing_ids(org: Org) -> dict[str, int]:
    """One row of each family; archiving one (and what it takes along) leaves the others."""
    return {
        SITES: org.site_ids[2],
        RULES: org.rule_ids[2],
        SITE_RULES: org.site_rule[(org.site_ids[1], org.rule_ids[1])],
        ROUTINES: org.routine_id,
        COMPANIES: org.company_ids[1],
        CONTACTS: org.contact_ids[0],
        ANOMALIES: org.anomaly_ids[3],
        PROFILES: org.viewer.profile_id,
    }


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """Every SQL statement the engine or the executor sends while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    Executor.observers.append(seen.append)
    try:
        yield seen
    finally:
        Executor.observers.remove(seen.append)
        event.remove(engine, "before_cursor_execute", record)


# --- sites: the whole life of one resource ------------------------------------------------------


async def test_site_create_read_update_archive(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    h = org.manager.headers
    created = ok(await client.post(SITES, json={"name": "Bâtiment C"}, headers=h), 201)
    site_id = created["id"]
    assert isinstance(site_id, int)
    assert site_id > 0
    assert stamped(created) == {
        "id": site_id,
        "organizationId": org.id,
        "name": "Bâtiment C",
        "archivedAt": None,
    }
    assert ok(await client.get(f"{SITES}/{site_id}", headers=org.viewer.headers)) == created

    updated = ok(await client.patch(f"{SITES}/{site_id}", json={"name": "Bâtiment D"}, headers=h))
    assert updated == {**created, "name": "Bâtiment D"}
    # An empty update changes nothing.
    assert ok(await client.patch(f"{SITES}/{site_id}", json={}, headers=h)) == updated

    listed = await client.get(SITES, headers=h)
    assert [s["id"] for s in ok(listed)] == [*org.site_ids, site_id]

    archived = await client.delete(f"{SITES}/{site_id}", headers=h)
    assert archived.status_code == 204
    assert archived.content == b""
    problem(await client.get(f"{SITES}/{site_id}", headers=h), 404)
    problem(await client.patch(f"{SITES}/{site_id}", json={"name": "x"}, headers=h), 404)
    problem(await client.delete(f"{SITES}/{site_id}", headers=h), 404)
    assert [s["id"] for s in ok(await client.get(SITES, headers=h))] == org.site_ids

    again = ok(await client.get(f"{SITES}/{site_id}?includeArchived=true", headers=h))
    assert DATETIME_OUT.match(again["archivedAt"])
    assert {**again, "archivedAt": None} == updated
    with_archived = ok(await client.get(f"{SITES}?includeArchived=true", headers=h))
    assert [s["id"] for s in with_archived] == [*org.site_ids, site_id]
    assert with_archived[-1] == again


async def test_pagination_and_free_text(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    for name in ("Annexe 50%", "Annexe_Nord", "annexe sud"):
        ok(await client.post(SITES, json={"name": name}, headers=h), 201)
    first = (await client.get(f"{SITES}?page=1&pageSize=4", headers=h)).json()
    assert first["totalCount"] == 6
    assert first["pagination"] == {"page": 1, "pageSize": 4}
    assert [s["name"] for s in first["data"]] == ["Site 0", "Site 1", "Site 2", "Annexe 50%"]
    second = (await client.get(f"{SITES}?page=2&pageSize=4", headers=h)).json()
    assert second["totalCount"] == 6
    assert second["pagination"] == {"page": 2, "pageSize": 4}
    assert [s["name"] for s in second["data"]] == ["Annexe_Nord", "annexe sud"]
    beyond = (await client.get(f"{SITES}?page=3&pageSize=4", headers=h)).json()
    assert beyond == {"data": [], "totalCount": 6, "pagination": {"page": 3, "pageSize": 4}}
    default = (await client.get(SITES, headers=h)).json()
    assert default["pagination"] == {"page": 1, "pageSize": 20}
    assert len(default["data"]) == 6

    async def names(q: str) -> list[str]:
        r = await client.get(SITES, params={"q": q}, headers=h)
        body = r.json()
        assert body["totalCount"] == len(body["data"])
        return [s["name"] for s in ok(r)]

    assert await names("ANNEXE") == ["Annexe 50%", "Annexe_Nord", "annexe sud"]
    # LIKE wildcards in the text are plain characters.
    assert await names("50%") == ["Annexe 50%"]
    assert await names("e_N") == ["Annexe_Nord"]
    assert await names("%") == ["Annexe 50%"]
    assert await names("nowhere") == []
    filtered = (await client.get(SITES, params={"q": "annexe", "pageSize": 2}, headers=h)).json()
    assert filtered["totalCount"] == 3
    assert len(filtered["data"]) == 2


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=-1",
        "page=abc",
        "page=1.5",
        "pageSize=0",
        "pageSize=101",
        "includeArchived=maybe",
        "q=",
        "q=" + "x" * 251,
        "q=%00",
    ],
)
async def test_list_parameters_are_checked(
    client: httpx.AsyncClient, factory: Factory, query: str
) -> None:
    org: Org = await factory.org()
    field = query.split("=", 1)[0]
    problem(await client.get(f"{SITES}?{query}", headers=org.viewer.headers), 400, field)


async def test_every_family_pages(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    expected = {
        SITES: org.site_ids,
        RULES: sorted([*org.rule_ids, org.training_rule_id]),
        SITE_RULES: org.site_rule_ids,
        ROUTINES: [org.routine_id],
        COMPANIES: org.company_ids,
        CONTACTS: org.contact_ids,
        ANOMALIES: org.anomaly_ids,
        PROFILES: [org.admin.profile_id, org.manager.profile_id, org.viewer.profile_id],
    }
    for path, ids in expected.items():
        whole = (await client.get(f"{path}?pageSize=100", headers=org.viewer.headers)).json()
        assert [row["id"] for row in whole["data"]] == ids, path
        assert whole["totalCount"] == len(ids), path
        page = (await client.get(f"{path}?page=2&pageSize=1", headers=org.viewer.headers)).json()
        assert [row["id"] for row in page["data"]] == ids[1:2], path
        assert page["totalCount"] == len(ids), path
        assert page["pagination"] == {"page": 2, "pageSize": 1}


# --- roles and authentication -------------------------------------------------------------------


async def test_viewers_read_but_may_not_write(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    ids = existing_ids(org)
    bodies = valid_bodies(org)
    h = org.viewer.headers
    for path in FAMILIES:
        assert ok(await client.get(path, headers=h)), path
        assert ok(await client.get(f"{path}/{ids[path]}", headers=h))["id"] == ids[path]
        create, update = bodies[path]
        problem(await client.post(path, json=create, headers=h), 403)
        problem(await client.patch(f"{path}/{ids[path]}", json=update, headers=h), 403)
        if path != ANOMALIES:
            problem(await client.delete(f"{path}/{ids[path]}", headers=h), 403)
    # Nothing changed.
    assert ok(await client.get(f"{SITES}/{ids[SITES]}", headers=h))["name"] == "Site 2"
    assert len(ok(await client.get(PROFILES, headers=h))) == 3


async def test_managers_write_everything_but_profiles(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    ids = existing_ids(org)
    bodies = valid_bodies(org)
    h = org.manager.headers
    for path in FAMILIES:
        create, update = bodies[path]
        if path == PROFILES:
            problem(await client.post(path, json=create, headers=h), 403)
            problem(await client.patch(f"{path}/{ids[path]}", json=update, headers=h), 403)
            problem(await client.delete(f"{path}/{ids[path]}", headers=h), 403)
            continue
        if path == SITE_RULES:
            create = {"siteId": org.site_ids[0], "ruleId": org.rule_ids[0]}
            problem(await client.post(path, json=create, headers=h), 409)  # already applied
            new_site = ok(await client.post(SITES, json={"name": "New"}, headers=h), 201)
            create = {"siteId": new_site["id"], "ruleId": org.rule_ids[0]}
        ok(await client.post(path, json=create, headers=h), 201)
        ok(await client.patch(f"{path}/{ids[path]}", json=update, headers=h))
        if path != ANOMALIES:
            assert (await client.delete(f"{path}/{ids[path]}", headers=h)).status_code == 204


async def test_authentication_is_required(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    ids = existing_ids(org)
    only_bearer = {"Authorization": org.admin.headers["Authorization"]}
    for path in FAMILIES:
        problem(await client.get(path), 401)
        problem(await client.get(f"{path}/{ids[path]}", headers=only_bearer), 401)
        problem(await client.post(path, json={}), 401)
        problem(await client.patch(f"{path}/{ids[path]}", json={}), 401)


# --- tenancy --------------------------------------------------------------------------------------


async def test_other_organisations_ids_are_missing_in_the_path(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    foreign = await other_org_ids(factory)
    bodies = valid_bodies(org)
    h = org.admin.headers
    for path, foreign_id in foreign.items():
        # Anomalies are not archived: they take no includeArchived (400 if sent).
        archived = "" if path == ANOMALIES else "includeArchived=true"
        for target in (foreign_id, MISSING):
            missing = problem(await client.get(f"{path}/{target}", headers=h), 404)
            assert str(target) in missing["detail"]
            problem(await client.get(f"{path}/{target}?{archived}", headers=h), 404)
            problem(await client.patch(f"{path}/{target}", json=bodies[path][1], headers=h), 404)
            if path != ANOMALIES:
                problem(await client.delete(f"{path}/{target}", headers=h), 404)
        listed = ok(await client.get(f"{path}?pageSize=100&{archived}", headers=h))
        assert foreign_id not in {row["id"] for row in listed}, path


async def test_other_organisations_ids_are_unknown_in_bodies(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    other: Org = await factory.org()
    h = org.admin.headers
    new_site = ok(await client.post(SITES, json={"name": "New"}, headers=h), 201)["id"]
    cases: list[tuple[str, dict[str, Any], str]] = [
        (SITE_RULES, {"siteId": other.site_ids[0], "ruleId": org.rule_ids[0]}, "siteId"),
        (SITE_RULES, {"siteId": new_site, "ruleId": other.rule_ids[0]}, "ruleId"),
        (CONTACTS, {"companyId": other.company_ids[0], "name": "Paul"}, "companyId"),
        (ANOMALIES, {"siteId": other.site_ids[0], "title": "Fuite"}, "siteId"),
        (ROUTINES, {"name": "R", "siteRuleIds": [other.site_rule_ids[0]]}, "siteRuleIds"),
        (
            ROUTINES,
            {
                "name": "R",
                "siteRuleIds": [org.site_rule_ids[0]],
                "assignedProfileId": other.admin.profile_id,
            },
            "assignedProfileId",
        ),
        (
            ROUTINES,
            {
                "name": "R",
                "siteRuleIds": [org.site_rule_ids[0]],
                "assignedCompanyContactId": other.contact_ids[0],
            },
            "assignedCompanyContactId",
        ),
    ]
    for path, body, field in cases:
        refused = problem(await client.post(path, json=body, headers=h), 422, field)
        named = body[field][0] if isinstance(body[field], list) else body[field]
        assert str(named) in refused["detail"]
    updates: list[tuple[str, int, dict[str, Any], str]] = [
        (SITE_RULES, org.site_rule_ids[0], {"siteId": other.site_ids[1]}, "siteId"),
        (SITE_RULES, org.site_rule_ids[0], {"ruleId": other.rule_ids[1]}, "ruleId"),
        (CONTACTS, org.contact_ids[0], {"companyId": other.company_ids[1]}, "companyId"),
        (ROUTINES, org.routine_id, {"siteRuleIds": [other.site_rule_ids[0]]}, "siteRuleIds"),
        (
            ROUTINES,
            org.routine_id,
            {"assignedProfileId": other.manager.profile_id},
            "assignedProfileId",
        ),
        (
            ROUTINES,
            org.routine_id,
            {"assignedCompanyContactId": other.contact_ids[1]},
            "assignedCompanyContactId",
        ),
    ]
    for path, row_id, body, field in updates:
        problem(await client.patch(f"{path}/{row_id}", json=body, headers=h), 422, field)
    # Nothing changed in either organisation.
    assert (
        ok(await client.get(f"{CONTACTS}/{org.contact_ids[0]}", headers=h))["companyId"]
        == (org.company_ids[0])
    )
    routine = ok(await client.get(f"{ROUTINES}/{org.routine_id}", headers=h))
    assert routine["siteRuleIds"] == sorted(
        org.site_rule[(org.site_ids[0], r)] for r in org.rule_ids
    )
    assert routine["assignedProfileId"] is None
    assert len(ok(await client.get(f"{ANOMALIES}?pageSize=100", headers=other.admin.headers))) == 4


async def test_list_filters_on_another_organisations_ids_find_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    other: Org = await factory.org()
    h = org.admin.headers
    for query in (
        f"{SITE_RULES}?siteId={other.site_ids[0]}",
        f"{SITE_RULES}?ruleId={other.rule_ids[0]}",
        f"{CONTACTS}?companyId={other.company_ids[0]}",
        f"{ANOMALIES}?siteId={other.site_ids[0]}",
        f"{ROUTINES}?siteRuleId={other.site_rule_ids[0]}",
    ):
        body = (await client.get(query, headers=h)).json()
        assert body["data"] == [], query
        assert body["totalCount"] == 0, query


# --- bad input ----------------------------------------------------------------------------------


async def test_unknown_fields_wrong_types_and_nulls_are_400(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    ids = existing_ids(org)
    h = org.admin.headers
    for path, (create, update) in valid_bodies(org).items():
        problem(await client.post(path, json={**create, "colour": "red"}, headers=h), 400, "colour")
        r = await client.patch(f"{path}/{ids[path]}", json={**update, "colour": 1}, headers=h)
        problem(r, 400, "colour")
        problem(await client.post(path, json={}, headers=h), 400)
        problem(await client.post(path, json=[create], headers=h), 400)
        r = await client.post(
            path, content=b'{"name": ', headers={**h, "content-type": "application/json"}
        )
        problem(r, 400, "body")
        r = await client.post(path, content=b"name=x", headers={**h, "content-type": "text/plain"})
        problem(r, 415)
        for bad in ("abc", "1.5", str(MAX_ID + 1), "true"):
            problem(await client.get(f"{path}/{bad}", headers=h), 400)
            problem(await client.patch(f"{path}/{bad}", json=update, headers=h), 400)
    cases: list[tuple[str, dict[str, Any], str]] = [
        (SITES, {"name": ""}, "name"),
        (SITES, {"name": "x" * 251}, "name"),
        (SITES, {"name": 12}, "name"),
        (SITES, {"name": "a\u0000b"}, "name"),
        (RULES, {"name": "R", "type": 3}, "type"),
        (RULES, {"name": "R", "type": "1"}, "type"),
        (RULES, {"name": "R", "type": True}, "type"),
        (RULES, {"name": "R", "type": 1.0}, "type"),
        (SITE_RULES, {"siteId": "1", "ruleId": org.rule_ids[0]}, "siteId"),
        (SITE_RULES, {"siteId": org.site_ids[0], "ruleId": MAX_ID + 1}, "ruleId"),
        (COMPANIES, {"name": "C", "type": 4}, "type"),
        (COMPANIES, {"name": "C", "type": 1, "email": "not-an-address"}, "email"),
        (COMPANIES, {"name": "C", "type": 1, "email": "a@" + "b" * 250 + ".org"}, "email"),
        (CONTACTS, {"companyId": org.company_ids[0], "name": "P", "email": "x@"}, "email"),
        (ANOMALIES, {"siteId": org.site_ids[0], "title": "T", "risk": 4}, "risk"),
        (ANOMALIES, {"siteId": org.site_ids[0], "title": "T", "risk": -1}, "risk"),
        (ANOMALIES, {"siteId": org.site_ids[0], "title": "T", "status": 2}, "status"),
        (
            ANOMALIES,
            {"siteId": org.site_ids[0], "title": "T", "description": "d" * 2501},
            "description",
        ),
        (PROFILES, {"email": "p@example.org", "role": "owner"}, "role"),
        (PROFILES, {"email": "nobody", "role": "viewer"}, "email"),
        # An invitation: the invited person chooses their password, not the admin.
        (PROFILES, {"email": "p@example.org", "role": "viewer", "password": PASSWORD}, "password"),
    ]
    for path, body, field in cases:
        problem(await client.post(path, json=body, headers=h), 400, field)
    # Null where a value cannot be cleared: every offending field named in one 400.
    nulls: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
        (SITES, {"name": None}, ("name",)),
        (RULES, {"name": None, "type": None}, ("name", "type")),
        (SITE_RULES, {"siteId": None, "ruleId": None}, ("siteId", "ruleId")),
        (COMPANIES, {"name": None, "type": None}, ("name", "type")),
        (CONTACTS, {"companyId": None, "name": None}, ("companyId", "name")),
        (ANOMALIES, {"title": None, "risk": None, "status": 1}, ("title", "risk", "status")),
        (PROFILES, {"role": None}, ("role",)),
        (
            ROUTINES,
            {
                "name": None,
                "siteRuleIds": None,
                "dtstart": None,
                "durationMinutes": None,
                "horizonDays": None,
                "autoCreateEnabled": None,
            },
            (
                "name",
                "siteRuleIds",
                "dtstart",
                "durationMinutes",
                "horizonDays",
                "autoCreateEnabled",
            ),
        ),
    ]
    for path, body, fields in nulls:
        refused = problem(await client.patch(f"{path}/{ids[path]}", json=body, headers=h), 400)
        assert {e["field"] for e in refused["errors"]} == set(fields), path
    assert ok(await client.get(f"{SITES}/{ids[SITES]}", headers=h))["name"] == "Site 2"


# --- rules and site rules -----------------------------------------------------------------------


async def test_rules(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    created = ok(
        await client.post(RULES, json={"name": "Exercice incendie", "type": 2}, headers=h), 201
    )
    assert stamped(created) == {
        "id": created["id"],
        "organizationId": org.id,
        "name": "Exercice incendie",
        "type": 2,
        "archivedAt": None,
    }
    trainings = ok(await client.get(f"{RULES}?type=2", headers=h))
    assert [r["id"] for r in trainings] == [org.training_rule_id, created["id"]]
    checks = ok(await client.get(f"{RULES}?type=1&q=rule", headers=h))
    assert [r["id"] for r in checks] == org.rule_ids
    problem(await client.get(f"{RULES}?type=3", headers=h), 400, "type")
    updated = ok(
        await client.patch(
            f"{RULES}/{created['id']}", json={"name": "Contrôle", "type": 1}, headers=h
        )
    )
    assert updated == {**created, "name": "Contrôle", "type": 1}
    assert ok(await client.get(f"{RULES}/{created['id']}", headers=h)) == updated


async def test_archiving_a_site_or_rule_archives_its_site_rules(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    site, rule = org.site_ids[1], org.rule_ids[1]
    assert (await client.delete(f"{SITES}/{site}", headers=h)).status_code == 204
    remaining = ok(await client.get(f"{SITE_RULES}?pageSize=100", headers=h))
    assert {sr["siteId"] for sr in remaining} == {org.site_ids[0], org.site_ids[2]}
    assert (await client.delete(f"{RULES}/{rule}", headers=h)).status_code == 204
    remaining = ok(await client.get(f"{SITE_RULES}?pageSize=100", headers=h))
    assert sorted(sr["id"] for sr in remaining) == sorted(
        org.site_rule[(s, r)]
        for s in (org.site_ids[0], org.site_ids[2])
        for r in (org.rule_ids[0], org.rule_ids[2], org.training_rule_id)
    )
    everything = await client.get(f"{SITE_RULES}?pageSize=100&includeArchived=true", headers=h)
    assert everything.json()["totalCount"] == 12
    archived = [sr for sr in ok(everything) if sr["archivedAt"] is not None]
    assert len(archived) == 4 + 3 - 1
    # An archived site cannot carry new site rules, anomalies or training exercises.
    problem(
        await client.post(SITE_RULES, json={"siteId": site, "ruleId": org.rule_ids[0]}, headers=h),
        422,
        "siteId",
    )
    problem(
        await client.post(ANOMALIES, json={"siteId": site, "title": "Fuite"}, headers=h),
        422,
        "siteId",
    )
    problem(
        await client.post(
            "/interventions/v2/rs/training-exercise",
            json={
                "scheduledStart": "2024-11-01T08:00:00.000Z",
                "scheduledEnd": "2024-11-01T10:00:00.000Z",
                "ruleId": org.training_rule_id,
                "siteIds": [site],
                "creationStatus": 0,
            },
            headers=h,
        ),
        422,
        "siteIds",
    )


async def test_site_rules(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    site = ok(await client.post(SITES, json={"name": "Internat"}, headers=h), 201)["id"]
    body = {"siteId": site, "ruleId": org.rule_ids[0]}
    created = ok(await client.post(SITE_RULES, json=body, headers=h), 201)
    assert stamped(created) == {
        "id": created["id"],
        "organizationId": org.id,
        "siteId": site,
        "ruleId": org.rule_ids[0],
        "archivedAt": None,
    }
    duplicate = problem(await client.post(SITE_RULES, json=body, headers=h), 409)
    assert str(created["id"]) in duplicate["detail"]

    by_site = ok(await client.get(f"{SITE_RULES}?siteId={site}", headers=h))
    assert by_site == [created]
    by_rule = ok(await client.get(f"{SITE_RULES}?ruleId={org.rule_ids[0]}", headers=h))
    assert [sr["siteId"] for sr in by_rule] == [*org.site_ids, site]
    both = ok(await client.get(f"{SITE_RULES}?siteId={site}&ruleId={org.rule_ids[1]}", headers=h))
    assert both == []

    # Moving it onto another rule; onto a pair that exists is a 409.
    moved = ok(
        await client.patch(
            f"{SITE_RULES}/{created['id']}", json={"ruleId": org.rule_ids[1]}, headers=h
        )
    )
    assert moved == {**created, "ruleId": org.rule_ids[1]}
    taken = {"siteId": org.site_ids[0], "ruleId": org.rule_ids[0]}
    problem(await client.patch(f"{SITE_RULES}/{created['id']}", json=taken, headers=h), 409)
    assert ok(await client.get(f"{SITE_RULES}/{created['id']}", headers=h)) == moved

    # Archived, the pair can be applied again: the same site rule comes back.
    assert (await client.delete(f"{SITE_RULES}/{created['id']}", headers=h)).status_code == 204
    assert ok(await client.get(f"{SITE_RULES}?siteId={site}", headers=h)) == []
    pair = {"siteId": site, "ruleId": org.rule_ids[1]}
    revived = ok(await client.post(SITE_RULES, json=pair, headers=h), 201)
    assert revived == moved
    # An archived site rule still holds its pair against a move.
    assert (await client.delete(f"{SITE_RULES}/{created['id']}", headers=h)).status_code == 204
    other = org.site_rule[(org.site_ids[0], org.rule_ids[0])]
    held = problem(await client.patch(f"{SITE_RULES}/{other}", json=pair, headers=h), 409)
    assert "archived" in held["detail"]
    problem(
        await client.post(SITE_RULES, json={"siteId": site, "ruleId": MISSING}, headers=h),
        422,
        "ruleId",
    )


# --- routines -----------------------------------------------------------------------------------


async def test_routine_create_and_read(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    h = org.manager.headers
    site_rules = [org.site_rule_ids[3], org.site_rule_ids[1], org.site_rule_ids[3]]
    body = {
        "name": "Extincteurs",
        "siteRuleIds": site_rules,
        "rrule": "RRULE:FREQ=MONTHLY;BYMONTHDAY=1",
        "dtstart": "2025-01-01T08:00:00.000Z",
        "durationMinutes": 90,
        "horizonDays": 60,
        "autoCreateEnabled": True,
        "assignedProfileId": org.manager.profile_id,
        "assignedCompanyContactId": org.contact_ids[1],
    }
    created = ok(await client.post(ROUTINES, json=body, headers=h), 201)
    assert stamped(created) == {
        "id": created["id"],
        "organizationId": org.id,
        "name": "Extincteurs",
        "siteRuleIds": [org.site_rule_ids[1], org.site_rule_ids[3]],
        "rrule": "FREQ=MONTHLY;BYMONTHDAY=1",
        "dtstart": "2025-01-01T08:00:00.000Z",
        "durationMinutes": 90,
        "horizonDays": 60,
        "autoCreateEnabled": True,
        "assignedProfileId": org.manager.profile_id,
        "assignedUserId": org.manager.user_id,
        "assignedCompanyContactId": org.contact_ids[1],
        "archivedAt": None,
    }
    assert ok(await client.get(f"{ROUTINES}/{created['id']}", headers=org.viewer.headers)) == (
        created
    )

    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    minimal = ok(
        await client.post(
            ROUTINES,
            json={"name": "À la demande", "siteRuleIds": [org.site_rule_ids[0]]},
            headers=h,
        ),
        201,
    )
    after = dt.datetime.now(dt.UTC)
    dtstart = dt.datetime.fromisoformat(minimal["dtstart"].replace("Z", "+00:00"))
    assert before <= dtstart <= after
    assert minimal["dtstart"].endswith(".000Z")  # whole seconds
    assert stamped(minimal, "dtstart") == {
        "id": minimal["id"],
        "organizationId": org.id,
        "name": "À la demande",
        "siteRuleIds": [org.site_rule_ids[0]],
        "rrule": None,
        "durationMinutes": 120,
        "horizonDays": 30,
        "autoCreateEnabled": False,
        "assignedProfileId": None,
        "assignedUserId": None,
        "assignedCompanyContactId": None,
        "archivedAt": None,
    }


@pytest.mark.parametrize(
    "rrule",
    [
        "not a rule",
        "FREQ=FORTNIGHTLY",
        "FREQ=MINUTELY",
        "FREQ=HOURLY;BYMINUTE=0,30",
        "BYDAY=MO",
        "FREQ=DAILY\nFREQ=YEARLY",
        "DTSTART:20240101T000000Z\nRRULE:FREQ=DAILY",
        "FREQ=DAILY;UNTIL=19990101T000000Z",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    ],
)
async def test_routine_invalid_rrule_is_400(
    client: httpx.AsyncClient, factory: Factory, rrule: str
) -> None:
    org: Org = await factory.org()
    body = {
        "name": "R",
        "siteRuleIds": [org.site_rule_ids[0]],
        "rrule": rrule,
        "dtstart": "2024-01-01T00:00:00.000Z",
    }
    refused = problem(await client.post(ROUTINES, json=body, headers=org.admin.headers), 400)
    assert [e["field"] for e in refused["errors"]] == ["rrule"]
    r = await client.patch(
        f"{ROUTINES}/{org.routine_id}", json={"rrule": rrule}, headers=org.admin.headers
    )
    problem(r, 400, "rrule")
    routine = ok(await client.get(f"{ROUTINES}/{org.routine_id}", headers=org.admin.headers))
    assert routine["rrule"] == "FREQ=YEARLY"


async def test_routine_bounds_and_meaning(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    base = {"name": "R", "siteRuleIds": [org.site_rule_ids[0]]}
    for extra, field in [
        ({"siteRuleIds": []}, "siteRuleIds"),
        ({"siteRuleIds": [1.5]}, "siteRuleIds[0]"),
        ({"durationMinutes": 0}, "durationMinutes"),
        ({"durationMinutes": 10081}, "durationMinutes"),
        ({"horizonDays": 0}, "horizonDays"),
        ({"horizonDays": 367}, "horizonDays"),
        ({"autoCreateEnabled": "yes"}, "autoCreateEnabled"),
        ({"dtstart": "2023-02-29T00:00:00Z"}, "dtstart"),
        ({"dtstart": "2024-01-01T00:00:00"}, "dtstart"),
        ({"rrule": "FREQ=YEARLY;" + "BYMONTH=1;" * 60}, "rrule"),
        ({"assignedUserId": "1"}, "assignedUserId"),
    ]:
        problem(await client.post(ROUTINES, json={**base, **extra}, headers=h), 400, field)
    ok(
        await client.post(
            ROUTINES, json={**base, "durationMinutes": 10080, "horizonDays": 366}, headers=h
        ),
        201,
    )
    # Planning by itself needs a recurrence.
    problem(
        await client.post(ROUTINES, json={**base, "autoCreateEnabled": True}, headers=h),
        422,
        "autoCreateEnabled",
    )
    problem(
        await client.post(ROUTINES, json={**base, "siteRuleIds": [MISSING]}, headers=h),
        422,
        "siteRuleIds",
    )
    # Archived references are unknown too.
    archived_sr = org.site_rule_ids[5]
    assert (await client.delete(f"{SITE_RULES}/{archived_sr}", headers=h)).status_code == 204
    problem(
        await client.post(ROUTINES, json={**base, "siteRuleIds": [archived_sr]}, headers=h),
        422,
        "siteRuleIds",
    )
    assert (await client.delete(f"{PROFILES}/{org.viewer.profile_id}", headers=h)).status_code == (
        204
    )
    problem(
        await client.post(
            ROUTINES, json={**base, "assignedProfileId": org.viewer.profile_id}, headers=h
        ),
        422,
        "assignedProfileId",
    )
    problem(
        await client.post(ROUTINES, json={**base, "assignedUserId": org.viewer.user_id}, headers=h),
        422,
        "assignedUserId",
    )


async def test_routine_assignee_by_user_id(client: httpx.AsyncClient, factory: Factory) -> None:
    """SPEC §2 on routines too: ``assignedUserId`` is a user id, ``assignedProfileId`` a
    profile id; both naming different profiles is a 400."""
    org: Org = await factory.org()
    h = org.admin.headers
    base = {"name": "R", "siteRuleIds": [org.site_rule_ids[0]]}
    created = ok(
        await client.post(
            ROUTINES, json={**base, "assignedUserId": org.manager.user_id}, headers=h
        ),
        201,
    )
    assert (created["assignedProfileId"], created["assignedUserId"]) == (
        org.manager.profile_id,
        org.manager.user_id,
    )
    problem(
        await client.post(
            ROUTINES, json={**base, "assignedUserId": org.manager.profile_id}, headers=h
        ),
        422,
        "assignedUserId",
    )
    both = {"assignedUserId": org.manager.user_id, "assignedProfileId": org.admin.profile_id}
    problem(await client.post(ROUTINES, json={**base, **both}, headers=h), 400, "assignedProfileId")
    url = f"{ROUTINES}/{created['id']}"
    changed = ok(await client.patch(url, json={"assignedUserId": org.admin.user_id}, headers=h))
    assert (changed["assignedProfileId"], changed["assignedUserId"]) == (
        org.admin.profile_id,
        org.admin.user_id,
    )
    cleared = ok(await client.patch(url, json={"assignedUserId": None}, headers=h))
    assert (cleared["assignedProfileId"], cleared["assignedUserId"]) == (None, None)
    # An intervention planned from it is assigned to that profile, read back as its user.
    planned = ok(
        await client.patch(url, json={"assignedProfileId": org.manager.profile_id}, headers=h)
    )
    assert planned["assignedUserId"] == org.manager.user_id


async def test_routine_update(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    url = f"{ROUTINES}/{org.routine_id}"
    original = ok(await client.get(url, headers=h))
    assert original["dtstart"] is None  # as imported data may be

    changed = ok(
        await client.patch(
            url,
            json={
                "name": "SSI trimestriel",
                "siteRuleIds": [org.site_rule_ids[8], org.site_rule_ids[7]],
                "rrule": "FREQ=MONTHLY;INTERVAL=3",
                "dtstart": "2025-03-01T07:30:00Z",
                "durationMinutes": 45,
                "horizonDays": 90,
                "autoCreateEnabled": True,
                "assignedProfileId": org.admin.profile_id,
                "assignedCompanyContactId": org.contact_ids[0],
            },
            headers=h,
        )
    )
    assert changed == {
        **original,
        "name": "SSI trimestriel",
        "siteRuleIds": [org.site_rule_ids[7], org.site_rule_ids[8]],
        "rrule": "FREQ=MONTHLY;INTERVAL=3",
        "dtstart": "2025-03-01T07:30:00.000Z",
        "durationMinutes": 45,
        "horizonDays": 90,
        "autoCreateEnabled": True,
        "assignedProfileId": org.admin.profile_id,
        "assignedUserId": org.admin.user_id,
        "assignedCompanyContactId": org.contact_ids[0],
    }
    assert ok(await client.get(url, headers=h)) == changed

    # Clearing the recurrence of a routine that plans by itself makes no sense…
    problem(await client.patch(url, json={"rrule": None}, headers=h), 422, "autoCreateEnabled")
    # … a DTSTART after the rule's UNTIL makes it never occur…
    ok(await client.patch(url, json={"rrule": "FREQ=YEARLY;UNTIL=20260101T000000Z"}, headers=h))
    problem(
        await client.patch(url, json={"dtstart": "2027-01-01T00:00:00Z"}, headers=h), 400, "dtstart"
    )
    # … but both together, and the assignees, can be cleared.
    cleared = ok(
        await client.patch(
            url,
            json={
                "rrule": None,
                "autoCreateEnabled": False,
                "assignedProfileId": None,
                "assignedCompanyContactId": None,
            },
            headers=h,
        )
    )
    assert cleared == {
        **changed,
        "rrule": None,
        "autoCreateEnabled": False,
        "assignedProfileId": None,
        "assignedUserId": None,
        "assignedCompanyContactId": None,
    }
    # Fields not given stay as they are.
    renamed = ok(await client.patch(url, json={"name": "SSI"}, headers=h))
    assert renamed == {**cleared, "name": "SSI"}


async def test_routine_list_filters_and_statement_count(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    org: Org = await factory.org()
    h = org.admin.headers

    async def count_list() -> tuple[int, list[dict[str, Any]]]:
        with statements(database) as seen:
            r = await client.get(f"{ROUTINES}?pageSize=100", headers=h)
        return len(seen), ok(r)

    one_count, one = await count_list()
    assert len(one) == 1
    for n in range(6):
        body = {
            "name": f"Routine {n}",
            "siteRuleIds": org.site_rule_ids[n : n + 3],
            "rrule": "FREQ=WEEKLY",
        }
        ok(await client.post(ROUTINES, json=body, headers=h), 201)
    many_count, many = await count_list()
    assert len(many) == 7
    assert many_count == one_count  # no statement per routine
    assert [r["siteRuleIds"] for r in many[1:]] == [org.site_rule_ids[n : n + 3] for n in range(6)]

    target = org.site_rule_ids[4]
    using = ok(await client.get(f"{ROUTINES}?siteRuleId={target}", headers=h))
    assert [r["name"] for r in using] == ["Routine 2", "Routine 3", "Routine 4"]
    named = ok(await client.get(f"{ROUTINES}?q=routine 5", headers=h))
    assert [r["name"] for r in named] == ["Routine 5"]

    archived = many[1]["id"]
    assert (await client.delete(f"{ROUTINES}/{archived}", headers=h)).status_code == 204
    assert archived not in [r["id"] for r in ok(await client.get(ROUTINES, headers=h))]
    with_archived = ok(await client.get(f"{ROUTINES}?includeArchived=true", headers=h))
    assert [r["id"] for r in with_archived] == [r["id"] for r in many]
    # An archived routine plans no intervention.
    problem(
        await client.post(
            "/interventions/v2/rs/preventive/routine",
            json={
                "scheduledStart": "2024-11-01T08:00:00.000Z",
                "scheduledEnd": "2024-11-01T10:00:00.000Z",
                "creationStatus": 0,
                "routineId": archived,
            },
            headers=h,
        ),
        422,
    )


async def test_profile_list_statement_count(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    with statements(database) as few:
        ok(await client.get(PROFILES, headers=h))
    for _ in range(5):
        await factory.member(org.id)
    with statements(database) as more:
        assert len(ok(await client.get(PROFILES, headers=h))) == 8
    assert len(more) == len(few)


# --- companies and contacts ---------------------------------------------------------------------


async def test_companies(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    created = ok(
        await client.post(
            COMPANIES,
            json={"name": "Formasecu", "type": 3, "email": "Contact@Formasecu.example"},
            headers=h,
        ),
        201,
    )
    assert stamped(created) == {
        "id": created["id"],
        "organizationId": org.id,
        "name": "Formasecu",
        "type": 3,
        "email": "Contact@formasecu.example",
        "archivedAt": None,
    }
    assert [c["id"] for c in ok(await client.get(f"{COMPANIES}?type=3", headers=h))] == [
        created["id"]
    ]
    assert [c["id"] for c in ok(await client.get(f"{COMPANIES}?q=company", headers=h))] == (
        org.company_ids
    )
    problem(await client.get(f"{COMPANIES}?type=0", headers=h), 400, "type")
    updated = ok(
        await client.patch(
            f"{COMPANIES}/{created['id']}", json={"type": 2, "email": None}, headers=h
        )
    )
    assert updated == {**created, "type": 2, "email": None}


async def test_archiving_a_company_archives_its_contacts(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    company, contact = org.company_ids[0], org.contact_ids[0]
    second = ok(
        await client.post(CONTACTS, json={"companyId": company, "name": "Lea"}, headers=h), 201
    )
    assert (await client.delete(f"{COMPANIES}/{company}", headers=h)).status_code == 204
    problem(await client.get(f"{COMPANIES}/{company}", headers=h), 404)
    problem(await client.get(f"{CONTACTS}/{contact}", headers=h), 404)
    problem(await client.get(f"{CONTACTS}/{second['id']}", headers=h), 404)
    assert [c["id"] for c in ok(await client.get(CONTACTS, headers=h))] == [org.contact_ids[1]]
    kept = ok(await client.get(f"{CONTACTS}/{contact}?includeArchived=true", headers=h))
    assert kept["archivedAt"] is not None
    # Neither can be referenced any more: not by contacts, nor by interventions.
    problem(
        await client.post(CONTACTS, json={"companyId": company, "name": "Max"}, headers=h),
        422,
        "companyId",
    )
    problem(
        await client.patch(
            f"{CONTACTS}/{org.contact_ids[1]}", json={"companyId": company}, headers=h
        ),
        422,
        "companyId",
    )
    problem(
        await client.post(
            "/interventions/v2/rs/curative",
            json={
                "scheduledStart": "2024-11-01T08:00:00.000Z",
                "scheduledEnd": "2024-11-01T10:00:00.000Z",
                "anomalyIds": [org.anomaly_ids[0]],
                "creationStatus": 0,
                "assignedCompanyContactId": contact,
            },
            headers=h,
        ),
        422,
        "assignedCompanyContactId",
    )
    problem(
        await client.post(
            ROUTINES,
            json={
                "name": "R",
                "siteRuleIds": [org.site_rule_ids[0]],
                "assignedCompanyContactId": contact,
            },
            headers=h,
        ),
        422,
        "assignedCompanyContactId",
    )


async def test_company_contacts(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    created = ok(
        await client.post(
            CONTACTS,
            json={"companyId": org.company_ids[1], "name": "Inès Roy", "email": "ines@ex.example"},
            headers=h,
        ),
        201,
    )
    assert stamped(created) == {
        "id": created["id"],
        "organizationId": org.id,
        "companyId": org.company_ids[1],
        "name": "Inès Roy",
        "email": "ines@ex.example",
        "archivedAt": None,
    }
    of_company = ok(await client.get(f"{CONTACTS}?companyId={org.company_ids[1]}", headers=h))
    assert [c["id"] for c in of_company] == [org.contact_ids[1], created["id"]]
    assert ok(await client.get(f"{CONTACTS}?q=inès", headers=h)) == [created]
    assert ok(await client.get(f"{CONTACTS}?q=roy", headers=h)) == [created]
    moved = ok(
        await client.patch(
            f"{CONTACTS}/{created['id']}",
            json={"companyId": org.company_ids[0], "email": None},
            headers=h,
        )
    )
    assert moved == {**created, "companyId": org.company_ids[0], "email": None}
    assert (await client.delete(f"{CONTACTS}/{created['id']}", headers=h)).status_code == 204
    of_company = ok(await client.get(f"{CONTACTS}?companyId={org.company_ids[0]}", headers=h))
    assert [c["id"] for c in of_company] == [org.contact_ids[0]]


# --- anomalies ----------------------------------------------------------------------------------


async def test_anomalies(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    h = org.manager.headers
    created = ok(
        await client.post(
            ANOMALIES,
            json={
                "siteId": org.site_ids[2],
                "title": "Bloc secours HS",
                "description": "Couloir nord",
                "risk": 3,
            },
            headers=h,
        ),
        201,
    )
    assert stamped(created, "updatedAt") == {
        "id": created["id"],
        "organizationId": org.id,
        "siteId": org.site_ids[2],
        "title": "Bloc secours HS",
        "description": "Couloir nord",
        "risk": 3,
        "status": 0,
        "resolvedAt": None,
        "resolvedByUserId": None,
        "raisedByInterventionId": None,
    }
    plain = ok(
        await client.post(
            ANOMALIES, json={"siteId": org.site_ids[0], "title": "Fissure"}, headers=h
        ),
        201,
    )
    assert (plain["risk"], plain["description"], plain["status"]) == (0, None, 0)

    updated = ok(
        await client.patch(
            f"{ANOMALIES}/{created['id']}",
            json={"title": "Bloc secours", "description": None, "risk": 1},
            headers=h,
        )
    )
    assert stamped(updated, "updatedAt") == {
        **stamped(created, "updatedAt"),
        "title": "Bloc secours",
        "description": None,
        "risk": 1,
    }
    assert updated["updatedAt"] >= created["updatedAt"]
    problem(
        await client.patch(f"{ANOMALIES}/{created['id']}", json={"status": 2}, headers=h),
        400,
        "status",
    )
    # Not archived: no such operation.
    problem(await client.delete(f"{ANOMALIES}/{created['id']}", headers=h), 405)

    # The status follows the interventions: a curative one puts it in repair.
    r = await client.post(
        "/interventions/v2/rs/curative",
        json={
            "scheduledStart": "2024-11-01T08:00:00.000Z",
            "scheduledEnd": "2024-11-01T10:00:00.000Z",
            "anomalyIds": [created["id"]],
            "creationStatus": 0,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert ok(await client.get(f"{ANOMALIES}/{created['id']}", headers=h))["status"] == 1
    in_repair = ok(await client.get(f"{ANOMALIES}?status=1", headers=h))
    assert [a["id"] for a in in_repair] == [created["id"]]
    open_ = ok(await client.get(f"{ANOMALIES}?status=0&pageSize=100", headers=h))
    assert [a["id"] for a in open_] == [*org.anomaly_ids, plain["id"]]
    on_site = ok(await client.get(f"{ANOMALIES}?siteId={org.site_ids[0]}", headers=h))
    assert [a["id"] for a in on_site] == [org.anomaly_ids[0], org.anomaly_ids[3], plain["id"]]
    assert [a["id"] for a in ok(await client.get(f"{ANOMALIES}?q=FISS", headers=h))] == [
        plain["id"]
    ]
    problem(await client.get(f"{ANOMALIES}?status=3", headers=h), 400, "status")


# --- profiles -----------------------------------------------------------------------------------


async def login(
    client: httpx.AsyncClient, email: str, password: str, organization_id: int | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"email": email, "password": password}
    if organization_id is not None:
        body["organizationId"] = organization_id
    return await client.post("/auth/v1/rs/login/credentials", json=body)


_TOKEN_IN_LINK = re.compile(r"\?token=([A-Za-z0-9_-]+)")


async def invitation_token(database: Database, email: str) -> str:
    """The token of the latest invitation e-mailed to ``email``, read from the outbox."""
    async with database.reader() as s:
        body = await s.scalar(
            select(OutboxEmail.body)
            .where(OutboxEmail.recipient == email, OutboxEmail.kind == "organization.invitation")
            .order_by(OutboxEmail.id.desc())
            .limit(1)
        )
    assert body is not None, f"no invitation e-mailed to {email}"
    match = _TOKEN_IN_LINK.search(body)
    assert match, body
    return match.group(1)


async def test_profiles_are_readable_by_every_role(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    tag = org.admin.email.split("-", 1)[1].split("@")[0]
    listed = ok(await client.get(PROFILES, headers=org.viewer.headers))
    assert [stamped(p) for p in listed] == [
        {
            "id": m.profile_id,
            "organizationId": org.id,
            "userId": m.user_id,
            "email": m.email,
            "firstName": m.role.title(),
            "lastName": tag,
            "role": m.role,
            "archivedAt": None,
        }
        for m in (org.admin, org.manager, org.viewer)
    ]
    one = ok(await client.get(f"{PROFILES}/{org.manager.profile_id}", headers=org.viewer.headers))
    assert one == listed[1]
    managers = ok(await client.get(f"{PROFILES}?role=manager", headers=org.manager.headers))
    assert managers == [listed[1]]
    assert ok(await client.get(f"{PROFILES}?q=VIEWER-", headers=org.admin.headers)) == [listed[2]]
    assert ok(await client.get(f"{PROFILES}?q=Admin", headers=org.admin.headers)) == [listed[0]]
    problem(await client.get(f"{PROFILES}?role=owner", headers=org.admin.headers), 400, "role")


async def test_admin_invites_a_new_user(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    org: Org = await factory.org()
    email = f"Nouvelle.Recrue-{org.id}@Example.org"
    body = {"email": email, "role": "manager"}
    invited = ok(await client.post(PROFILES, json=body, headers=org.admin.headers), 202)
    assert (invited["email"], invited["role"], invited["status"]) == (
        email.lower(),
        "manager",
        "pending",
    )
    # Nobody joins before accepting.
    assert len(ok(await client.get(PROFILES, headers=org.admin.headers))) == 3
    acceptance = {
        "token": await invitation_token(database, email.lower()),
        "password": "a long enough password",
        "firstName": "Nina",
        "lastName": "Petit",
    }
    created = ok(await client.post(ACCEPT_WITH_PASSWORD, json=acceptance), 201)
    assert stamped(created) == {
        "id": created["id"],
        "organizationId": org.id,
        "userId": created["userId"],
        "email": email.lower(),
        "firstName": "Nina",
        "lastName": "Petit",
        "role": "manager",
        "archivedAt": None,
    }
    assert created["userId"] not in {org.admin.user_id, org.manager.user_id, org.viewer.user_id}
    # The new member can log in, and acts as a manager of the organisation.
    tokens = ok(await login(client, email, "a long enough password"), 201)
    headers = {
        "Authorization": f"Bearer {tokens['accessToken']}",
        "x-session-token": tokens["sessionToken"],
    }
    me = ok(await client.get("/auth/v1/rs/me", headers=headers))
    assert (me["profileId"], me["organizationId"], me["role"]) == (created["id"], org.id, "manager")
    ok(await client.post(SITES, json={"name": "Par Nina"}, headers=headers), 201)
    problem(await client.post(PROFILES, json=body, headers=headers), 403)

    # The same e-mail again, in any case: already a member.
    again = {**body, "email": email.upper()}
    problem(await client.post(PROFILES, json=again, headers=org.admin.headers), 409, "email")
    # Another new e-mail is invited, not made a member: no password, nobody joins.
    later = {"email": f"sans-{org.id}@example.org", "role": "viewer"}
    ok(await client.post(PROFILES, json=later, headers=org.admin.headers), 202)
    assert len(ok(await client.get(PROFILES, headers=org.admin.headers))) == 4


async def test_admin_invites_an_existing_user(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    org: Org = await factory.org()
    other: Org = await factory.org()
    body = {"email": other.manager.email, "role": "viewer"}
    ok(await client.post(PROFILES, json=body, headers=org.admin.headers), 202)
    token = await invitation_token(database, other.manager.email)
    # Only the user can accept: with their session (or their own password).
    problem(
        await client.post(
            ACCEPT_WITH_PASSWORD, json={"token": token, "password": "an attempt to take over"}
        ),
        401,
    )
    created = ok(
        await client.post(ACCEPT, json={"token": token}, headers=other.manager.headers), 201
    )
    tag = other.manager.email.split("-", 1)[1].split("@")[0]
    assert stamped(created) == {
        "id": created["id"],
        "organizationId": org.id,
        "userId": other.manager.user_id,
        "email": other.manager.email,
        "firstName": "Manager",
        "lastName": tag,
        "role": "viewer",
        "archivedAt": None,
    }
    # The user keeps their password and is now in two organisations.
    problem(await login(client, other.manager.email, "an attempt to take over", org.id), 401)
    tokens = ok(await login(client, other.manager.email, PASSWORD, org.id), 201)
    headers = {
        "Authorization": f"Bearer {tokens['accessToken']}",
        "x-session-token": tokens["sessionToken"],
    }
    me = ok(await client.get("/auth/v1/rs/me", headers=headers))
    assert (me["profileId"], me["role"], me["firstName"]) == (created["id"], "viewer", "Manager")
    # Their profile elsewhere is untouched.
    theirs = ok(
        await client.get(f"{PROFILES}/{other.manager.profile_id}", headers=other.admin.headers)
    )
    assert theirs["role"] == "manager"
    problem(await client.post(PROFILES, json=body, headers=org.admin.headers), 409, "email")


async def test_profile_role_changes(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    url = f"{PROFILES}/{org.viewer.profile_id}"
    before = ok(await client.get(url, headers=h))
    promoted = ok(await client.patch(url, json={"role": "admin"}, headers=h))
    assert promoted == {**before, "role": "admin"}
    # The viewer's live session now acts with the new role.
    ok(await client.post(SITES, json={"name": "Promu"}, headers=org.viewer.headers), 201)
    # An admin cannot demote themselves; another admin can.
    refused = problem(
        await client.patch(
            f"{PROFILES}/{org.admin.profile_id}", json={"role": "manager"}, headers=h
        ),
        409,
        "role",
    )
    assert "demote" in refused["detail"]
    same = ok(
        await client.patch(f"{PROFILES}/{org.admin.profile_id}", json={"role": "admin"}, headers=h)
    )
    assert same["role"] == "admin"
    demoted = ok(
        await client.patch(
            f"{PROFILES}/{org.admin.profile_id}",
            json={"role": "viewer"},
            headers=org.viewer.headers,
        )
    )
    assert demoted["role"] == "viewer"
    # The former admin has lost the right, at once.
    problem(await client.patch(url, json={"role": "viewer"}, headers=h), 403)
    problem(await client.post(SITES, json={"name": "x"}, headers=h), 403)


async def test_profile_archive(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    refused = problem(await client.delete(f"{PROFILES}/{org.admin.profile_id}", headers=h), 409)
    assert "own profile" in refused["detail"]
    url = f"{PROFILES}/{org.manager.profile_id}"
    assert (await client.delete(url, headers=h)).status_code == 204
    # Access ends at once, and the member leaves the lists.
    problem(await client.get(SITES, headers=org.manager.headers), 401)
    problem(await client.get(url, headers=h), 404)
    problem(await client.patch(url, json={"role": "viewer"}, headers=h), 404)
    problem(await client.delete(url, headers=h), 404)
    assert [p["id"] for p in ok(await client.get(PROFILES, headers=h))] == [
        org.admin.profile_id,
        org.viewer.profile_id,
    ]
    archived = ok(await client.get(f"{url}?includeArchived=true", headers=h))
    assert archived["archivedAt"] is not None
    problem(await login(client, org.manager.email, PASSWORD), 403)
    # Invited again and accepting, the member comes back on the same profile with the new role.
    ok(
        await client.post(PROFILES, json={"email": org.manager.email, "role": "viewer"}, headers=h),
        202,
    )
    acceptance = {
        "token": await invitation_token(database, org.manager.email),
        "password": PASSWORD,
    }
    back = ok(await client.post(ACCEPT_WITH_PASSWORD, json=acceptance), 201)
    assert back == {**archived, "role": "viewer", "archivedAt": None}
    ok(await login(client, org.manager.email, PASSWORD), 201)


# --- what the writes leave alone, and what the document says ------------------------------------


async def test_reference_writes_record_no_intervention_history(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    org: Org = await factory.org()
    ids = existing_ids(org)
    h = org.admin.headers
    for path, (create, update) in valid_bodies(org).items():
        if path == SITE_RULES:
            site = ok(await client.post(SITES, json={"name": "S"}, headers=h), 201)["id"]
            create = {"siteId": site, "ruleId": org.rule_ids[0]}
        # A profile is created by an invitation's acceptance: the POST invites (202).
        ok(await client.post(path, json=create, headers=h), 202 if path == PROFILES else 201)
        ok(await client.patch(f"{path}/{ids[path]}", json=update, headers=h))
        if path != ANOMALIES:
            assert (await client.delete(f"{path}/{ids[path]}", headers=h)).status_code == 204
    async with database.reader() as s:
        count = await s.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(
                JournalEntry.organization_id == org.id,
                JournalEntry.subject_type == "intervention",
            )
        )
    assert count == 0


async def test_openapi_documents_every_reference_operation(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    expected = {
        "get": {"200", "400", "401"},
        "post": {"201", "400", "401", "403", "413", "415"},
        "patch": {"200", "400", "401", "403", "404", "413", "415"},
        "delete": {"204", "400", "401", "403", "404"},
    }
    seen = 0
    for family in FAMILIES:
        param = document["paths"][f"{family}/{{{_path_param(family)}}}"]
        collection = document["paths"][family]
        assert set(collection) == {"get", "post"}, family
        assert set(param) == (
            {"get", "patch"} if family == ANOMALIES else {"get", "patch", "delete"}
        )
        for method, operation in [*collection.items(), *param.items()]:
            codes = set(operation["responses"])
            wanted = expected[method]
            if (family, method) == (PROFILES, "post"):
                wanted = wanted - {"201"} | {"202"}  # an invitation, accepted later
            assert wanted <= codes, (family, method, codes)
            if operation is param.get("get"):
                assert "404" in codes
            for code, response in operation["responses"].items():
                if code[0] in "45":
                    assert set(response["content"]) == {PROBLEM_JSON}
            seen += 1
    assert seen == 39
    assert "409" in document["paths"][SITE_RULES]["post"]["responses"]
    assert "422" in document["paths"][SITE_RULES]["post"]["responses"]
    assert "409" in document["paths"][f"{PROFILES}/{{profileId}}"]["delete"]["responses"]
    schemas = document["components"]["schemas"]
    assert schemas["AnomalyRead"]["properties"]["status"]["description"] == (
        "0 open · 1 in repair · 2 resolved"
    )
    assert "null" not in str(schemas["SiteUpdate"]["properties"]["name"])


def _path_param(family: str) -> str:
    return {
        SITES: "siteId",
        RULES: "ruleId",
        SITE_RULES: "siteRuleId",
        ROUTINES: "routineId",
        COMPANIES: "companyId",
        CONTACTS: "companyContactId",
        ANOMALIES: "anomalyId",
        PROFILES: "profileId",
    }[family]


async def test_a_site_rule_named_by_interventions_keeps_its_pair(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    h = org.admin.headers
    r = await client.post(
        "/interventions/v2/rs/preventive/routine",
        json={
            "scheduledStart": "2024-11-01T08:00:00.000Z",
            "scheduledEnd": "2024-11-01T10:00:00.000Z",
            "creationStatus": 0,
            "routineId": org.routine_id,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    recorded = org.site_rule[(org.site_ids[0], org.rule_ids[0])]
    assert recorded in r.json()["data"]["siteRuleIds"]
    site = ok(await client.post(SITES, json={"name": "Ailleurs"}, headers=h), 201)["id"]
    before = ok(await client.get(f"{SITE_RULES}/{recorded}", headers=h))
    refused = problem(
        await client.patch(f"{SITE_RULES}/{recorded}", json={"siteId": site}, headers=h), 409
    )
    assert "Archive it" in refused["detail"]
    assert ok(await client.get(f"{SITE_RULES}/{recorded}", headers=h)) == before
    # Archiving it and applying the rule elsewhere is the way.
    assert (await client.delete(f"{SITE_RULES}/{recorded}", headers=h)).status_code == 204
    moved = {"siteId": site, "ruleId": org.rule_ids[0]}
    assert ok(await client.post(SITE_RULES, json=moved, headers=h), 201)["id"] != recorded
