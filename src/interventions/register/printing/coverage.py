"""Where the register stands in the organisation's journal, and the checkpoint covering it:
printed in every page's footer, so that a reader can check the printout against the chain."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from interventions.config import Settings
from interventions.db import Database, Executor
from interventions.errors import NotFound
from interventions.register import checkpoints, journal, keys
from interventions.register import repository as register_repository
from interventions.register.journal import GENESIS
from interventions.register.printing import repository


@dataclass(frozen=True)
class Coverage:
    """The journal's head (``seq``, ``hash``) and the latest signed checkpoint at or before
    it (``checkpoint_seq``: the entry it signs; the head's own once ``sign_head`` ran)."""

    seq: int
    hash: str
    checkpoint_id: str | None
    checkpoint_signed_at: dt.datetime | None
    checkpoint_seq: int | None = None


async def signed_coverage(
    database: Database, settings: Settings, organization_id: int, site_id: int
) -> Coverage:
    """The coverage of a printout about to be made of the site: the organisation's journal
    head signed first unless a checkpoint already signs it, in a transaction of its own, so
    that the printout names a checkpoint covering everything it shows. A site that is not
    the organisation's is a 404 before anything is signed; nothing to sign before the first
    entry."""
    async with database.transaction() as db:
        if await repository.site(db, organization_id, site_id) is None:
            raise NotFound(f"No site {site_id}.")
        if await journal.head(db, organization_id) is not None:
            store = keys.KeyStore(settings)
            await checkpoints.make(db, store, organization_id, tsa_url=settings.tsa_url)
        return await coverage(db, organization_id)


async def coverage(db: Executor, organization_id: int) -> Coverage:
    """The organisation's journal head (entry 0 and GENESIS before its first entry) and the
    latest checkpoint at or before it."""
    head = await journal.head(db, organization_id)
    if head is None:
        return Coverage(0, GENESIS, None, None)
    signed = await register_repository.last_checkpoint_up_to(db, organization_id, head.seq)
    if signed is None:
        return Coverage(head.seq, head.hash, None, None)
    return Coverage(head.seq, head.hash, signed.id, signed.signed_at, signed.seq)


def verification_url(base_url: str, checkpoint_id: str | None) -> str | None:
    """The public page of the checkpoint, or ``None`` when none covers the register yet."""
    if checkpoint_id is None:
        return None
    return f"{base_url.rstrip('/')}/register/v1/checkpoints/{checkpoint_id}"
