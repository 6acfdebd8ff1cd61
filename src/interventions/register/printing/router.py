"""``GET /register/v1/rs/sites/{siteId}`` (the register) and ``…/commission-pack``: PDF/A-2b by
default, HTML with ``format=html`` or ``Accept: text/html``. Any role of the organisation
may read them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.types import Receive, Scope, Send

from interventions.auth.dependencies import CurrentCaller
from interventions.config import AppSettings
from interventions.db import AppDatabase
from interventions.handlers import LeanRoute
from interventions.openapi import errors_for
from interventions.register.printing import service
from interventions.register.printing.coverage import signed_coverage
from interventions.register.printing.service import Format, Printed
from interventions.storage.dependencies import CurrentStorage
from interventions.transactions import RequestDb
from interventions.wire import MAX_SAFE_INTEGER

router = APIRouter(route_class=LeanRoute, prefix="/register/v1/rs", tags=["register"])

SiteId = Annotated[
    int,
    Path(
        alias="siteId",
        ge=-MAX_SAFE_INTEGER,
        le=MAX_SAFE_INTEGER,
        description="The site whose register is printed.",
    ),
]
FormatQuery = Annotated[
    Format | None,
    Query(
        alias="format",
        description="`pdf` (PDF/A-2b, the default) or `html`. Without it, "
        "`Accept: text/html` (and no `application/pdf`) asks for HTML.",
    ),
]
DOCUMENT = {
    200: {
        "description": "The document: PDF/A-2b (fonts embedded; every page's footer gives "
        "the journal position, the checkpoint covering it and its verification URL as text "
        "and QR code), or the same content as one HTML page.",
        "content": {
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            "text/html": {"schema": {"type": "string"}},
        },
    },
    **errors_for(400, 404),
}


def _format(request: Request, asked: Format | None) -> Format:
    if asked is not None:
        return asked
    accept = request.headers.get("accept", "").lower()
    if "text/html" in accept and "application/pdf" not in accept:
        return Format.HTML
    return Format.PDF


def _base_url(settings: AppSettings, request: Request) -> str:
    return settings.public_url or str(request.base_url)


def _answer(printed: Printed) -> Response:
    headers = {
        "Content-Disposition": f'inline; filename="{printed.filename}"',
        "Cache-Control": "private, no-store",
    }
    if isinstance(printed.body, bytes):
        return Response(printed.body, media_type=printed.media_type, headers=headers)
    return _PrintedFile(printed, headers)


class _PrintedFile(FileResponse):
    """The PDF sent from its file in chunks, its temporary folder removed once sent, or once
    the sending stopped (the client gone): not a background task, which an error skips."""

    def __init__(self, printed: Printed, headers: dict[str, str]) -> None:
        assert not isinstance(printed.body, bytes)
        super().__init__(printed.body, media_type=printed.media_type, headers=headers)
        self.printed = printed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.printed.discard()


@router.get(
    "/sites/{siteId}",
    operation_id="printSiteRegister",
    response_class=Response,
    responses=DOCUMENT,
    summary="Print a site's safety register for a period",
    description=(
        "In the order of CCH R*143-44: the site and organisation; for each rule its checks "
        "(date, provider company and person, outcome, observations raised, signature); "
        "curative works (dates, nature, contractor, anomalies lifted); drills (date, "
        "attendees, comments); observations still open (risk, age); checks overdue against "
        "their routine (an occurrence whose scheduled end passed without execution, or a "
        "routine whose last executed check is older than its period). The same data and "
        "checkpoint give the same bytes. `from` after `to` is a 400."
    ),
)
async def print_register(
    request: Request,
    site_id: SiteId,
    caller: CurrentCaller,
    db: RequestDb,
    storage: CurrentStorage,
    settings: AppSettings,
    database: AppDatabase,
    start: Annotated[
        dt.date | None,
        Query(alias="from", description="First day (default: a year before `to`, plus a day)."),
    ] = None,
    end: Annotated[
        dt.date | None, Query(alias="to", description="Last day, included (default: today).")
    ] = None,
    fmt: FormatQuery = None,
) -> Response:
    covered = await signed_coverage(database, settings, caller.organization_id, site_id)
    printed = await service.print_register(
        await db.executor(),
        storage,
        organization_id=caller.organization_id,
        site_id=site_id,
        start=start,
        end=end,
        fmt=_format(request, fmt),
        base_url=_base_url(settings, request),
        covered=covered,
    )
    return _answer(printed)


@router.get(
    "/sites/{siteId}/commission-pack",
    operation_id="printCommissionPack",
    response_class=Response,
    responses=DOCUMENT,
    summary="Print a site's one-page pack for the commission de sécurité",
    description=(
        "As of now: checks overdue, open observations by risk, the last check per rule, the "
        "drills of the last twelve months; one page (long lists end with '… and N more')."
    ),
)
async def print_commission_pack(
    request: Request,
    site_id: SiteId,
    caller: CurrentCaller,
    db: RequestDb,
    storage: CurrentStorage,
    settings: AppSettings,
    database: AppDatabase,
    fmt: FormatQuery = None,
) -> Response:
    covered = await signed_coverage(database, settings, caller.organization_id, site_id)
    printed = await service.print_commission_pack(
        await db.executor(),
        storage,
        organization_id=caller.organization_id,
        site_id=site_id,
        fmt=_format(request, fmt),
        base_url=_base_url(settings, request),
        covered=covered,
    )
    return _answer(printed)
