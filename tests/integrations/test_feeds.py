"""Calendar feeds (issue 12, item 6): managing them over HTTP, and reading them as a calendar
app does — with no headers — every answer parsed by the real ``icalendar`` parser.

Each organisation (``factory.org()``) has three sites, two contacts and three members; the
interventions below are scheduled around now, inside the feed's window.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx
import pytest
from icalendar import Calendar
from sqlalchemy import select, update

from interventions.app import create_app
from interventions.config import Settings
from interventions.db import Database, utcnow
from interventions.integrations.models import CalendarFeed
from interventions.wire import format_datetime
from tests.factories import Factory, Org
from tests.helpers import CURATIVE, RS, TRAINING, assert_problem, intervention_url, ok

FEEDS = "/integrations/v1/rs/calendar-feeds"
URL = re.compile(r"^http://testserver/integrations/v1/calendar/([A-Za-z0-9_-]{43})\.ics$")


def _at(days: float, hours: float = 0) -> str:
    """Whole seconds, as iCalendar's date-times are."""
    now = utcnow().replace(microsecond=0)
    return format_datetime(now + dt.timedelta(days=days, hours=hours))


async def drill(
    client: httpx.AsyncClient,
    org: Org,
    *,
    site: int,
    days: float = 3,
    contact: int | None = None,
    profile: int | None = None,
    creation_status: int = 1,
) -> dict[str, Any]:
    """A training exercise on ``site``, ``days`` from now, for an hour."""
    body: dict[str, Any] = {
        "scheduledStart": _at(days),
        "scheduledEnd": _at(days, 1),
        "ruleId": org.training_rule_id,
        "siteIds": [site],
        "creationStatus": creation_status,
        "description": "Evacuation drill",
    }
    if contact is not None:
        body["assignedCompanyContactId"] = contact
    if profile is not None:
        body["assignedProfileId"] = profile
    data: dict[str, Any] = ok(
        await client.post(TRAINING, json=body, headers=org.admin.headers), 201
    )
    return data


async def new_feed(
    client: httpx.AsyncClient, org: Org, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[dict[str, Any], str]:
    """A feed and the path of its URL."""
    data = ok(await client.post(FEEDS, json=body, headers=headers or org.admin.headers), 201)
    match = URL.match(data["url"])
    assert match, data["url"]
    return data, data["url"].removeprefix("http://testserver")


async def read(client: httpx.AsyncClient, path: str) -> Calendar:
    """The feed, as a calendar app reads it (no headers), checked against RFC 5545's basics
    and parsed by ``icalendar``."""
    r = await client.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/calendar; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    raw = r.content
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b""), "a line ends without CR"
    lines = raw.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in lines), max(lines, key=len)
    raw.decode("utf-8")
    calendar = Calendar.from_ical(raw)
    assert calendar.name == "VCALENDAR"
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["PRODID"])
    assert str(calendar["X-WR-CALNAME"])
    for event in calendar.walk("VEVENT"):
        for member in ("UID", "DTSTAMP", "DTSTART", "SUMMARY", "SEQUENCE", "STATUS"):
            assert member in event, member
    return calendar


def events(calendar: Calendar) -> dict[int, Any]:
    """The events by intervention id (from their UID)."""
    found = {}
    for event in calendar.walk("VEVENT"):
        match = re.fullmatch(r"intervention-(\d+)@(.+)", str(event["UID"]))
        assert match, event["UID"]
        found[int(match.group(1))] = event
    return found


# --- reading a feed ---------------------------------------------------------------------------


async def test_a_site_feed_shows_that_sites_interventions_only(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    here = [await drill(client, org, site=org.site_ids[0], days=d) for d in (1, 2)]
    elsewhere = await drill(client, org, site=org.site_ids[1])
    # A curative intervention is on its anomaly's site (anomaly 0 is on site 0).
    curative = ok(
        await client.post(
            CURATIVE,
            json={
                "scheduledStart": _at(5),
                "scheduledEnd": _at(5, 2),
                "anomalyIds": [org.anomaly_ids[0]],
                "creationStatus": 1,
            },
            headers=org.admin.headers,
        ),
        201,
    )
    other = await factory.org()
    await drill(client, other, site=other.site_ids[0])
    feed, path = await new_feed(client, org, {"scope": "site", "siteId": org.site_ids[0]})
    assert feed["scope"] == "site"
    assert feed["siteId"] == org.site_ids[0]
    assert feed["name"] == "Interventions: Site 0"
    shown = events(await read(client, path))
    assert set(shown) == {here[0]["id"], here[1]["id"], curative["id"]}
    assert elsewhere["id"] not in shown
    event = shown[here[0]["id"]]
    assert event.decoded("DTSTART") == dt.datetime.fromisoformat(here[0]["scheduledStart"])
    assert event.decoded("DTEND") == dt.datetime.fromisoformat(here[0]["scheduledEnd"])
    assert str(event["SUMMARY"]) == "Training exercise: Evacuation drill"
    assert str(event["LOCATION"]) == "Site 0"
    assert str(event["STATUS"]) == "CONFIRMED"
    assert "Status: scheduled" in str(event["DESCRIPTION"])
    assert str(shown[curative["id"]]["SUMMARY"]) == "Curative: Anomaly 0"


async def test_a_user_feed_and_a_contact_feed_show_their_assignees_only(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    site = org.site_ids[0]
    mine = await drill(client, org, site=site, profile=org.manager.profile_id)
    theirs = await drill(client, org, site=site, profile=org.admin.profile_id)
    provided = await drill(client, org, site=site, contact=org.contact_ids[1])
    _, user_path = await new_feed(client, org, {"scope": "user", "userId": org.manager.user_id})
    assert set(events(await read(client, user_path))) == {mine["id"]}
    feed, contact_path = await new_feed(
        client, org, {"scope": "contact", "companyContactId": org.contact_ids[1]}
    )
    assert feed["name"] == "Interventions: Contact 1 (Company 1)"
    assert set(events(await read(client, contact_path))) == {provided["id"]}
    assert theirs["id"] not in events(await read(client, user_path))


async def test_uid_is_stable_and_sequence_counts_the_changes(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    planned = await drill(client, org, site=org.site_ids[0], profile=org.admin.profile_id)
    _, path = await new_feed(client, org, {"scope": "user", "userId": org.admin.user_id})
    first = events(await read(client, path))[planned["id"]]
    again = events(await read(client, path))[planned["id"]]
    assert (
        str(first["UID"])
        == str(again["UID"])
        == f"intervention-{planned['id']}@interventions.invalid"
    )
    assert first.to_ical() == again.to_ical()  # nothing changed, nothing differs
    assert int(first["SEQUENCE"]) == 0
    r = await client.patch(
        f"{TRAINING}/{planned['id']}",
        json={"description": "Moved", "scheduledStart": _at(4), "scheduledEnd": _at(4, 1)},
        headers=org.admin.headers,
    )
    changed = ok(r)
    after = events(await read(client, path))[planned["id"]]
    assert str(after["UID"]) == str(first["UID"])
    assert int(after["SEQUENCE"]) == 1
    assert after.decoded("DTSTART") == dt.datetime.fromisoformat(changed["scheduledStart"])
    assert after.decoded("LAST-MODIFIED") >= first.decoded("LAST-MODIFIED")
    assert "Moved" in str(after["DESCRIPTION"])
    r = await client.patch(
        f"{TRAINING}/{planned['id']}", json={"description": "Again"}, headers=org.admin.headers
    )
    ok(r)
    assert int(events(await read(client, path))[planned["id"]]["SEQUENCE"]) == 2


async def test_cancelled_and_unscheduled_interventions_keep_their_event(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    site = org.site_ids[0]
    cancelled = await drill(client, org, site=site)
    to_schedule = await drill(client, org, site=site, creation_status=0)
    r = await client.request(
        "DELETE",
        intervention_url(cancelled["id"]),
        json={"cancellationReason": "Site closed"},
        headers=org.admin.headers,
    )
    assert r.status_code == 204, r.text
    _, path = await new_feed(client, org, {"scope": "site", "siteId": site})
    shown = events(await read(client, path))
    event = shown[cancelled["id"]]
    assert str(event["STATUS"]) == "CANCELLED"
    assert int(event["SEQUENCE"]) == 1
    assert "Cancelled: Site closed" in str(event["DESCRIPTION"])
    assert str(shown[to_schedule["id"]]["STATUS"]) == "TENTATIVE"


async def test_the_window_and_the_cap_bound_the_feed(
    client: httpx.AsyncClient, factory: Factory, settings: Settings, database: Database
) -> None:
    org = await factory.org()
    site = org.site_ids[0]
    soon = [await drill(client, org, site=site, days=d) for d in (-80, 1, 2, 300)]
    await drill(client, org, site=site, days=-100)  # ended before the window
    await drill(client, org, site=site, days=400)  # after it
    _, path = await new_feed(client, org, {"scope": "site", "siteId": site})
    assert set(events(await read(client, path))) == {i["id"] for i in soon}
    capped = create_app(settings.model_copy(update={"calendar_feed_max_events": 2}), database)
    transport = httpx.ASGITransport(app=capped)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        assert set(events(await read(c, path))) == {soon[0]["id"], soon[1]["id"]}


async def test_the_pin_is_never_in_a_feed(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    planned = await drill(client, org, site=org.site_ids[0], profile=org.admin.profile_id)
    for body in (
        {"scope": "user", "userId": org.admin.user_id},
        {"scope": "site", "siteId": org.site_ids[0]},
    ):
        _, path = await new_feed(client, org, body)
        r = await client.get(path)
        assert str(planned["codePin"]) not in r.text
        assert planned["id"] in events(await read(client, path))


async def test_unknown_rotated_and_revoked_tokens_are_the_same_404(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    feed, old = await new_feed(client, org, {"scope": "site", "siteId": org.site_ids[0]})
    await read(client, old)
    rotated = ok(await client.post(f"{FEEDS}/{feed['id']}/rotate", headers=org.admin.headers))
    assert rotated["rotatedAt"] is not None
    new = rotated["url"].removeprefix("http://testserver")
    assert URL.match(rotated["url"])
    assert new != old
    await read(client, new)
    unknown = old[:-20] + "A" * 16 + ".ics"
    answers = []
    for path in (old, unknown):
        problem = assert_problem(await client.get(path), 404)
        answers.append((problem["title"], problem["detail"]))
    r = await client.delete(f"{FEEDS}/{feed['id']}", headers=org.admin.headers)
    assert r.status_code == 204, r.text
    problem = assert_problem(await client.get(new), 404)
    answers.append((problem["title"], problem["detail"]))
    assert len(set(answers)) == 1  # nothing tells them apart
    # A revoked feed takes no more changes.
    assert_problem(
        await client.post(f"{FEEDS}/{feed['id']}/rotate", headers=org.admin.headers), 409
    )
    assert_problem(await client.delete(f"{FEEDS}/{feed['id']}", headers=org.admin.headers), 409)
    assert_problem(await client.get(new), 404)


async def test_a_feed_ends_with_its_subject(client: httpx.AsyncClient, factory: Factory) -> None:
    """A member who leaves, an archived site: their feeds answer nothing any more."""
    org = await factory.org()
    member = await factory.member(org.id, "manager")
    _, user_path = await new_feed(client, org, {"scope": "user", "userId": member.user_id})
    _, site_path = await new_feed(client, org, {"scope": "site", "siteId": org.site_ids[2]})
    _, contact_path = await new_feed(
        client, org, {"scope": "contact", "companyContactId": org.contact_ids[0]}
    )
    for path in (user_path, site_path, contact_path):
        await read(client, path)
    for resource in (
        f"/profiles/v1/rs/{member.profile_id}",
        f"/sites/v1/rs/{org.site_ids[2]}",
        f"/company-contacts/v1/rs/{org.contact_ids[0]}",
    ):
        r = await client.delete(resource, headers=org.admin.headers)
        assert r.status_code == 204, r.text
    for path in (user_path, site_path, contact_path):
        assert_problem(await client.get(path), 404)


async def test_last_use_is_recorded_at_most_once_a_minute(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    feed, path = await new_feed(client, org, {"scope": "site", "siteId": org.site_ids[0]})
    assert feed["lastUsedAt"] is None

    async def last_used() -> dt.datetime | None:
        async with factory.db.reader() as s:
            value: dt.datetime | None = (
                await s.execute(
                    select(CalendarFeed.last_used_at).where(CalendarFeed.id == feed["id"])
                )
            ).scalar_one()
        return value

    before = utcnow()
    await read(client, path)
    first = await last_used()
    assert first is not None
    assert before <= first <= utcnow()
    await read(client, path)
    assert await last_used() == first  # within the minute: no write
    listed = ok(await client.get(FEEDS, headers=org.admin.headers))
    assert listed[0]["lastUsedAt"] == format_datetime(first)
    async with factory.db.writer() as s, s.begin():
        await s.execute(
            update(CalendarFeed)
            .where(CalendarFeed.id == feed["id"])
            .values(last_used_at=first - dt.timedelta(minutes=2))
        )
    await read(client, path)
    later = await last_used()
    assert later is not None
    assert later > first - dt.timedelta(minutes=2)
    assert later >= first


# --- managing feeds ----------------------------------------------------------------------------


async def test_another_organisations_or_unknown_ids_are_422(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()
    for body, field in (
        ({"scope": "site", "siteId": other.site_ids[0]}, "siteId"),
        ({"scope": "user", "userId": other.admin.user_id}, "userId"),
        ({"scope": "contact", "companyContactId": other.contact_ids[0]}, "companyContactId"),
        ({"scope": "site", "siteId": 2_000_000_001}, "siteId"),
    ):
        problem = assert_problem(
            await client.post(FEEDS, json=body, headers=org.admin.headers), 422
        )
        assert [e["field"] for e in problem["errors"]] == [field]
        assert problem["errors"][0]["message"].startswith("Unknown ")
    assert ok(await client.get(FEEDS, headers=org.admin.headers)) == []


async def test_bad_bodies_are_400_naming_their_fields(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    h = org.admin.headers
    for body, fields in (
        ({}, {"scope"}),
        ({"scope": "site"}, {"siteId"}),
        ({"scope": "planet", "siteId": 1}, {"scope"}),
        ({"scope": "site", "siteId": "1"}, {"siteId"}),
        ({"scope": "contact", "companyContactId": 1.5}, {"companyContactId"}),
        ({"scope": "site", "siteId": 1, "userId": 1}, {"userId"}),
        ({"scope": "user", "userId": 1, "name": ""}, {"name"}),
    ):
        problem = assert_problem(await client.post(FEEDS, json=body, headers=h), 400)
        assert {e["field"] for e in problem["errors"]} == fields, body
    assert_problem(await client.post(FEEDS, json={"scope": "site", "siteId": 1}), 401)
    assert ok(await client.get(FEEDS, headers=h)) == []


async def test_another_organisations_feed_is_404(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    other = await factory.org()
    feed, path = await new_feed(client, other, {"scope": "site", "siteId": other.site_ids[0]})
    h = org.admin.headers
    assert_problem(await client.post(f"{FEEDS}/{feed['id']}/rotate", headers=h), 404)
    assert_problem(await client.delete(f"{FEEDS}/{feed['id']}", headers=h), 404)
    assert ok(await client.get(f"{FEEDS}?includeRevoked=true", headers=h)) == []
    await read(client, path)  # untouched


async def test_the_list_never_shows_a_token(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    feed, path = await new_feed(
        client, org, {"scope": "site", "siteId": org.site_ids[1], "name": "Bâtiment B"}
    )
    r = await client.get(FEEDS, headers=org.admin.headers)
    listed = ok(r)
    token = path.rsplit("/", 1)[1].removesuffix(".ics")
    assert token not in r.text
    assert "url" not in listed[0]
    assert {k: v for k, v in feed.items() if k != "url"} == listed[0]
    assert listed[0]["name"] == "Bâtiment B"
    assert listed[0]["createdByProfileId"] == org.admin.profile_id
    calendar = await read(client, path)
    assert str(calendar["X-WR-CALNAME"]) == "Bâtiment B"
    async with factory.db.reader() as s:
        stored = (
            await s.execute(select(CalendarFeed.token_hash).where(CalendarFeed.id == feed["id"]))
        ).scalar_one()
    assert token not in stored
    assert len(stored) == 64
    r = await client.delete(f"{FEEDS}/{feed['id']}", headers=org.admin.headers)
    assert r.status_code == 204
    assert ok(await client.get(FEEDS, headers=org.admin.headers)) == []
    revoked = ok(await client.get(f"{FEEDS}?includeRevoked=true", headers=org.admin.headers))
    assert [f["id"] for f in revoked] == [feed["id"]]
    assert revoked[0]["revokedAt"] is not None


@pytest.mark.parametrize("role", ["viewer"])
async def test_a_viewer_manages_the_feeds_of_their_own_interventions_only(
    client: httpx.AsyncClient, factory: Factory, role: str
) -> None:
    org = await factory.org()
    viewer = org.viewer
    for body in (
        {"scope": "site", "siteId": org.site_ids[0]},
        {"scope": "contact", "companyContactId": org.contact_ids[0]},
        {"scope": "user", "userId": org.admin.user_id},
    ):
        assert_problem(await client.post(FEEDS, json=body, headers=viewer.headers), 403)
    own, path = await new_feed(
        client, org, {"scope": "user", "userId": viewer.user_id}, headers=viewer.headers
    )
    assert own["profileId"] == viewer.profile_id
    assert own["userId"] == viewer.user_id
    await read(client, path)
    site_feed, _ = await new_feed(client, org, {"scope": "site", "siteId": org.site_ids[0]})
    # An admin may make the viewer's feed too: it is theirs to manage.
    for_them, _ = await new_feed(client, org, {"scope": "user", "userId": viewer.user_id})
    seen = ok(await client.get(FEEDS, headers=viewer.headers))
    assert [f["id"] for f in seen] == [own["id"], for_them["id"]]
    everything = ok(await client.get(FEEDS, headers=org.manager.headers))
    assert [f["id"] for f in everything] == [own["id"], site_feed["id"], for_them["id"]]
    h = viewer.headers
    assert_problem(await client.post(f"{FEEDS}/{site_feed['id']}/rotate", headers=h), 403)
    assert_problem(await client.delete(f"{FEEDS}/{site_feed['id']}", headers=h), 403)
    rotated = ok(await client.post(f"{FEEDS}/{for_them['id']}/rotate", headers=h))
    assert URL.match(rotated["url"])
    r = await client.delete(f"{FEEDS}/{own['id']}", headers=h)
    assert r.status_code == 204, r.text
    assert_problem(await client.get(path), 404)
    # A manager manages every feed.
    r = await client.delete(f"{FEEDS}/{for_them['id']}", headers=org.manager.headers)
    assert r.status_code == 204, r.text


async def test_the_feed_url_follows_the_configured_public_url(
    factory: Factory, settings: Settings, database: Database
) -> None:
    org = await factory.org()
    public = settings.model_copy(update={"public_url": "https://calendar.example.org/base/"})
    transport = httpx.ASGITransport(app=create_app(public, database))
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as c:
        await drill(c, org, site=org.site_ids[0])
        data = ok(
            await c.post(
                FEEDS, json={"scope": "site", "siteId": org.site_ids[0]}, headers=org.admin.headers
            ),
            201,
        )
        assert re.fullmatch(
            r"https://calendar\.example\.org/base/integrations/v1/calendar/[\w-]{43}\.ics",
            data["url"],
        )
        token = data["url"].rsplit("/", 1)[1]
        calendar = await read(c, f"/integrations/v1/calendar/{token}")
        uids = [str(e["UID"]) for e in calendar.walk("VEVENT")]
        assert uids
        assert all(u.endswith("@calendar.example.org") for u in uids)


async def test_the_detail_keeps_its_route(client: httpx.AsyncClient, factory: Factory) -> None:
    """The feeds' routes take nothing from the interventions' (``RS`` is untouched)."""
    org = await factory.org()
    planned = await drill(client, org, site=org.site_ids[0])
    assert ok(await client.get(f"{RS}/{planned['id']}", headers=org.viewer.headers))["id"]
