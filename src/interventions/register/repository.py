"""Statements of the register's checkpoints, keys, verification and export (``db.Sql``).

The journal's own appends live in ``journal.py``; this module reads the journal (pages of
entries, heads) and owns the checkpoint and key tables.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Integer, and_, bindparam, func, select, union, update
from sqlalchemy.dialects import postgresql

from interventions.db import Executor, Sql, table_of
from interventions.interventions.models import Intervention, InterventionSite
from interventions.references.models import Site
from interventions.register.models import (
    JournalCheckpoint,
    JournalEntry,
    JournalHead,
    RegisterKey,
)
from interventions.storage.models import StoredFile

_KEYS = table_of(RegisterKey)
_CHECKPOINTS = table_of(JournalCheckpoint)
_ENTRIES = table_of(JournalEntry)
_HEADS = table_of(JournalHead)
_SITES = table_of(Site)
_INTERVENTIONS = table_of(Intervention)
_INTERVENTION_SITES = table_of(InterventionSite)
_FILES = table_of(StoredFile)

# --- keys (service-wide: no organisation) ---------------------------------------------------

# PostgreSQL's construct; SQLite's compiler renders the same ON CONFLICT clause.
_INSERT_KEY = Sql(
    postgresql.insert(_KEYS)
    .values(
        key_id=bindparam("key_id"),
        algorithm="Ed25519",
        public_key=bindparam("public_key"),
        created_at=bindparam("created_at"),
    )
    .on_conflict_do_nothing(index_elements=["key_id"])
)
_RETIRE_KEYS_BUT = Sql(
    update(_KEYS)
    .where(_KEYS.c.key_id != bindparam("key_id"), _KEYS.c.retired_at.is_(None))
    .values(retired_at=bindparam("retired_at"))
)
_ALL_KEYS = Sql(select(_KEYS).order_by(_KEYS.c.created_at, _KEYS.c.key_id))


async def insert_key(
    db: Executor, *, key_id: str, public_key: str, created_at: dt.datetime
) -> bool:
    """Record a public key; whether it was new."""
    inserted = await db.execute(
        _INSERT_KEY, key_id=key_id, public_key=public_key, created_at=created_at
    )
    return inserted > 0


async def retire_keys_but(db: Executor, *, key_id: str, retired_at: dt.datetime) -> None:
    await db.execute(_RETIRE_KEYS_BUT, key_id=key_id, retired_at=retired_at)


async def keys(db: Executor) -> list[Any]:
    return await db.all(_ALL_KEYS)


# --- checkpoints ----------------------------------------------------------------------------

_OURS = _CHECKPOINTS.c.organization_id == bindparam("organization_id")

_CHECKPOINT_AT = Sql(select(_CHECKPOINTS).where(_OURS, _CHECKPOINTS.c.seq == bindparam("seq")))
# One checkpoint per head (unique on organisation and seq): of several signers, one wins.
_INSERT_CHECKPOINT = Sql(
    postgresql.insert(_CHECKPOINTS)
    .values(
        {
            name: bindparam(name)
            for name in (
                "id",
                "organization_id",
                "seq",
                "hash",
                "signed_at",
                "key_id",
                "signature",
                "tsa_url",
            )
        }
    )
    .on_conflict_do_nothing(index_elements=["organization_id", "seq"])
    .returning(*_CHECKPOINTS.c)
)
_PAGE_OF_CHECKPOINTS = Sql(
    select(_CHECKPOINTS)
    .where(_OURS)
    .order_by(_CHECKPOINTS.c.seq.desc())
    .offset(bindparam("offset", type_=Integer()))
    .limit(bindparam("limit", type_=Integer()))
)
_COUNT_CHECKPOINTS = Sql(select(func.count()).select_from(_CHECKPOINTS).where(_OURS))
_CHECKPOINTS_UP_TO = Sql(
    select(_CHECKPOINTS)
    .where(_OURS, _CHECKPOINTS.c.seq <= bindparam("seq"))
    .order_by(_CHECKPOINTS.c.seq)
)
_LAST_CHECKPOINT_UP_TO = Sql(
    select(_CHECKPOINTS)
    .where(_OURS, _CHECKPOINTS.c.seq <= bindparam("seq"))
    .order_by(_CHECKPOINTS.c.seq.desc())
    .limit(1)
)
_ALL_CHECKPOINTS = Sql(select(_CHECKPOINTS).where(_OURS).order_by(_CHECKPOINTS.c.seq))
_PUBLIC_CHECKPOINT = Sql(
    select(_CHECKPOINTS).where(_CHECKPOINTS.c.id == bindparam("id")),
    unscoped="a checkpoint is public by its id (a printed register's QR code points to it): "
    "the id is what finds the organisation",
)
_UNCHECKPOINTED_HEADS = Sql(
    select(_HEADS.c.organization_id, _HEADS.c.seq)
    .outerjoin(
        _CHECKPOINTS,
        and_(
            _CHECKPOINTS.c.organization_id == _HEADS.c.organization_id,
            _CHECKPOINTS.c.seq == _HEADS.c.seq,
        ),
    )
    .where(_CHECKPOINTS.c.id.is_(None))
    .order_by(_HEADS.c.organization_id),
    unscoped="the worker signs the head of every organisation's journal that moved",
)
_TO_TIMESTAMP = Sql(
    select(_CHECKPOINTS)
    .where(_CHECKPOINTS.c.tsa_url.is_not(None), _CHECKPOINTS.c.timestamp_token.is_(None))
    .order_by(_CHECKPOINTS.c.signed_at)
    .limit(bindparam("limit", type_=Integer())),
    unscoped="the worker time-stamps every organisation's checkpoints",
)
_SET_TIMESTAMP = Sql(
    update(_CHECKPOINTS)
    .where(_OURS, _CHECKPOINTS.c.id == bindparam("id"), _CHECKPOINTS.c.timestamp_token.is_(None))
    .values(
        timestamp_token=bindparam("timestamp_token"),
        timestamp_error=bindparam("timestamp_error"),
        tsa_url=bindparam("tsa_url"),
    )
)


async def checkpoint_at(db: Executor, organization_id: int, seq: int) -> Any:
    return await db.first(_CHECKPOINT_AT, organization_id=organization_id, seq=seq)


async def insert_checkpoint(db: Executor, **values: Any) -> Any:
    """The new checkpoint's row, or ``None`` when its head has one already."""
    return await db.first(_INSERT_CHECKPOINT, **values)


async def page_of_checkpoints(
    db: Executor, organization_id: int, *, offset: int, limit: int
) -> tuple[list[Any], int]:
    rows = await db.all(
        _PAGE_OF_CHECKPOINTS, organization_id=organization_id, offset=offset, limit=limit
    )
    total = await db.scalar(_COUNT_CHECKPOINTS, organization_id=organization_id)
    return rows, int(total)


async def checkpoints(db: Executor, organization_id: int, up_to: int | None = None) -> list[Any]:
    """The organisation's checkpoints in seq order (up to entry ``up_to`` if given)."""
    if up_to is None:
        return await db.all(_ALL_CHECKPOINTS, organization_id=organization_id)
    return await db.all(_CHECKPOINTS_UP_TO, organization_id=organization_id, seq=up_to)


async def last_checkpoint_up_to(db: Executor, organization_id: int, seq: int) -> Any:
    """The organisation's latest checkpoint at or before entry ``seq``, or ``None``."""
    return await db.first(_LAST_CHECKPOINT_UP_TO, organization_id=organization_id, seq=seq)


async def public_checkpoint(db: Executor, checkpoint_id: str) -> Any:
    return await db.first(_PUBLIC_CHECKPOINT, id=checkpoint_id)


async def uncheckpointed_heads(db: Executor) -> list[Any]:
    """(organization_id, seq) of every journal head no checkpoint signs yet."""
    return await db.all(_UNCHECKPOINTED_HEADS)


async def to_timestamp(db: Executor, limit: int) -> list[Any]:
    """Checkpoints an authority was asked to time-stamp that have no token yet."""
    return await db.all(_TO_TIMESTAMP, limit=limit)


async def set_timestamp(
    db: Executor,
    *,
    organization_id: int,
    checkpoint_id: str,
    token: str | None,
    error: str | None,
    tsa_url: str,
) -> None:
    """Keep a checkpoint's token, or why it could not be had (until it is)."""
    await db.execute(
        _SET_TIMESTAMP,
        tsa_url=tsa_url,
        organization_id=organization_id,
        id=checkpoint_id,
        timestamp_token=token,
        timestamp_error=error,
    )


# --- the journal, read ----------------------------------------------------------------------

_E_OURS = _ENTRIES.c.organization_id == bindparam("organization_id")
_PAGE_OF_ENTRIES = Sql(
    select(_ENTRIES)
    .where(_E_OURS, _ENTRIES.c.seq > bindparam("after"))
    .order_by(_ENTRIES.c.seq)
    .limit(bindparam("limit", type_=Integer()))
)
_PAGE_OF_ENTRIES_UP_TO = Sql(
    select(_ENTRIES)
    .where(_E_OURS, _ENTRIES.c.seq > bindparam("after"), _ENTRIES.c.seq <= bindparam("up_to"))
    .order_by(_ENTRIES.c.seq)
    .limit(bindparam("limit", type_=Integer()))
)
_HEAD = Sql(select(_HEADS).where(_HEADS.c.organization_id == bindparam("organization_id")))
_JOURNALED_ORGANIZATIONS = Sql(
    union(select(_ENTRIES.c.organization_id).distinct(), select(_HEADS.c.organization_id)),
    unscoped="verifying every organisation's journal (the operator's command) lists them",
)


async def page_of_entries(
    db: Executor, organization_id: int, *, after: int, limit: int, up_to: int | None = None
) -> list[Any]:
    """Up to ``limit`` entries after seq ``after`` (and up to ``up_to``), in seq order."""
    if up_to is None:
        return await db.all(
            _PAGE_OF_ENTRIES, organization_id=organization_id, after=after, limit=limit
        )
    return await db.all(
        _PAGE_OF_ENTRIES_UP_TO,
        organization_id=organization_id,
        after=after,
        up_to=up_to,
        limit=limit,
    )


async def head(db: Executor, organization_id: int) -> Any:
    """The organisation's ``journal_heads`` row (``seq``, ``hash``), or ``None``."""
    return await db.first(_HEAD, organization_id=organization_id)


async def journaled_organizations(db: Executor) -> list[int]:
    """Every organisation with journal entries or a head."""
    return sorted(r[0] for r in await db.all(_JOURNALED_ORGANIZATIONS))


# --- what an export gathers -----------------------------------------------------------------

_SITE = Sql(
    select(_SITES.c.id, _SITES.c.name, _SITES.c.archived_at).where(
        _SITES.c.organization_id == bindparam("organization_id"), _SITES.c.id == bindparam("id")
    )
)
_SITE_INTERVENTIONS = Sql(
    select(_INTERVENTION_SITES.c.intervention_id)
    .where(
        _INTERVENTION_SITES.c.organization_id == bindparam("organization_id"),
        _INTERVENTION_SITES.c.site_id == bindparam("site_id"),
    )
    .order_by(_INTERVENTION_SITES.c.intervention_id)
)
_SIGNED = and_(
    _INTERVENTIONS.c.signature_file_id == _FILES.c.id,
    _INTERVENTIONS.c.organization_id == bindparam("organization_id"),
)
_SIGNATURE_FILES = Sql(
    select(_FILES, _INTERVENTIONS.c.id.label("intervention_id"))
    .join(_INTERVENTIONS, _SIGNED)
    .where(
        _FILES.c.organization_id == bindparam("organization_id"),
        _FILES.c.uploaded_at.is_not(None),
    )
    .order_by(_FILES.c.id)
)
_SITE_SIGNATURE_FILES = Sql(
    select(_FILES, _INTERVENTIONS.c.id.label("intervention_id"))
    .join(_INTERVENTIONS, _SIGNED)
    .join(
        _INTERVENTION_SITES,
        and_(
            _INTERVENTION_SITES.c.intervention_id == _INTERVENTIONS.c.id,
            _INTERVENTION_SITES.c.organization_id == bindparam("organization_id"),
        ),
    )
    .where(
        _FILES.c.organization_id == bindparam("organization_id"),
        _FILES.c.uploaded_at.is_not(None),
        _INTERVENTION_SITES.c.site_id == bindparam("site_id"),
    )
    .order_by(_FILES.c.id)
)


async def site(db: Executor, organization_id: int, site_id: int) -> Any:
    return await db.first(_SITE, organization_id=organization_id, id=site_id)


async def site_interventions(db: Executor, organization_id: int, site_id: int) -> list[int]:
    rows = await db.all(_SITE_INTERVENTIONS, organization_id=organization_id, site_id=site_id)
    return [r.intervention_id for r in rows]


async def signature_files(db: Executor, organization_id: int, site_id: int | None) -> list[Any]:
    """The uploaded signature files of the organisation's interventions (of one site's)."""
    if site_id is None:
        return await db.all(_SIGNATURE_FILES, organization_id=organization_id)
    return await db.all(_SITE_SIGNATURE_FILES, organization_id=organization_id, site_id=site_id)
