"""Webhook endpoints over HTTP, on both databases: what admins manage, what others get
(403), another organisation's ids (404), bad bodies (400) and URLs that cannot be called
(422), deletion that keeps the log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from interventions.app import create_app
from interventions.config import Settings
from interventions.db import Database
from interventions.integrations.webhooks.addresses import AddressRefused, check_url, resolve
from interventions.integrations.webhooks.models import WebhookEndpoint
from interventions.integrations.webhooks.relay import fan_out
from interventions.register import journal
from interventions.register.journal import Entry, Subject, system_actor
from tests.factories import Factory, Org
from tests.helpers import MISSING, assert_problem, ok

HOOKS = "/integrations/v1/rs/webhooks"
PUBLIC = "https://93.184.215.14/hooks"  # a public address: no DNS needed
BODY = {"url": PUBLIC, "eventTypes": ["intervention.created", "anomaly.resolved"]}


@pytest.fixture
async def org(factory: Factory, database: Database) -> AsyncIterator[Org]:
    created = await factory.org()
    yield created
    async with database.writer() as s, s.begin():
        await s.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.organization_id == created.id)
            .values(enabled=False)
        )


async def create(client: httpx.AsyncClient, org: Org, **more: Any) -> dict[str, Any]:
    data: dict[str, Any] = ok(
        await client.post(HOOKS, json=BODY | more, headers=org.admin.headers), 201
    )
    return data


async def test_create_read_list_update_rotate(client: httpx.AsyncClient, org: Org) -> None:
    hook = await create(client, org, description="ERP")
    assert hook["secret"].startswith("whsec_")
    assert hook["eventTypes"] == ["intervention.created", "anomaly.resolved"]
    assert (hook["enabled"], hook["organizationId"], hook["description"]) == (True, org.id, "ERP")
    read = ok(await client.get(f"{HOOKS}/{hook['id']}", headers=org.admin.headers))
    assert "secret" not in read
    assert read == {k: v for k, v in hook.items() if k != "secret"}
    listed = (await client.get(HOOKS, headers=org.admin.headers)).json()
    assert listed["totalCount"] == 1
    assert [h["id"] for h in listed["data"]] == [hook["id"]]
    r = await client.patch(
        f"{HOOKS}/{hook['id']}",
        json={"enabled": False, "eventTypes": ["intervention.verified"], "description": None},
        headers=org.admin.headers,
    )
    changed = ok(r)
    assert changed["enabled"] is False
    assert changed["disabledReason"] == "Disabled by an admin."
    assert changed["eventTypes"] == ["intervention.verified"]
    assert changed["description"] is None
    rotated = ok(await client.post(f"{HOOKS}/{hook['id']}/secret", headers=org.admin.headers))
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != hook["secret"]


async def test_a_new_endpoint_starts_at_the_journal_head(
    client: httpx.AsyncClient, org: Org, database: Database, settings: Settings
) -> None:
    async with database.transaction() as db:
        head = await journal.append(
            db, org.id, [Entry("create", Subject.INTERVENTION, 1, {}, system_actor("test"))]
        )
    hook = await create(client, org)
    assert hook["lastJournalSeq"] == head.seq
    await fan_out(database, settings)
    r = await client.get(f"{HOOKS}/{hook['id']}/deliveries", headers=org.admin.headers)
    assert r.json()["totalCount"] == 0


async def test_delete_disables_and_keeps_the_log(client: httpx.AsyncClient, org: Org) -> None:
    hook = await create(client, org)
    r = await client.delete(f"{HOOKS}/{hook['id']}", headers=org.admin.headers)
    assert r.status_code == 204
    read = ok(await client.get(f"{HOOKS}/{hook['id']}", headers=org.admin.headers))
    assert read["deletedAt"] is not None
    assert read["enabled"] is False
    r = await client.get(f"{HOOKS}/{hook['id']}/deliveries", headers=org.admin.headers)
    assert r.status_code == 200
    assert (await client.get(HOOKS, headers=org.admin.headers)).json()["totalCount"] == 0
    for method, path, body in (
        ("DELETE", "", None),
        ("PATCH", "", {"enabled": True}),
        ("POST", "/secret", None),
    ):
        r = await client.request(
            method, f"{HOOKS}/{hook['id']}{path}", json=body, headers=org.admin.headers
        )
        assert_problem(r, 409)


def _operations(hook_id: int, delivery_id: int) -> list[tuple[str, str, Any]]:
    return [
        ("GET", f"{HOOKS}/{hook_id}", None),
        ("PATCH", f"{HOOKS}/{hook_id}", {"enabled": False}),
        ("POST", f"{HOOKS}/{hook_id}/secret", None),
        ("GET", f"{HOOKS}/{hook_id}/deliveries", None),
        ("POST", f"{HOOKS}/{hook_id}/deliveries/{delivery_id}/replay", None),
        ("DELETE", f"{HOOKS}/{hook_id}", None),
    ]


async def test_only_admins_manage_webhooks(client: httpx.AsyncClient, org: Org) -> None:
    hook = await create(client, org)
    for member in (org.manager, org.viewer):
        assert_problem(await client.get(HOOKS, headers=member.headers), 403)
        assert_problem(await client.post(HOOKS, json=BODY, headers=member.headers), 403)
        for method, path, body in _operations(hook["id"], 1):
            r = await client.request(method, path, json=body, headers=member.headers)
            assert_problem(r, 403)
    assert_problem(await client.get(HOOKS), 401)


async def test_another_organisations_ids_are_404(
    client: httpx.AsyncClient, org: Org, factory: Factory, database: Database
) -> None:
    other = await factory.org()
    theirs = await create(client, other)
    mine = await create(client, org)
    async with database.transaction() as db:
        await journal.append(
            db, other.id, [Entry("create", Subject.INTERVENTION, 1, {}, system_actor("test"))]
        )
    for method, path, body in _operations(theirs["id"], 1) + _operations(MISSING, 1):
        r = await client.request(method, path, json=body, headers=org.admin.headers)
        assert_problem(r, 404)
    # A delivery id of another endpoint (or organisation) under my endpoint: 404.
    r = await client.post(
        f"{HOOKS}/{mine['id']}/deliveries/{MISSING}/replay", headers=org.admin.headers
    )
    assert_problem(r, 404)
    still = ok(await client.get(f"{HOOKS}/{theirs['id']}", headers=other.admin.headers))
    assert still["enabled"] is True
    async with database.writer() as s, s.begin():
        await s.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.organization_id == other.id)
            .values(enabled=False)
        )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": PUBLIC}, "eventTypes"),
        ({"eventTypes": ["intervention.created"]}, "url"),
        (BODY | {"eventTypes": []}, "eventTypes"),
        (BODY | {"eventTypes": ["intervention.deleted"]}, "eventTypes[0]"),
        (BODY | {"url": "ftp://example.org/x"}, "url"),
        (BODY | {"url": "https://user:pw@example.org/x"}, "url"),
        (BODY | {"url": "https://example.org/x#frag"}, "url"),
        (BODY | {"url": 7}, "url"),
        (BODY | {"enabled": "yes"}, "enabled"),
        (BODY | {"secret": "whsec_mine"}, "secret"),
    ],
)
async def test_bad_bodies_are_400(
    client: httpx.AsyncClient, org: Org, body: dict[str, Any], field: str
) -> None:
    assert_problem(await client.post(HOOKS, json=body, headers=org.admin.headers), 400, field)


async def test_null_is_refused_where_nothing_can_be_cleared(
    client: httpx.AsyncClient, org: Org
) -> None:
    hook = await create(client, org)
    for name in ("url", "eventTypes", "enabled"):
        r = await client.patch(
            f"{HOOKS}/{hook['id']}", json={name: None}, headers=org.admin.headers
        )
        assert_problem(r, 400, name)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hooks",
        "http://localhost/hooks",
        "http://10.1.2.3/hooks",
        "http://192.168.0.10/hooks",
        "http://172.16.0.1/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
        "http://[fd00::1]/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://0.0.0.0/hooks",
        "http://224.0.0.1/hooks",
        "https://no-such-host.invalid/hooks",
        "https://example.org:99999/hooks",
    ],
)
async def test_addresses_that_cannot_be_called_are_422(
    client: httpx.AsyncClient, org: Org, url: str
) -> None:
    r = await client.post(HOOKS, json=BODY | {"url": url}, headers=org.admin.headers)
    problem = assert_problem(r, 422, "url")
    assert (
        "ALLOW_PRIVATE" in problem["detail"]
        or "resolve" in problem["detail"]
        or "URL" in (problem["detail"])
    )
    hook = await create(client, org)
    r = await client.patch(f"{HOOKS}/{hook['id']}", json={"url": url}, headers=org.admin.headers)
    assert_problem(r, 422, "url")
    assert ok(await client.get(f"{HOOKS}/{hook['id']}", headers=org.admin.headers))["url"] == PUBLIC


async def test_the_operator_may_allow_private_networks(
    settings: Settings, database: Database, org: Org
) -> None:
    app = create_app(
        settings.model_copy(update={"webhooks_allow_private_networks": True}), database
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        hook = await create(client, org, url="http://127.0.0.1:9/hooks")
    assert hook["url"] == "http://127.0.0.1:9/hooks"


async def test_address_checks() -> None:
    with pytest.raises(AddressRefused):
        check_url("https://u@example.org/")
    with pytest.raises(AddressRefused, match="loopback"):
        await resolve("http://localhost:8000/", allow_private=False)
    target = await resolve("http://localhost:8000/x?y=1", allow_private=True)
    assert target.address in ("127.0.0.1", "::1")
    assert target.host_header == "localhost:8000"
    assert target.pinned_url.endswith(":8000/x?y=1")
    assert (await resolve("https://[2606:4700::1]/", allow_private=False)).pinned_url == (
        "https://[2606:4700::1]/"
    )
