"""The background work runs where it should: inside `serve` for SQLite, in `worker` otherwise."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from interventions.app import create_app
from interventions.config import Settings
from interventions.interventions.models import Intervention
from interventions.notifications.models import OutboxEmail
from interventions.references.models import Routine
from interventions.worker import background_work
from tests.factories import Org


async def _wait_for(predicate: Any, seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_background_work_relays_and_plans(factory: Any, settings: Settings) -> None:
    org: Org = await factory.org()
    async with factory.db.writer() as s, s.begin():
        await s.execute(
            update(Routine)
            .where(Routine.id == org.routine_id)
            .values(
                rrule="FREQ=DAILY",
                dtstart=dt.datetime.now(dt.UTC),
                horizon_days=3,
                auto_create_enabled=True,
            )
        )
    from interventions.notifications.service import enqueue_email

    async with factory.db.transaction() as db:
        email = await enqueue_email(
            db,
            organization_id=org.id,
            intervention_id=None,
            recipient="w@example.org",
            subject="Hello",
            body="Body",
            kind="test",
        )
    fast = settings.model_copy(
        update={"relay_interval_seconds": 0.05, "planner_interval_seconds": 0.05}
    )

    async def relayed() -> bool:
        async with factory.db.reader() as s:
            row = await s.get(OutboxEmail, email.id)
            return row is not None and row.status == "sent"

    async def planned() -> bool:
        async with factory.db.reader() as s:
            found = (
                await s.execute(
                    select(Intervention.id).where(Intervention.routine_id == org.routine_id)
                )
            ).all()
            return len(found) >= 3

    async with background_work(factory.db, fast):
        await _wait_for(relayed)
        await _wait_for(planned)
    assert any(b"w@example.org" in body for body in _eml_files(settings.outbox_dir))


def _eml_files(folder: Path) -> list[bytes]:
    return [f.read_bytes() for f in folder.glob("*.eml")]


async def test_serve_relays_in_process_on_sqlite(
    factory: Any, settings: Settings, backend: str
) -> None:
    # The embedded default relays inside the serving process; PostgreSQL leaves it to workers.
    app = create_app(
        settings.model_copy(update={"relay_in_process": None, "relay_interval_seconds": 0.05}),
        factory.db,
    )
    from interventions.notifications.service import enqueue_email

    org: Org = await factory.org()
    async with factory.db.transaction() as db:
        email = await enqueue_email(
            db,
            organization_id=org.id,
            intervention_id=None,
            recipient="inproc@example.org",
            subject="Hello",
            body="Body",
            kind="test",
        )

    async def relayed() -> bool:
        async with factory.db.reader() as s:
            row = await s.get(OutboxEmail, email.id)
            return row is not None and row.status == "sent"

    async with app.router.lifespan_context(app):
        if backend == "sqlite":
            await _wait_for(relayed)
        else:
            await asyncio.sleep(0.5)
            assert not await relayed()
