"""The ``interventions`` command: serve, import, demo."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from interventions.config import Settings, get_settings
from interventions.db import create_database, create_database_from_settings
from interventions.migrate import upgrade
from interventions.register.cli import register_cli

cli = typer.Typer(help="Interventions service for building-safety registers.", no_args_is_help=True)
cli.add_typer(register_cli, name="register")
# soft_wrap: a long line stays one line (the terminal wraps it on screen; a pipe, a log or
# grep gets it whole) instead of being cut at 80 columns when the output is not a terminal.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
MAX_REPORTED_PROBLEMS = 50


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
    import os
    import sys

    from interventions.register.keys import KeyStore

    settings = get_settings()
    if migrate:
        upgrade(settings.database_url)
    settings.resolved_secret()  # generate and keep it before workers start, so they share it
    KeyStore(settings).current()  # likewise the register's signing key
    # X-Forwarded-For / -Proto only from the proxies the operator names: uvicorn's default
    # (trust 127.0.0.1) would let anyone on the machine, or any request when nothing fronts
    # the service, choose the client address that rate limits key on.
    proxies = settings.trusted_proxy_list()
    options = {
        "host": host,
        "port": port,
        "workers": workers,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
        "log_level": "info",
    }
    # The same process, a fresh interpreter: what this command imported (Alembic, Typer,
    # Rich) does not stay in the serving process (serving.py).
    sys.stdout.flush()
    sys.stderr.flush()
    python = sys.executable
    os.execv(python, [python, "-m", "interventions.serving", json.dumps(options)])  # noqa: S606


async def _import(settings: Settings, document: Any) -> Any:
    from interventions.references.importer import import_reference_data

    db = create_database(settings.database_url, pool=False)
    try:
        return await import_reference_data(db, document)
    finally:
        await db.dispose()


def _fail(message: str, code: int = 1) -> NoReturn:
    """One error line (never wrapped: see ``err_console``) and the exit."""
    err_console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def _fail_with_problems(prefix: str, problems: list[str], hint: str = "") -> NoReturn:
    """Every problem of an invalid file, one a line, up to ``MAX_REPORTED_PROBLEMS``."""
    if len(problems) == 1:
        err_console.print(
            f"[red]error:[/red] {escape(prefix)}: {escape(problems[0])}; nothing was imported"
        )
    else:
        err_console.print(
            f"[red]error:[/red] {escape(prefix)}: {len(problems)} problems; nothing was imported"
        )
        for problem in problems[:MAX_REPORTED_PROBLEMS]:
            err_console.print(f"  {escape(problem)}")
        if len(problems) > MAX_REPORTED_PROBLEMS:
            err_console.print(f"  … and {len(problems) - MAX_REPORTED_PROBLEMS} more")
    if hint:
        err_console.print(escape(hint))
    raise typer.Exit(1)


def _read_json(file: Path) -> Any:
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        _fail(f"{file}: no such file", 2)
    except IsADirectoryError:
        _fail(f"{file}: is a directory, not a file", 2)
    except OSError as exc:
        _fail(f"{file}: cannot be read ({exc.strerror or exc})", 2)
    try:
        content = raw.decode("utf-8-sig")  # a leading byte-order mark is tolerated
    except UnicodeDecodeError as exc:
        _fail(f"{file} is not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start}")
    if not content.strip():
        _fail(f"{file} is empty: it must hold one JSON object")
    try:
        return json.loads(content)
    except json.JSONDecodeError as exc:
        _fail(f"{file} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")


@cli.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="JSON file in the reference data format.")],
) -> None:
    """Load reference data (organisations, users, sites, rules…). Idempotent; all or nothing."""
    from interventions.references.importer import ImportError_

    document = _read_json(file)
    settings = get_settings()
    upgrade(settings.database_url)
    try:
        report = asyncio.run(_import(settings, document))
    except ImportError_ as exc:
        _fail_with_problems(str(file), exc.problems)
    for label in report.created:
        console.print(
            f"{label}: {report.created[label]} created, {report.updated[label]} updated, "
            f"{report.unchanged[label]} unchanged"
        )


async def _demo(settings: Settings) -> tuple[Any, list[int]]:
    from interventions.demo import load_demo
    from interventions.storage.service import make_storage

    db = create_database(settings.database_url, pool=False)
    storage = make_storage(settings, settings.resolved_secret())
    try:
        async with db.transaction() as executor:
            return await load_demo(executor, storage)
    finally:
        await db.dispose()


DEFAULT_BASE_URL = "http://127.0.0.1:8000"


@cli.command()
def demo(
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            "--url",
            help="Where the service answers, for the printed instructions "
            f"(default: INTERVENTIONS_PUBLIC_URL when set, else {DEFAULT_BASE_URL}).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Load a small demo organisation and print how to log in."""
    from interventions.demo import DEMO_ORGANIZATION_ID, DEMO_USERS
    from interventions.references.importer import ImportError_

    settings = get_settings()
    base = (base_url or settings.public_url or DEFAULT_BASE_URL).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise typer.BadParameter(
            f"{base!r} is not an http:// or https:// URL", param_hint="--base-url"
        )
    upgrade(settings.database_url)
    try:
        _, created = asyncio.run(_demo(settings))
    except ImportError_ as exc:
        _fail_with_problems(
            "the demo organisation cannot be loaded",
            exc.problems,
            "Load it into a fresh database (an earlier version of the demo gave profiles the "
            "ids of their users), or set INTERVENTIONS_DATABASE_URL to another one.",
        )
    console.print(f"Demo organisation {DEMO_ORGANIZATION_ID} is ready.", style="bold")
    for u in DEMO_USERS:
        console.print(
            f"  {u.role:8} {u.email} / {u.password}  (user {u.user_id}, profile {u.profile_id})",
            highlight=False,
        )
    if created:
        console.print(
            f"Planned interventions: preventive {created[0]}, training exercise {created[1]}."
        )
    body = json.dumps({"email": DEMO_USERS[0].email, "password": DEMO_USERS[0].password})
    console.print(f"\nLog in to {base}:", style="bold", highlight=False)
    console.print(
        f"curl -s -X POST {base}/auth/v1/rs/login/credentials "
        f"-H 'content-type: application/json' -d '{body}'",
        highlight=False,
    )
    console.print(
        "Then send 'Authorization: Bearer <accessToken>' and 'x-session-token: <sessionToken>'.",
        highlight=False,
    )
    console.print(f"Interactive API documentation: {base}/docs", highlight=False)


@cli.command()
def worker() -> None:
    """Relay the e-mail outbox, plan routines and sign journal checkpoints until stopped
    (SIGINT/SIGTERM).

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
    # The worker bounds its waits on the database like the serving processes.
    asyncio.run(run_worker(create_database_from_settings(settings), settings))


@cli.command()
def overdue() -> None:
    """Mark overdue interventions (journal, e-mails) and accept executed ones automatically,
    once, now; the worker (or `serve` on SQLite) does it every
    INTERVENTIONS_OVERDUE_INTERVAL_SECONDS."""
    from interventions.interventions.overdue import run_once

    settings = get_settings()
    upgrade(settings.database_url)
    marked, accepted = asyncio.run(run_once(create_database_from_settings(settings)))
    console.print(f"{marked} marked overdue, {accepted} accepted automatically", highlight=False)


# The printable register's commands join the register's group (``interventions register
# print|commission-pack``) when their module is imported.
import interventions.register.printing.cli  # noqa: E402, F401


def main() -> None:
    cli()
