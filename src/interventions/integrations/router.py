"""``/integrations/v1/rs/calendar-feeds``: managing the organisation's calendar feeds;
``/integrations/v1/calendar/{token}.ics``: a feed, as calendar apps read it (no headers:
they cannot send any; the token in the path is the credential)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from interventions.auth.dependencies import CurrentCaller
from interventions.config import AppSettings
from interventions.db import AppDatabase
from interventions.handlers import LeanRoute
from interventions.integrations import feeds
from interventions.integrations.schemas import (
    CalendarFeedCreate,
    CalendarFeedRead,
    CalendarFeedWithUrl,
)
from interventions.openapi import errors_for
from interventions.references.paging import Paging, listed
from interventions.transactions import RequestDb
from interventions.wire import MAX_SAFE_INTEGER, Envelope, ListEnvelope

router = APIRouter(route_class=LeanRoute, prefix="/integrations/v1", tags=["integrations"])

FeedId = Annotated[
    int,
    Path(
        alias="feedId",
        description="Unique identifier of the calendar feed.",
        ge=-MAX_SAFE_INTEGER,
        le=MAX_SAFE_INTEGER,
    ),
]
ROLES = (
    "Admins and managers manage every feed of the organisation; a viewer, only the feeds of "
    "their own interventions (scope `user`, their own user id): 403 otherwise."
)


def _base_url(settings: AppSettings, request: Request) -> str:
    return settings.public_url or str(request.base_url)


@router.post(
    "/rs/calendar-feeds",
    operation_id="createCalendarFeed",
    status_code=201,
    response_model=Envelope[CalendarFeedWithUrl],
    responses=errors_for(400, 403, 413, 415, 422),
    summary="Create a calendar feed: a secret URL to subscribe to in a calendar app",
    description=(
        "The feed shows, as RFC 5545 events, the interventions of its subject: `user` those "
        "assigned to the member's profile, `site` those on the site, `contact` those assigned "
        "to the company contact. Its `url` holds a random token and is shown in this answer "
        "only (and at each rotation); only a hash of the token is kept. An id that is not "
        f"the organisation's is a 422. {ROLES}"
    ),
)
async def create_calendar_feed(
    body: CalendarFeedCreate,
    caller: CurrentCaller,
    db: RequestDb,
    settings: AppSettings,
    request: Request,
) -> Envelope[CalendarFeedWithUrl]:
    created = await feeds.create(
        await db.executor(), caller, body, base_url=_base_url(settings, request)
    )
    return Envelope(data=created)


@router.get(
    "/rs/calendar-feeds",
    operation_id="listCalendarFeeds",
    response_model=ListEnvelope[CalendarFeedRead],
    responses=errors_for(400),
    summary="List the organisation's calendar feeds (never their tokens)",
    description=(
        "By id. A viewer sees the feeds of their own interventions only. Revoked feeds are "
        "left out unless `includeRevoked=true`."
    ),
)
async def list_calendar_feeds(
    caller: CurrentCaller,
    db: RequestDb,
    paging: Paging,
    include_revoked: Annotated[bool, Query(alias="includeRevoked")] = False,
) -> ListEnvelope[CalendarFeedRead]:
    found = await feeds.list_feeds(
        await db.executor(),
        caller,
        include_revoked=include_revoked,
        page=paging.page,
        page_size=paging.size,
    )
    return listed(paging, found)


@router.post(
    "/rs/calendar-feeds/{feedId}/rotate",
    operation_id="rotateCalendarFeed",
    response_model=Envelope[CalendarFeedWithUrl],
    responses=errors_for(400, 403, 404, 409),
    summary="Give a calendar feed a new secret URL: the old one stops working at once",
    description=f"A revoked feed is a 409. {ROLES}",
)
async def rotate_calendar_feed(
    feed_id: FeedId,
    caller: CurrentCaller,
    db: RequestDb,
    settings: AppSettings,
    request: Request,
) -> Envelope[CalendarFeedWithUrl]:
    rotated = await feeds.rotate(
        await db.executor(), caller, feed_id, base_url=_base_url(settings, request)
    )
    return Envelope(data=rotated)


@router.delete(
    "/rs/calendar-feeds/{feedId}",
    operation_id="revokeCalendarFeed",
    status_code=204,
    responses=errors_for(400, 403, 404, 409),
    summary="Revoke a calendar feed: its URL stops working at once",
    description=f"The feed stays listed with `revokedAt`; revoking it again is a 409. {ROLES}",
)
async def revoke_calendar_feed(feed_id: FeedId, caller: CurrentCaller, db: RequestDb) -> Response:
    await feeds.revoke(await db.executor(), caller, feed_id)
    return Response(status_code=204)


CALENDAR = "text/calendar; charset=utf-8"


@router.get(
    "/calendar/{token}.ics",
    operation_id="readCalendarFeed",
    response_class=Response,
    responses={
        200: {
            "description": "The feed, an RFC 5545 iCalendar document.",
            "content": {"text/calendar": {"schema": {"type": "string"}}},
        },
        **errors_for(400, 404, auth=False),
    },
    summary="A calendar feed, as calendar apps read it (the token is the credential)",
    description=(
        "No headers needed. One VEVENT per intervention of the feed's subject scheduled from "
        "90 days ago to 365 days ahead (`INTERVENTIONS_CALENDAR_FEED_PAST_DAYS`, "
        "`…_FUTURE_DAYS`), the earliest first, at most 1000 (`…_MAX_EVENTS`). Its UID "
        "(`intervention-{id}@{domain}`) never changes; SEQUENCE counts the intervention's "
        "changes; a cancelled intervention is a `STATUS:CANCELLED` event. An unknown, "
        "rotated or revoked token is a 404, as is a feed whose subject is gone."
    ),
)
async def read_calendar_feed(
    token: Annotated[str, Path(description="The feed's secret token.")],
    db: RequestDb,
    database: AppDatabase,
    settings: AppSettings,
) -> Response:
    document = await feeds.read(await db.executor(), database, settings, token)
    # The URL is a credential: no shared cache keeps the answer, so that a rotation or a
    # revocation bites at once.
    return Response(document, media_type=CALENDAR, headers={"Cache-Control": "no-store"})
