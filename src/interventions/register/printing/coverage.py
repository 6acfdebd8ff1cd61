"""Where the register stands in the organisation's journal, and the checkpoint covering it:
printed in every page's footer, so that a reader can check the printout against the chain."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from interventions.db import Executor

GENESIS = "0" * 64


@dataclass(frozen=True)
class Coverage:
    """The journal's head (``seq``, ``hash``) and the signed checkpoint that covers it."""

    seq: int
    hash: str
    checkpoint_id: str | None
    checkpoint_signed_at: dt.datetime | None


async def coverage(db: Executor, organization_id: int) -> Coverage:
    """The organisation's journal head and its covering checkpoint.

    TODO(lead): checkpoints — read ``journal_heads`` (seq, hash) and the latest
    ``journal_checkpoints`` row covering that seq once the journal and checkpoints are
    merged; until then the register is printed as "not yet covered by a checkpoint".
    """
    del db, organization_id
    return Coverage(0, GENESIS, None, None)


def verification_url(base_url: str, checkpoint_id: str | None) -> str | None:
    """The public page of the checkpoint, or ``None`` when none covers the register yet."""
    if checkpoint_id is None:
        return None
    return f"{base_url.rstrip('/')}/register/v1/checkpoints/{checkpoint_id}"
