"""Provider links (issue 12, item 7): the organisation creates, lists and revokes them; the
provider, with nothing but the link, reads the intervention, checks in with the PIN, executes
and uploads the signature, each action attributed to the contact; nothing else works with the
token, and a token that does not work is a 404 whatever the reason."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

import httpx
from sqlalchemy import select, update

from interventions.db import Database, utcnow
from interventions.integrations.provider_links.models import ProviderLink
from interventions.notifications.models import OutboxEmail
from interventions.wire import format_datetime
from tests.factories import Org
from tests.helpers import (
    MB,
    PNG,
    RS,
    SIGNATURE,
    TRAINING,
    assert_problem,
    journal_of,
    ok,
    wrong_pin,
)

PROVIDER = "/provider/v1"


def at(delta: dt.timedelta) -> str:
    return format_datetime(utcnow() + delta)


def links_url(intervention_id: int) -> str:
    return f"{RS}/{intervention_id}/provider-links"


async def assigned_drill(
    client: httpx.AsyncClient, org: Org, *, contact: int | None = 0
) -> dict[str, Any]:
    """A drill scheduled tomorrow, assigned to the organisation's contact ``contact``."""
    body: dict[str, Any] = {
        "scheduledStart": at(dt.timedelta(days=1)),
        "scheduledEnd": at(dt.timedelta(days=1, hours=2)),
        "ruleId": org.training_rule_id,
        "siteIds": [org.site_ids[0]],
        "creationStatus": 1,
        "assignedProfileId": org.manager.profile_id,
    }
    if contact is not None:
        body["assignedCompanyContactId"] = org.contact_ids[contact]
    return dict(ok(await client.post(TRAINING, json=body, headers=org.admin.headers), 201))


async def new_link(
    client: httpx.AsyncClient, org: Org, intervention_id: int, **body: Any
) -> tuple[dict[str, Any], str]:
    """A link made by the manager, and its token."""
    r = await client.post(links_url(intervention_id), json=body, headers=org.manager.headers)
    link = ok(r, 201)
    token = link["url"].rsplit("/", 1)[1]
    return link, token


def execution(**extra: Any) -> dict[str, Any]:
    return {
        "firstName": "Paul",
        "lastName": "Durand",
        "email": "paul@provider.example",
        "providerActionComment": "Drill done",
        "comment": "All good",
        "signature": {**SIGNATURE, "size": len(PNG)},
        "attendeeCount": 12,
        **extra,
    }


async def expire(database: Database, link_id: int) -> None:
    async with database.writer() as s, s.begin():
        await s.execute(
            update(ProviderLink)
            .where(ProviderLink.id == link_id)
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )


# --- the whole path -------------------------------------------------------------------------


async def test_read_check_in_execute_and_sign_through_the_link(
    client: httpx.AsyncClient, factory: Any, database: Database
) -> None:
    org: Org = await factory.org()
    drill = await assigned_drill(client, org)
    link, token = await new_link(client, org, drill["id"])
    assert link["url"] == f"http://testserver{PROVIDER}/{token}"
    assert len(token) == 43
    assert link["interventionId"] == drill["id"]
    assert link["contactId"] == org.contact_ids[0]
    assert link["status"] == "active"
    assert link["revokedAt"] is None
    assert link["createdByUserId"] == org.manager.user_id
    # Default expiry: 7 days after the scheduled end.
    end = dt.datetime.fromisoformat(drill["scheduledEnd"].replace("Z", "+00:00"))
    assert link["expiresAt"] == format_datetime(end + dt.timedelta(days=7))
    # Only the token's SHA-256 is kept.
    async with database.reader() as s:
        stored = (
            await s.execute(select(ProviderLink).where(ProviderLink.id == link["id"]))
        ).scalar_one()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(stored.__dict__)

    listed = await client.get(links_url(drill["id"]), headers=org.admin.headers)
    body = listed.json()
    assert body["totalCount"] == 1
    assert body["data"][0]["id"] == link["id"]
    assert "url" not in body["data"][0]
    assert token not in listed.text

    # The provider reads it: no PIN, nobody of the organisation.
    seen = ok(await client.get(f"{PROVIDER}/{token}"))
    assert seen["id"] == drill["id"]
    assert seen["status"] == 2
    assert seen["scheduledEnd"] == drill["scheduledEnd"]
    assert seen["siteIds"] == [org.site_ids[0]]
    assert [s["id"] for s in seen["sites"]] == [org.site_ids[0]]
    assert seen["rules"][0]["id"] == org.training_rule_id
    assert seen["actions"] == {"canCheckIn": True, "canExecute": False}
    assert seen["link"] == {"id": link["id"], "expiresAt": link["expiresAt"]}
    for hidden in (
        "codePin",
        "assignedProfileId",
        "assignedUserId",
        "createdByUserId",
        "createdById",
        "verifiedByUserId",
        "organizationId",
        "history",
        "imgSignature",
    ):
        assert hidden not in seen, hidden
    assert str(drill["codePin"]) not in str(seen)

    r = await client.patch(
        f"{PROVIDER}/{token}/check-in", json={"codePin": wrong_pin(drill["codePin"])}
    )
    assert_problem(r, 422, "codePin")
    r = await client.patch(f"{PROVIDER}/{token}/execute", json=execution())
    assert_problem(r, 409)  # not checked in
    checked = ok(
        await client.patch(f"{PROVIDER}/{token}/check-in", json={"codePin": drill["codePin"]})
    )
    assert checked["status"] == 3
    assert checked["actualStart"] is not None
    assert checked["actions"] == {"canCheckIn": False, "canExecute": True}
    r = await client.patch(f"{PROVIDER}/{token}/check-in", json={"codePin": drill["codePin"]})
    assert_problem(r, 409)

    r = await client.patch(f"{PROVIDER}/{token}/execute", json=execution())
    assert r.status_code == 200, r.text
    executed = r.json()
    assert executed["data"]["status"] == 4
    assert executed["data"]["providerName"] == "Paul Durand"
    assert executed["data"]["attendeeCount"] == 12
    assert executed["data"]["signed"] is True
    put = await client.put(
        executed["presignedUrl"], content=PNG, headers={"content-type": "image/png"}
    )
    assert put.status_code == 200, put.text

    detail = ok(await client.get(f"{RS}/{drill['id']}", headers=org.admin.headers))
    assert detail["status"] == 4
    assert (await client.get(detail["imgSignature"], headers=org.admin.headers)).content == PNG
    contact = {
        "type": "contact",
        "contactId": org.contact_ids[0],
        "name": "Contact 0",
        "linkId": link["id"],
    }
    actors = {h["action"]: h["actor"] for h in detail["history"]}
    assert [h["action"] for h in detail["history"]] == [
        "create",
        "provider-link",
        "check-in",
        "execute",
    ]
    assert actors["check-in"] == contact
    assert actors["execute"] == contact
    assert actors["provider-link"] == {
        "type": "user",
        "userId": org.manager.user_id,
        "profileId": org.manager.profile_id,
    }
    announced = [e for e in await journal_of(database, org.id) if e.action == "announce"]
    assert [e.actor for e in announced] == [contact]
    # The organisation's writers are notified, as for any execution.
    notes = ok(await client.get("/notifications/v1/rs", headers=org.admin.headers))
    assert [n["interventionId"] for n in notes] == [drill["id"]]
    # Reading goes on working after the execution.
    assert ok(await client.get(f"{PROVIDER}/{token}"))["status"] == 4


# --- links that do not work: the same 404 ---------------------------------------------------


async def assert_dead(client: httpx.AsyncClient, token: str, pin: int) -> None:
    for r in (
        await client.get(f"{PROVIDER}/{token}"),
        await client.patch(f"{PROVIDER}/{token}/check-in", json={"codePin": pin}),
        await client.patch(f"{PROVIDER}/{token}/execute", json=execution()),
    ):
        problem = assert_problem(r, 404)
        assert problem["detail"] == "No such provider link, or it no longer works."


async def test_revoked_expired_unknown_and_reassigned_links_are_404(
    client: httpx.AsyncClient, factory: Any, database: Database
) -> None:
    org: Org = await factory.org()
    drill = await assigned_drill(client, org)
    pin = drill["codePin"]

    revoked, revoked_token = await new_link(client, org, drill["id"])
    r = await client.delete(
        f"{links_url(drill['id'])}/{revoked['id']}", headers=org.manager.headers
    )
    assert r.status_code == 204
    await assert_dead(client, revoked_token, pin)
    r = await client.delete(
        f"{links_url(drill['id'])}/{revoked['id']}", headers=org.manager.headers
    )
    assert_problem(r, 409)

    expired, expired_token = await new_link(client, org, drill["id"])
    assert ok(await client.get(f"{PROVIDER}/{expired_token}"))["id"] == drill["id"]
    await expire(database, expired["id"])
    await assert_dead(client, expired_token, pin)

    await assert_dead(client, "x" * 43, pin)
    await assert_dead(client, revoked_token[:-1], pin)

    statuses = {
        link["id"]: link["status"]
        for link in ok(await client.get(links_url(drill["id"]), headers=org.admin.headers))
    }
    assert statuses == {revoked["id"]: "revoked", expired["id"]: "expired"}

    # Reassigned to another contact: the link is suspended; back to its contact: it works.
    _, token = await new_link(client, org, drill["id"])
    body = {"assignedCompanyContactId": org.contact_ids[1]}
    ok(await client.patch(f"{TRAINING}/{drill['id']}", json=body, headers=org.admin.headers))
    await assert_dead(client, token, pin)
    body = {"assignedCompanyContactId": None}
    ok(await client.patch(f"{TRAINING}/{drill['id']}", json=body, headers=org.admin.headers))
    await assert_dead(client, token, pin)
    body = {"assignedCompanyContactId": org.contact_ids[0]}
    ok(await client.patch(f"{TRAINING}/{drill['id']}", json=body, headers=org.admin.headers))
    assert ok(await client.get(f"{PROVIDER}/{token}"))["id"] == drill["id"]
    # Nothing was changed by the dead links.
    assert ok(await client.get(f"{RS}/{drill['id']}", headers=org.admin.headers))["status"] == 2


async def test_wrong_pins_through_a_link_are_rate_limited(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    drill = await assigned_drill(client, org)
    _, token = await new_link(client, org, drill["id"])
    wrong = {"codePin": wrong_pin(drill["codePin"])}
    for _ in range(5):  # pin_max_failures defaults to 5
        assert_problem(
            await client.patch(f"{PROVIDER}/{token}/check-in", json=wrong), 422, "codePin"
        )
    r = await client.patch(f"{PROVIDER}/{token}/check-in", json={"codePin": drill["codePin"]})
    assert_problem(r, 429)
    assert "retry-after" in r.headers
    # The intervention's limit is shared with the mobile app.
    body = {"interventionId": drill["id"], "codePin": drill["codePin"]}
    assert_problem(
        await client.patch(f"{MB}/check-in", json=body, headers=org.manager.headers), 429
    )


# --- creation: roles, tenancy, validation ---------------------------------------------------


async def test_creation_refusals(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    other: Org = await factory.org()
    drill = await assigned_drill(client, org)
    theirs = await assigned_drill(client, other)
    url = links_url(drill["id"])

    assert_problem(await client.post(url, json={}, headers=org.viewer.headers), 403)
    assert_problem(await client.get(url, headers=org.viewer.headers), 403)
    assert_problem(await client.post(url, json={}), 401)
    # Another organisation's intervention is one that does not exist.
    for path in (links_url(theirs["id"]), links_url(2_000_000_001)):
        assert_problem(await client.post(path, json={}, headers=org.admin.headers), 404)
        assert_problem(await client.get(path, headers=org.admin.headers), 404)
    their_link, _ = await new_link(client, other, theirs["id"])
    r = await client.delete(f"{url}/{their_link['id']}", headers=org.admin.headers)
    assert_problem(r, 404)
    r = await client.delete(
        f"{links_url(theirs['id'])}/{their_link['id']}", headers=org.admin.headers
    )
    assert_problem(r, 404)
    # A link of another intervention of the same organisation is not this one's.
    second = await assigned_drill(client, org)
    link, _ = await new_link(client, org, second["id"])
    assert_problem(await client.delete(f"{url}/{link['id']}", headers=org.admin.headers), 404)

    unassigned = await assigned_drill(client, org, contact=None)
    r = await client.post(links_url(unassigned["id"]), json={}, headers=org.admin.headers)
    assert_problem(r, 422, "assignedCompanyContactId")

    for expires in (at(-dt.timedelta(minutes=1)), at(dt.timedelta(days=91))):
        r = await client.post(url, json={"expiresAt": expires}, headers=org.admin.headers)
        assert_problem(r, 422, "expiresAt")
    for body in ({"expiresAt": "tomorrow"}, {"token": "x"}, {"expiresAt": 3}):
        assert_problem(await client.post(url, json=body, headers=org.admin.headers), 400)
    chosen = at(dt.timedelta(days=30))
    created, _ = await new_link(client, org, drill["id"], expiresAt=chosen)
    assert created["expiresAt"] == chosen
    # No body at all: the default expiry.
    r = await client.post(url, headers=org.admin.headers)
    assert r.status_code == 201, r.text

    cancelled = await assigned_drill(client, org)
    assert (
        await client.delete(f"{RS}/{cancelled['id']}", headers=org.admin.headers)
    ).status_code == 204
    assert_problem(
        await client.post(links_url(cancelled["id"]), json={}, headers=org.admin.headers), 409
    )

    # An overdue intervention's link works a week from now, not a week after its end.
    body = {
        "scheduledStart": at(-dt.timedelta(days=20)),
        "scheduledEnd": at(-dt.timedelta(days=19)),
    }
    ok(await client.patch(f"{TRAINING}/{drill['id']}", json=body, headers=org.admin.headers))
    late, _ = await new_link(client, org, drill["id"])
    expires = dt.datetime.fromisoformat(late["expiresAt"].replace("Z", "+00:00"))
    assert dt.timedelta(days=6, hours=23) < expires - utcnow() <= dt.timedelta(days=7)


# --- the token opens nothing else -----------------------------------------------------------


async def test_the_token_works_on_no_other_endpoint(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    drill = await assigned_drill(client, org)
    _, token = await new_link(client, org, drill["id"])
    iid = drill["id"]
    as_credentials = [
        {"Authorization": f"Bearer {token}", "x-session-token": token},
        {"Authorization": f"Bearer {token}"},
        {"x-session-token": token},
    ]
    for headers in as_credentials:
        for method, path, body in [
            ("GET", RS, None),
            ("GET", f"{RS}/{iid}", None),
            ("PATCH", f"{RS}/{iid}/verify", {"decision": 1, "decisionComment": "ok"}),
            ("DELETE", f"{RS}/{iid}", None),
            ("PATCH", f"{MB}/check-in", {"interventionId": iid, "codePin": drill["codePin"]}),
            ("POST", links_url(iid), {}),
            ("GET", links_url(iid), None),
            ("POST", f"{RS}/{iid}/emails/informations", {"email": "a@example.org"}),
            ("GET", "/notifications/v1/rs", None),
            ("GET", "/organizations/v1/rs/current", None),
            ("GET", "/sites/v1/rs", None),
            ("GET", "/profiles/v1/rs", None),
            ("GET", "/auth/v1/rs/me", None),
        ]:
            r = await client.request(method, path, json=body, headers=headers)
            assert_problem(r, 401)
    # Other paths under the link: nothing.
    for method, path in [
        ("PATCH", f"{PROVIDER}/{token}/verify"),
        ("GET", f"{PROVIDER}/{token}/history"),
        ("POST", f"{PROVIDER}/{token}/provider-links"),
        ("GET", f"{PROVIDER}/{token}/{iid}"),
        ("GET", f"{PROVIDER}/{iid}"),
    ]:
        r = await client.request(method, path, json={})
        assert r.status_code in (404, 405), f"{method} {path}: {r.status_code}"
    for method in ("DELETE", "POST", "PUT"):
        r = await client.request(method, f"{PROVIDER}/{token}", json={})
        assert r.status_code == 405, f"{method}: {r.status_code}"
    # The provider's check-in body has no intervention to choose.
    r = await client.patch(
        f"{PROVIDER}/{token}/check-in", json={"codePin": drill["codePin"], "interventionId": iid}
    )
    assert_problem(r, 400, "interventionId")
    r = await client.patch(f"{PROVIDER}/{token}/execute", json=execution(interventionId=iid))
    assert_problem(r, 400, "interventionId")
    assert ok(await client.get(f"{RS}/{iid}", headers=org.admin.headers))["status"] == 2


# --- the information e-mail -----------------------------------------------------------------


async def information_emails(database: Database, intervention_id: int) -> list[Any]:
    async with database.reader() as s:
        rows = await s.execute(
            select(OutboxEmail)
            .where(
                OutboxEmail.intervention_id == intervention_id,
                OutboxEmail.kind == "intervention.information",
            )
            .order_by(OutboxEmail.id)
        )
        return list(rows.scalars())


async def test_the_information_email_carries_a_link_when_asked(
    client: httpx.AsyncClient, factory: Any, database: Database
) -> None:
    org: Org = await factory.org()
    drill = await assigned_drill(client, org)
    url = f"{RS}/{drill['id']}/emails/informations"

    r = await client.post(
        url, json={"email": "link-tech@provider.example"}, headers=org.admin.headers
    )
    assert r.status_code == 204, r.text
    r = await client.post(
        url,
        json={"email": "link-tech@provider.example", "providerLink": True},
        headers=org.admin.headers,
    )
    assert r.status_code == 204, r.text
    plain, linked = await information_emails(database, drill["id"])
    assert PROVIDER not in plain.body
    found = re.search(r"(http://testserver/provider/v1/[A-Za-z0-9_-]{43})\n", linked.body)
    assert found is not None, linked.body
    token = found.group(1).rsplit("/", 1)[1]
    assert ok(await client.get(f"{PROVIDER}/{token}"))["id"] == drill["id"]
    links = ok(await client.get(links_url(drill["id"]), headers=org.admin.headers))
    assert len(links) == 1
    detail = ok(await client.get(f"{RS}/{drill['id']}", headers=org.admin.headers))
    sent = [h for h in detail["history"] if h["action"] == "information-email"]
    assert sent[0]["changes"] == {"recipient": "link-tech@provider.example"}
    assert sent[1]["changes"] == {
        "recipient": "link-tech@provider.example",
        "providerLinkId": links[0]["id"],
    }

    unassigned = await assigned_drill(client, org, contact=None)
    r = await client.post(
        f"{RS}/{unassigned['id']}/emails/informations",
        json={"email": "link-tech@provider.example", "providerLink": True},
        headers=org.admin.headers,
    )
    assert_problem(r, 422, "providerLink")
    assert await information_emails(database, unassigned["id"]) == []
    r = await client.post(
        url,
        json={"email": "link-tech@provider.example", "providerLink": "yes"},
        headers=org.admin.headers,
    )
    assert_problem(r, 400, "providerLink")
