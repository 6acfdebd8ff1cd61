"""Print a site's register or commission pack: the period, the coverage, the content, the
rendering. Shared by the HTTP routes and the CLI."""

from __future__ import annotations

import datetime as dt
import enum
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from interventions.db import Executor, utcnow
from interventions.errors import BadRequest, NotFound
from interventions.register.printing import content, repository
from interventions.register.printing.coverage import Coverage, coverage, verification_url
from interventions.register.printing.html import render_html_file
from interventions.register.printing.pdf import render_pdf_file
from interventions.register.printing.signatures import SignatureReader
from interventions.storage.service import Storage

REGISTER_TITLE = "Safety register"
PACK_TITLE = "Commission pack"


class Format(enum.StrEnum):
    PDF = "pdf"
    HTML = "html"


MEDIA_TYPES = {Format.PDF: "application/pdf", Format.HTML: "text/html; charset=utf-8"}


@dataclass(frozen=True)
class Printed:
    """A printout: its bytes (HTML), or the file holding them (PDF: sent from there, never
    read whole into the worker; its temporary folder goes with ``discard``)."""

    body: bytes | Path
    media_type: str
    filename: str

    @property
    def size(self) -> int:
        return self.body.stat().st_size if isinstance(self.body, Path) else len(self.body)

    def discard(self) -> None:
        """Removes the PDF's temporary folder (once the printout is sent or copied)."""
        if isinstance(self.body, Path):
            shutil.rmtree(self.body.parent, ignore_errors=True)


def default_period(today: dt.date) -> tuple[dt.date, dt.date]:
    """The last twelve months: from the same day a year ago, the day after, to today."""
    if today.year == 1:
        return dt.date.min, today
    try:
        year_ago = today.replace(year=today.year - 1)
    except ValueError:  # 29 February
        year_ago = today.replace(year=today.year - 1, day=28)
    return year_ago + dt.timedelta(days=1), today


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def period(start: dt.date | None, end: dt.date | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """The period asked for (either end defaults as the last twelve months), else 400."""
    default_start, default_end = default_period(end or today)
    start, end = start or default_start, end or default_end
    if end < start:
        raise BadRequest(
            "to is before from.",
            errors=[{"field": "to", "message": "Must not be before from."}],
        )
    if end >= dt.date.max:
        raise BadRequest(
            "to is out of range.", errors=[{"field": "to", "message": "Must be before 9999-12-31."}]
        )
    return start, end


def _now() -> dt.datetime:
    # To the minute: two prints within a minute of the same data are the same bytes.
    return utcnow().replace(second=0, microsecond=0)


async def _source(
    db: Executor,
    storage: Storage | None,
    organization_id: int,
    site_id: int,
    start: dt.datetime,
    end: dt.datetime,
    as_of: dt.datetime,
) -> content.Source:
    site = await repository.site(db, organization_id, site_id)
    if site is None:
        raise NotFound(f"No site {site_id}.")
    return content.Source(db, SignatureReader(storage), organization_id, site, start, end, as_of)


async def _cover(
    db: Executor,
    source: content.Source,
    title: str,
    span: tuple[dt.date, dt.date] | None,
    base_url: str,
    covered: Coverage | None,
) -> content.Cover:
    if covered is None:
        covered = await coverage(db, source.organization_id)
    return content.Cover(
        title=title,
        organization=source.site.organization_name,
        site=source.site.name,
        site_archived=source.site.archived_at is not None,
        period=span,
        as_of=source.as_of,
        coverage=covered,
        verification_url=verification_url(base_url, covered.checkpoint_id),
    )


async def _render(
    blocks: AsyncIterator[content.Block], fmt: Format, timestamp: dt.datetime
) -> bytes | Path:
    folder = Path(tempfile.mkdtemp(prefix="register-"))
    try:
        if fmt is Format.HTML:
            return await render_html_file(folder, blocks)
        return await render_pdf_file(folder, blocks, timestamp)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


async def print_register(
    db: Executor,
    storage: Storage | None,
    *,
    organization_id: int,
    site_id: int,
    start: dt.date | None,
    end: dt.date | None,
    fmt: Format,
    base_url: str,
    now: dt.datetime | None = None,
    covered: Coverage | None = None,
) -> Printed:
    """The register of a site over a period (default: the last twelve months); ``covered``:
    its place in the journal (``coverage.signed_coverage``), else read as it stands."""
    now = now or _now()
    first, last = period(start, end, now.date())
    period_end = _midnight(last + dt.timedelta(days=1))
    source = await _source(
        db, storage, organization_id, site_id, _midnight(first), period_end, min(period_end, now)
    )
    cover = await _cover(db, source, REGISTER_TITLE, (first, last), base_url, covered)
    body = await _render(content.register(source, cover), fmt, _timestamp(cover))
    name = f"register-site-{site_id}-{first:%Y%m%d}-{last:%Y%m%d}.{fmt.value}"
    return Printed(body, MEDIA_TYPES[fmt], name)


async def print_commission_pack(
    db: Executor,
    storage: Storage | None,
    *,
    organization_id: int,
    site_id: int,
    fmt: Format,
    base_url: str,
    now: dt.datetime | None = None,
    covered: Coverage | None = None,
) -> Printed:
    """One page for the commission de sécurité's visit to a site, as of now (``covered``: as
    for ``print_register``)."""
    now = now or _now()
    source = await _source(
        db, storage, organization_id, site_id, now - dt.timedelta(days=365), now, now
    )
    cover = await _cover(db, source, PACK_TITLE, None, base_url, covered)
    body = await _render(content.commission_pack(source, cover), fmt, _timestamp(cover))
    name = f"commission-pack-site-{site_id}-{now:%Y%m%d}.{fmt.value}"
    return Printed(body, MEDIA_TYPES[fmt], name)


def _timestamp(cover: content.Cover) -> dt.datetime:
    """The document's creation date: fixed by what it shows, for reproducible bytes."""
    # The PDF's dates are to the second (typst refuses a fraction of one).
    return (cover.coverage.checkpoint_signed_at or cover.as_of).replace(microsecond=0)
