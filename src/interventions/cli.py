"""The ``interventions`` command: serve, import, demo."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from interventions.config import Settings, get_settings
from interventions.db import create_database
from interventions.migrate import upgrade

cli = typer.Typer(help="Interventions service for building-safety registers.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply pending migrations first.")
    ] = True,
) -> None:
    """Serve the HTTP API (migrating the database first unless --no-migrate)."""
    import uvicorn

    settings = get_settings()
    if migrate:
        upgrade(settings.database_url)
    settings.resolved_secret()  # generate and keep it before workers start, so they share it
    uvicorn.run(
        "interventions.asgi:app",
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        log_level="info",
    )


async def _import(settings: Settings, document: Any) -> Any:
    from interventions.references.importer import import_reference_data

    db = create_database(settings.database_url, pool=False)
    try:
        async with db.writer() as session, session.begin():
            return await import_reference_data(session, document)
    finally:
        await db.dispose()


@cli.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="JSON file in the reference data format.")],
) -> None:
    """Load reference data (organisations, users, sites, rules…). Idempotent; all or nothing."""
    from interventions.references.importer import ImportError_

    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        err_console.print(f"[red]error:[/red] {file}: no such file")
        raise typer.Exit(2) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        err_console.print(f"[red]error:[/red] {file}: not a JSON file ({exc})")
        raise typer.Exit(1) from None
    settings = get_settings()
    upgrade(settings.database_url)
    try:
        report = asyncio.run(_import(settings, document))
    except ImportError_ as exc:
        err_console.print(f"[red]error:[/red] {file}: {exc}; nothing was imported")
        raise typer.Exit(1) from None
    for label in report.created:
        console.print(
            f"{label}: {report.created[label]} created, {report.updated[label]} updated, "
            f"{report.unchanged[label]} unchanged"
        )


async def _demo(settings: Settings) -> tuple[Any, list[int]]:
    from interventions.demo import load_demo

    db = create_database(settings.database_url, pool=False)
    try:
        async with db.writer() as session, session.begin():
            return await load_demo(session)
    finally:
        await db.dispose()


@cli.command()
def demo(
    url: Annotated[
        str, typer.Option(help="Where the service listens, for the printed examples.")
    ] = "http://127.0.0.1:8000",
) -> None:
    """Load a small demo organisation and print how to log in."""
    from interventions.demo import DEMO_USERS

    settings = get_settings()
    upgrade(settings.database_url)
    _, created = asyncio.run(_demo(settings))
    console.print("Demo organisation 1 is ready.", style="bold")
    for _, email, password, _, _, role in DEMO_USERS:
        console.print(f"  {role:8} {email} / {password}")
    if created:
        console.print(
            f"Planned interventions: preventive {created[0]}, training exercise {created[1]}."
        )
    body = json.dumps({"email": DEMO_USERS[0][1], "password": DEMO_USERS[0][2]})
    console.print("\nLog in:", style="bold")
    console.print(
        f"curl -s -X POST {url}/auth/v1/rs/login/credentials "
        f"-H 'content-type: application/json' -d '{body}'",
        soft_wrap=True,
        highlight=False,
    )
    console.print(
        "Then send 'Authorization: Bearer <accessToken>' and 'x-session-token: <sessionToken>'.",
        highlight=False,
    )


@cli.command()
def worker() -> None:
    """Relay the e-mail outbox and plan routines until stopped (SIGINT/SIGTERM).

    Run one or several next to `serve` when the database is PostgreSQL; the embedded
    SQLite default does this work inside `serve`.
    """
    import logging

    from interventions.worker import run_worker

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = get_settings()
    upgrade(settings.database_url)
    asyncio.run(run_worker(create_database(settings.database_url), settings))


def main() -> None:
    cli()
