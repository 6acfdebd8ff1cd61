"""Where the register stands in the organisation's journal, and the checkpoint covering it:
printed in every page's footer, so that a reader can check the printout against the chain."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from interventions.db import Executor
from interventions.register import journal
from interventions.register.journal import GENESIS


@dataclass(frozen=True)
class Coverage:
    """The journal's head (``seq``, ``hash``) and the signed checkpoint that covers it."""

    seq: int
    hash: str
    checkpoint_id: str | None
    checkpoint_signed_at: dt.datetime | None


async def coverage(db: Executor, organization_id: int) -> Coverage:
    """The organisation's journal head (entry 0 and GENESIS before its first entry) and the
    checkpoint covering it.

    TODO(lead): checkpoints — read the ``journal_checkpoints`` row that covers ``head.seq``
    (its public id and signing time) once checkpoints are merged; until then every register
    prints "not yet covered by a checkpoint".
    """
    head = await journal.head(db, organization_id)
    if head is None:
        return Coverage(0, GENESIS, None, None)
    return Coverage(head.seq, head.hash, None, None)


def verification_url(base_url: str, checkpoint_id: str | None) -> str | None:
    """The public page of the checkpoint, or ``None`` when none covers the register yet."""
    if checkpoint_id is None:
        return None
    return f"{base_url.rstrip('/')}/register/v1/checkpoints/{checkpoint_id}"
