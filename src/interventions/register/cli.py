"""``interventions register …``: checkpoints, verification, export and key rotation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from interventions.config import Settings, get_settings
from interventions.db import Database, create_database, utcnow
from interventions.errors import AppError
from interventions.migrate import upgrade

register_cli = typer.Typer(
    help="The register: sign, verify and export the journal; print a site's register and "
    "its commission pack; rotate the signing key.",
    no_args_is_help=True,
)
console = Console(soft_wrap=True, highlight=False)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)

T = TypeVar("T")

Organization = Annotated[
    int | None,
    typer.Option("--organization", help="One organisation (default: every one with a journal)."),
]


def _fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def _run(work: Callable[[Database, Settings], Awaitable[T]]) -> T:
    """``work`` on the configured database (migrated first), the errors as one line."""
    from interventions.register.keys import KeyStoreError

    settings = get_settings()
    upgrade(settings.database_url)

    async def run() -> T:
        db = create_database(settings.database_url, pool=False)
        try:
            return await work(db, settings)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except (AppError, KeyStoreError) as exc:
        _fail(str(exc))


@register_cli.command()
def checkpoint(organization: Organization = None) -> None:
    """Sign the journal's head now (of one organisation, or of every one whose head moved)."""
    from interventions.register import checkpoints, keys
    from interventions.register import repository as repo

    async def work(db: Database, settings: Settings) -> list[tuple[Any, bool]]:
        store = keys.KeyStore(settings)
        if organization is None:
            async with db.transaction(write=False) as executor:
                wanted = [h.organization_id for h in await repo.uncheckpointed_heads(executor)]
        else:
            wanted = [organization]
        made = []
        for organization_id in wanted:
            async with db.transaction() as executor:
                made.append(
                    await checkpoints.make(
                        executor, store, organization_id, tsa_url=settings.tsa_url
                    )
                )
        if settings.tsa_url and any(created for _, created in made):
            await checkpoints.stamp_pending(db, settings)
            async with db.transaction(write=False) as executor:
                made = [
                    (await repo.checkpoint_at(executor, r.organization_id, r.seq), c)
                    for r, c in made
                ]
        return made

    made = _run(work)
    if not made:
        console.print("Every journal's head is signed already.")
    for row, created in made:
        what = "signed" if created else "already signed"
        stamp = ""
        if row.tsa_url:
            stamp = (
                ", time-stamped"
                if row.timestamp_token
                else f", not time-stamped yet ({row.timestamp_error or 'pending'})"
            )
        console.print(
            f"organisation {row.organization_id}: entry {row.seq} {what}: checkpoint {row.id} "
            f"(key {row.key_id}{stamp})"
        )


@register_cli.command()
def verify(organization: Organization = None) -> None:
    """Check the journal and its checkpoints; exit 1 naming the first broken entry."""
    from interventions.register import verification

    async def work(db: Database, _settings: Settings) -> list[verification.Verification]:
        async with db.transaction(write=False) as executor:
            wanted = (
                [organization]
                if organization is not None
                else await verification.organizations(executor)
            )
            return [await verification.verify(executor, o) for o in wanted]

    found = _run(work)
    if not found:
        console.print("No journal to verify.")
    for result in found:
        head = f" (head: entry {result.head['seq']})" if result.head else " (no head)"
        line = f"organisation {result.organization_id}: {result.summary()}"
        if result.valid:
            console.print(line + head)
        else:
            err_console.print(line)
    if not all(r.valid for r in found):
        raise typer.Exit(1)


@register_cli.command("export")
def export_(
    out: Annotated[Path, typer.Argument(help="The zip file to write.")],
    organization: Annotated[int, typer.Option("--organization", help="The organisation.")],
    site: Annotated[
        int | None, typer.Option("--site", help="Only this site's signature files.")
    ] = None,
) -> None:
    """Write the register as a zip that anyone can verify offline (verify_register.py)."""
    from interventions.register import export
    from interventions.storage.service import make_storage

    if out.is_dir():
        _fail(f"{out} is a directory: name the zip file to write", 2)
    if not out.parent.is_dir():
        _fail(f"{out.parent} is not a directory", 2)
    partial = out.with_name(out.name + ".partial")

    async def work(db: Database, settings: Settings) -> export.ExportSummary:
        storage = make_storage(settings, settings.resolved_secret())
        async with db.transaction(write=False) as executor:
            return await export.write_export(
                executor, storage, organization, partial, site_id=site, now=utcnow()
            )

    try:
        summary = _run(work)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)
    missing = (
        f", {len(summary.missing_signature_files)} missing from storage"
        if summary.missing_signature_files
        else ""
    )
    console.print(
        f"{out}: {summary.entries} entries, {summary.checkpoints} checkpoints, "
        f"{len(summary.signature_files)} signature files{missing}. "
        f"Check it with: python3 -m zipfile -e {out} DIR && python3 DIR/verify_register.py"
    )


@register_cli.command("rotate-key")
def rotate_key() -> None:
    """Make a new signing key current; the previous one stays published (retired)."""
    from interventions.register import keys

    async def work(db: Database, settings: Settings) -> keys.SigningKey:
        key = keys.KeyStore(settings).rotate()
        async with db.transaction() as executor:
            await keys.publish(executor, key, utcnow())
        return key

    key = _run(work)
    console.print(f"New signing key {key.key_id} is current; earlier keys stay published.")
