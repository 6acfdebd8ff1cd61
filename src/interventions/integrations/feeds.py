"""Calendar feeds: the organisation's secret URLs that calendar apps subscribe to, each
showing the interventions of one subject — a member (those assigned to their profile), a
site (those on it) or a company contact (those assigned to the provider).

The token is the credential: 32 random bytes (``secrets.token_urlsafe``), shown once in the
feed's URL when the feed is created or rotated; only its SHA-256 is stored. An unknown,
rotated-away or revoked token, and a feed whose subject is gone (a member who left, an
archived site or contact), all answer the same 404.

Who manages feeds: admins and managers, every feed of the organisation; a viewer, only the
feeds of their own interventions (scope ``user``, themselves).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any
from urllib.parse import urlsplit

from interventions.auth.dependencies import Caller
from interventions.auth.models import display_name
from interventions.config import Settings
from interventions.db import Database, Executor, utcnow
from interventions.errors import Conflict, Forbidden, NotFound
from interventions.integrations import calendar
from interventions.integrations import repository as repo
from interventions.integrations.schemas import (
    CalendarFeedCreate,
    CalendarFeedRead,
    CalendarFeedWithUrl,
    ContactFeedCreate,
    SiteFeedCreate,
    UserFeedCreate,
)
from interventions.references import repository as refs
from interventions.references.models import Site

TOKEN_BYTES = 32
FEED_PATH = "/integrations/v1/calendar/{token}.ics"
# The UIDs' domain when no public URL is configured: fixed, so that a UID never changes
# with the address a feed is read at.
DEFAULT_UID_DOMAIN = "interventions.invalid"
# ``last_used_at`` is recorded to the minute: at most one write a minute per feed, however
# often calendar apps read it.
LAST_USE_PRECISION = dt.timedelta(minutes=1)


class FeedNotFound(NotFound):
    def __init__(self, detail: str = "No calendar feed at this address.") -> None:
        super().__init__(detail)


class FeedRevoked(Conflict):
    def __init__(self, feed_id: int) -> None:
        super().__init__(f"Calendar feed {feed_id} is revoked.")


class NotYourFeed(Forbidden):
    """A viewer manages the feeds of their own interventions only."""


def token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def feed_url(base_url: str, token: str) -> str:
    return base_url.rstrip("/") + FEED_PATH.format(token=token)


def uid_domain(settings: Settings) -> str:
    """The host of the configured public URL, else a fixed domain: never the request's."""
    return urlsplit(settings.public_url).hostname or DEFAULT_UID_DOMAIN


def _read(row: Any) -> CalendarFeedRead:
    return CalendarFeedRead.model_validate(row)


def _with_url(row: Any, url: str) -> CalendarFeedWithUrl:
    return CalendarFeedWithUrl.model_validate({**row._asdict(), "url": url})


async def _subject(db: Executor, caller: Caller, body: Any) -> tuple[dict[str, Any], str]:
    """The feed's subject columns and its default name; 422 for an id that is not the
    organisation's; 403 for a viewer naming anyone but themselves."""
    org = caller.organization_id
    subject: dict[str, Any] = {"profile_id": None, "site_id": None, "company_contact_id": None}
    if not caller.can_write and not (
        isinstance(body, UserFeedCreate) and body.user_id == caller.user_id
    ):
        raise NotYourFeed("A viewer may only create the feed of their own interventions.")
    if isinstance(body, UserFeedCreate):
        profile = await refs.require_profile_of_user(db, org, body.user_id, field="userId")
        user = await repo.user_of_profile(db, org, profile.id)
        subject["profile_id"] = profile.id
        return subject, display_name(user)
    if isinstance(body, SiteFeedCreate):
        sites = await refs.require_all(db, Site, org, [body.site_id], field="siteId", label="site")
        site = sites[body.site_id]
        subject["site_id"] = site.id
        return subject, str(site.name)
    assert isinstance(body, ContactFeedCreate)
    contact = await refs.require_contact(db, org, body.company_contact_id, field="companyContactId")
    names = await repo.contact_name(db, org, contact.id)
    subject["company_contact_id"] = contact.id
    return subject, f"{names.name} ({names.company})"


async def create(
    db: Executor, caller: Caller, body: CalendarFeedCreate, *, base_url: str
) -> CalendarFeedWithUrl:
    """A new feed of the organisation, with its URL (the only time but a rotation that the
    token is shown)."""
    request = body.root
    subject, subject_name = await _subject(db, caller, request)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    feed_id = await repo.insert_feed(
        db,
        caller.organization_id,
        scope=request.scope,
        name=request.name or f"Interventions: {subject_name}"[:250],
        token_hash=token_hash(token),
        created_by_profile_id=caller.profile_id,
        created_at=utcnow(),
        **subject,
    )
    row = await repo.feed(db, caller.organization_id, feed_id, lock=False)
    return _with_url(row, feed_url(base_url, token))


async def list_feeds(
    db: Executor, caller: Caller, *, include_revoked: bool, page: int, page_size: int
) -> tuple[list[CalendarFeedRead], int]:
    """The organisation's feeds (a viewer's: those of their own interventions), by id."""
    rows, total = await repo.feeds_page(
        db,
        caller.organization_id,
        profile_id=None if caller.can_write else caller.profile_id,
        include_revoked=include_revoked,
        page=page,
        page_size=page_size,
    )
    return [_read(r) for r in rows], total


async def _manageable(db: Executor, caller: Caller, feed_id: int) -> Any:
    """The feed, row-locked, if the caller may change it: 404 if not the organisation's,
    403 if a viewer's but not of their own interventions, 409 if revoked."""
    row = await repo.feed(db, caller.organization_id, feed_id, lock=True)
    if row is None:
        raise FeedNotFound(f"No calendar feed {feed_id}.")
    if not caller.can_write and not (row.scope == "user" and row.profile_id == caller.profile_id):
        raise NotYourFeed("A viewer may only manage the feed of their own interventions.")
    if row.revoked_at is not None:
        raise FeedRevoked(feed_id)
    return row


async def rotate(
    db: Executor, caller: Caller, feed_id: int, *, base_url: str
) -> CalendarFeedWithUrl:
    """A new token for the feed: the old URL stops working at once."""
    await _manageable(db, caller, feed_id)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    await repo.rotate(db, caller.organization_id, feed_id, token_hash(token), utcnow())
    row = await repo.feed(db, caller.organization_id, feed_id, lock=False)
    return _with_url(row, feed_url(base_url, token))


async def revoke(db: Executor, caller: Caller, feed_id: int) -> None:
    """The feed stops answering at once; it stays listed (``includeRevoked``)."""
    await _manageable(db, caller, feed_id)
    await repo.revoke(db, caller.organization_id, feed_id, utcnow())


def _subject_id(feed: Any) -> int | None:
    """The feed's subject while it is there (``None``: gone, so the feed answers nothing)."""
    if feed.scope == "user":
        active = feed.active_profile_id is not None and feed.user_disabled_at is None
        return int(feed.profile_id) if active else None
    if feed.scope == "site":
        return None if feed.active_site_id is None else int(feed.site_id)
    return None if feed.active_contact_id is None else int(feed.company_contact_id)


async def read(db: Executor, database: Database, settings: Settings, token: str) -> bytes:
    """The feed of ``token`` as an iCalendar document; 404 for a token that opens none.

    A read records the feed's last use, at most once a minute, in a short transaction of its
    own (the request reading the feed is a read: autocommit on PostgreSQL)."""
    feed = await repo.feed_by_token(db, token_hash(token))
    subject_id = None if feed is None else _subject_id(feed)
    if feed is None or subject_id is None:
        raise FeedNotFound()
    now = utcnow()
    stale_before = now - LAST_USE_PRECISION
    if feed.last_used_at is None or feed.last_used_at < stale_before:
        async with database.transaction() as writer:
            await repo.record_use(writer, feed.organization_id, feed.id, now, stale_before)
    rows = await repo.events(
        db,
        feed.organization_id,
        feed.scope,
        subject_id,
        since=now - dt.timedelta(days=settings.calendar_feed_past_days),
        until=now + dt.timedelta(days=settings.calendar_feed_future_days),
        limit=settings.calendar_feed_max_events,
    )
    names = await repo.names(db, feed.organization_id, [r.id for r in rows])
    occurrences = [
        calendar.Occurrence(
            row=r,
            sites=names[r.id].get("site", []),
            rules=names[r.id].get("rule", []),
            anomalies=names[r.id].get("anomaly", []),
        )
        for r in rows
    ]
    return calendar.document(feed.name, occurrences, uid_domain(settings))
