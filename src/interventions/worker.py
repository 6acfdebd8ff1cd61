"""Background work: relaying the e-mail outbox, sending webhooks, planning routines, signing
journal heads, purging expired idempotency keys, marking overdue interventions (and accepting
executed ones automatically).

Run by ``interventions worker`` (as many as wanted: relays lease rows, the planner relies on
a unique occurrence per routine), or inside the serving process for the embedded default.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from interventions.config import Settings
from interventions.db import Database
from interventions.idempotency.middleware import purge_forever
from interventions.interventions.overdue import overdue_forever
from interventions.interventions.planner import plan_forever

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def background_work(
    db: Database, settings: Settings, *, enabled: bool = True
) -> AsyncIterator[asyncio.Event]:
    """Relay, planner and checkpoint tasks for the duration of the block; stopped cleanly at
    its end."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    if enabled:
        # The relays and the checkpoints bring httpx, aiosmtplib, asn1crypto and X.509 (~10 MiB
        # of memory): imported where they run, not in every serving process.
        from interventions.integrations.webhooks.relay import (
            relay_forever as webhook_relay_forever,
        )
        from interventions.notifications.relay import default_relay_id, relay_forever
        from interventions.register.checkpoints import checkpoint_forever

        tasks = [
            asyncio.create_task(
                relay_forever(db, settings, stop, relay_id=default_relay_id()), name="relay"
            ),
            asyncio.create_task(
                webhook_relay_forever(db, settings, stop, relay_id=default_relay_id()),
                name="webhooks",
            ),
            asyncio.create_task(
                plan_forever(db, settings.planner_interval_seconds, stop), name="planner"
            ),
            asyncio.create_task(checkpoint_forever(db, settings, stop), name="checkpoints"),
            asyncio.create_task(purge_forever(db, stop), name="idempotency-purge"),
            asyncio.create_task(
                overdue_forever(db, settings.overdue_interval_seconds, stop), name="overdue"
            ),
        ]
    try:
        yield stop
    finally:
        stop.set()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=settings.smtp_timeout_seconds + 5)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def run_worker(db: Database, settings: Settings) -> None:
    """Until SIGINT or SIGTERM: relay the outbox and plan routines."""
    async with background_work(db, settings) as stop:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        logger.info("worker started")
        await stop.wait()
        logger.info("worker stopping")
    await db.dispose()
