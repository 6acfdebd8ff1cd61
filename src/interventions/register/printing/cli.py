"""``interventions register print`` and ``interventions register commission-pack``: the same
documents as the HTTP routes, written to a file (``-`` for standard output)."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import sys
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from interventions.config import Settings, get_settings
from interventions.db import create_database
from interventions.errors import AppError
from interventions.migrate import upgrade
from interventions.register.cli import register_cli
from interventions.register.printing import service
from interventions.register.printing.coverage import signed_coverage
from interventions.register.printing.service import Format, Printed
from interventions.storage.service import make_storage

# The register's own command group: these two commands join checkpoint, verify and export.
printing_cli = register_cli
DEFAULT_BASE_URL = "http://127.0.0.1:8000"

Organization = Annotated[int, typer.Option("--organization", help="Organisation id.")]
Site = Annotated[int, typer.Option("--site", help="Site id.")]
FormatOption = Annotated[Format, typer.Option("--format", help="pdf (PDF/A-2b) or html.")]
Out = Annotated[str, typer.Argument(help="File to write ('-': standard output).")]


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from None


async def _print(settings: Settings, make: str, **options: object) -> Printed:
    db = create_database(settings.database_url, pool=False)
    storage = make_storage(settings, settings.resolved_secret())
    base_url = settings.public_url or DEFAULT_BASE_URL
    organization, site = options["organization_id"], options["site_id"]
    assert isinstance(organization, int)
    assert isinstance(site, int)
    try:
        covered = await signed_coverage(db, settings, organization, site)
        async with db.transaction(write=False) as executor:
            if make == "register":
                return await service.print_register(
                    executor,
                    storage,
                    base_url=base_url,
                    covered=covered,
                    **options,  # type: ignore[arg-type]
                )
            return await service.print_commission_pack(
                executor,
                storage,
                base_url=base_url,
                covered=covered,
                **options,  # type: ignore[arg-type]
            )
    finally:
        await db.dispose()


def _run(make: str, out: str, **options: object) -> None:
    settings = get_settings()
    upgrade(settings.database_url)
    try:
        printed = asyncio.run(_print(settings, make, **options))
    except AppError as exc:
        typer.echo(f"Error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    try:
        if out == "-":
            _copy(printed.body, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            with open(out, "wb") as file:
                _copy(printed.body, file)
            typer.echo(f"Wrote {out} ({printed.size} bytes).", err=True)
    finally:
        printed.discard()


def _copy(body: bytes | Path, out: BinaryIO) -> None:
    if isinstance(body, bytes):
        out.write(body)
        return
    with open(body, "rb") as file:
        shutil.copyfileobj(file, out)


@printing_cli.command("print")
def print_register(
    organization: Organization,
    site: Site,
    out: Out,
    start: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD (default: a year ago).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (default: today).")
    ] = None,
    fmt: FormatOption = Format.PDF,
) -> None:
    """Print a site's safety register for a period."""
    _run(
        "register",
        out,
        organization_id=organization,
        site_id=site,
        start=_date(start, "--from"),
        end=_date(end, "--to"),
        fmt=fmt,
    )


@printing_cli.command("commission-pack")
def commission_pack(
    organization: Organization, site: Site, out: Out, fmt: FormatOption = Format.PDF
) -> None:
    """Print a site's one-page pack for the commission de sécurité."""
    _run("pack", out, organization_id=organization, site_id=site, fmt=fmt)
