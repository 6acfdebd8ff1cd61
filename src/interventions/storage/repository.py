"""Statements of the storage domain run by the executor (``db.Sql``): stored files' rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from interventions.db import Executor, Sql, table_of
from interventions.interventions.models import Intervention
from interventions.storage.models import StoredFile

_FILES = table_of(StoredFile)
_INTERVENTIONS = table_of(Intervention)

# ``created_at`` takes its column's default (now).
_INSERT = Sql(
    insert(_FILES)
    .values(
        id=bindparam("id"),
        organization_id=bindparam("organization_id"),
        name=bindparam("name"),
        mime_type=bindparam("mime_type"),
        size=bindparam("size"),
        storage_key=bindparam("storage_key"),
        created_by_user_id=bindparam("created_by_user_id"),
    )
    .returning(*_FILES.c)
)

_TO_UPLOAD = Sql(
    select(_FILES).where(_FILES.c.id == bindparam("id")),
    unscoped="a signed upload URL is the only credential: the file it signs is what finds "
    "the organisation",
)

_OURS = (
    _FILES.c.id == bindparam("id"),
    _FILES.c.organization_id == bindparam("organization_id"),
)

_MARK_UPLOADED = Sql(
    update(_FILES)
    .where(*_OURS, _FILES.c.uploaded_at.is_(None))
    .values(uploaded_at=bindparam("uploaded_at"))
)

# A signature is readable as long as its intervention is: cancelled ones stay in the register
# (SPEC §4.3), their evidence with them.
_DOWNLOADABLE = Sql(
    select(_FILES)
    .join(_INTERVENTIONS, _INTERVENTIONS.c.signature_file_id == _FILES.c.id)
    .where(*_OURS, _INTERVENTIONS.c.organization_id == bindparam("organization_id"))
)

_LOCKED = Sql(select(_FILES).where(*_OURS).with_for_update())


async def insert_file(db: Executor, **values: Any) -> Any:
    """The new row (a record of every column)."""
    return await db.first(_INSERT, **values)


async def file_to_upload(db: Executor, file_id: str) -> Any:
    """The file a signed upload URL names, whichever organisation's, or ``None``."""
    return await db.first(_TO_UPLOAD, id=file_id)


async def mark_uploaded(
    db: Executor, *, organization_id: int, file_id: str, uploaded_at: dt.datetime
) -> int:
    """Mark the file's bytes stored, unless they were already; rows marked (0 or 1)."""
    return await db.execute(
        _MARK_UPLOADED, id=file_id, organization_id=organization_id, uploaded_at=uploaded_at
    )


async def downloadable(db: Executor, *, organization_id: int, file_id: str) -> Any:
    """The organisation's file if it is an intervention's signature, else ``None``."""
    return await db.first(_DOWNLOADABLE, id=file_id, organization_id=organization_id)


async def locked(db: Executor, *, organization_id: int, file_id: str) -> Any:
    """The organisation's file, row-locked until the end of the transaction, or ``None``."""
    return await db.first(_LOCKED, id=file_id, organization_id=organization_id)
