"""Verifying an organisation's journal where it is stored: nothing rewrites it unnoticed.

The checks are the offline verifier's (``verify_register.ChainChecker``), fed from the
database a page of entries at a time (memory stays bounded whatever the journal's length),
with the service's own canonical JSON (``journal.entry_hash``, the ``rfc8785`` package) and
RFC 3161 reader: seq 1, 2, 3… with no gap, each hash recomputed, each ``prevHash`` the
previous entry's hash, the head (``journal_heads``) the last entry, and every checkpoint
signed by a published key over the hash of the entry at its seq (and time-stamped, if so,
over its own bytes). The first problem is named: "entry 17 was altered (hash mismatch)".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from interventions.db import Executor
from interventions.register import journal
from interventions.register import repository as repo
from interventions.register.checkpoints import as_json
from interventions.register.verifier.verify_register import ChainChecker, Problem, refuse_floats

PAGE_SIZE = 1000


def entry_hash(document: dict[str, Any]) -> str:
    """``journal.entry_hash``, refusing what the offline verifier refuses (a float, which no
    entry the service writes holds), so that both name the same problem."""
    refuse_floats(document)
    return journal.entry_hash(document)


@dataclass(frozen=True)
class Verification:
    organization_id: int
    entries: int  # entries checked (up to the first problem)
    checkpoints: int
    head: dict[str, Any] | None
    first_problem: Problem | None

    @property
    def valid(self) -> bool:
        return self.first_problem is None

    def summary(self) -> str:
        """One line, in the offline verifier's words."""
        if self.first_problem is not None:
            return f"FAILED: {self.first_problem.message}"
        return f"OK: {self.entries} entries, {self.checkpoints} checkpoints"


async def verify(db: Executor, organization_id: int, *, page_size: int = PAGE_SIZE) -> Verification:
    """Walk the organisation's journal; the first problem, if any.

    Read in this order, so that appends and checkpoints made meanwhile (on PostgreSQL each
    statement sees what is committed when it starts) are never taken for tampering: the
    checkpoints, then the keys (published before their checkpoints), then the head (at or
    past every checkpoint read), then the entries up to that head.
    """
    # asn1crypto (RFC 3161 tokens) imported when a register is verified, not in every process.
    from interventions.register import timestamps

    checkpoints = [as_json(r) for r in await repo.checkpoints(db, organization_id)]
    keys = {k.key_id: k.public_key for k in await repo.keys(db)}
    head_row = await repo.head(db, organization_id)
    head = None if head_row is None else {"seq": head_row.seq, "hash": head_row.hash}
    checker = ChainChecker(
        organization_id,
        keys,
        checkpoints,
        hash_entry=entry_hash,
        check_timestamp=timestamps.token_problem,
    )
    after = 0
    up_to = None if head is None else head["seq"]
    while checker.problem is None:
        rows = await repo.page_of_entries(
            db, organization_id, after=after, limit=page_size, up_to=up_to
        )
        for row in rows:
            if checker.add(journal.document(row), row.hash) is not None:
                break
        if len(rows) < page_size:
            break
        after = rows[-1].seq
    problem = checker.finish(head)
    return Verification(organization_id, checker.entries, len(checkpoints), head, problem)


async def organizations(db: Executor) -> list[int]:
    """Every organisation with a journal."""
    return await repo.journaled_organizations(db)
