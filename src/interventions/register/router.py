"""``/register/v1``: the keys and checkpoints anyone may check (no login), and the
organisation's checkpoints, verification and export (``/register/v1/rs/…``)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Query, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from interventions.auth.dependencies import CurrentCaller, CurrentWriter
from interventions.config import AppSettings
from interventions.db import AppDatabase
from interventions.errors import NotFound
from interventions.handlers import LeanRoute
from interventions.openapi import errors_for
from interventions.references.paging import Paging, listed
from interventions.register import checkpoints, export, keys, verification
from interventions.register import repository as repo
from interventions.register.schemas import (
    CheckpointRead,
    KeyRead,
    PublicCheckpointRead,
    VerificationRead,
)
from interventions.storage.dependencies import CurrentStorage
from interventions.transactions import RequestDb
from interventions.wire import Envelope, ListEnvelope, QueryId

router = APIRouter(route_class=LeanRoute, prefix="/register/v1", tags=["register"])

CheckpointId = Annotated[
    str,
    Path(
        alias="checkpointId",
        pattern=r"^[A-Za-z0-9_-]{1,16}$",
        description="A checkpoint's id (URL-safe, as a printed register's QR code shows it).",
    ),
]


@router.get(
    "/keys",
    operation_id="listRegisterKeys",
    response_model=Envelope[list[KeyRead]],
    responses=errors_for(auth=False),
    summary="The public keys that sign checkpoints (no login: anyone may verify)",
    description="Every key that ever signed a checkpoint, oldest first, retired ones "
    "included so that old checkpoints stay verifiable, and the current one.",
)
async def list_keys(db: RequestDb, settings: AppSettings) -> Envelope[list[KeyRead]]:
    current = keys.KeyStore(settings).current()
    published = await keys.published(await db.executor())
    found = [
        KeyRead(
            key_id=k.key_id,
            algorithm=k.algorithm,
            public_key=k.public_key,
            created_at=k.created_at,
            retired_at=k.retired_at,
            current=k.key_id == current.key_id,
        )
        for k in published
    ]
    if all(k.key_id != current.key_id for k in published):
        found.append(
            KeyRead(
                key_id=current.key_id,
                algorithm=keys.ALGORITHM,
                public_key=current.public_key,
                created_at=None,
                retired_at=None,
                current=True,
            )
        )
    return Envelope(data=found)


@router.get(
    "/checkpoints/{checkpointId}",
    operation_id="getPublicCheckpoint",
    response_model=Envelope[PublicCheckpointRead],
    responses=errors_for(400, 404, auth=False),
    summary="A checkpoint, by its id (no login: a printed register's QR code points here)",
)
async def get_public_checkpoint(
    checkpoint_id: CheckpointId, db: RequestDb
) -> Envelope[PublicCheckpointRead]:
    row = await repo.public_checkpoint(await db.executor(), checkpoint_id)
    if row is None:
        raise NotFound(f"No checkpoint {checkpoint_id}.")
    return Envelope(data=PublicCheckpointRead.model_validate(row))


@router.get(
    "/rs/checkpoints",
    operation_id="listCheckpoints",
    response_model=ListEnvelope[CheckpointRead],
    responses=errors_for(400),
    summary="The organisation's checkpoints, newest first",
)
async def list_checkpoints(
    caller: CurrentCaller, db: RequestDb, page: Paging
) -> ListEnvelope[CheckpointRead]:
    rows, total = await repo.page_of_checkpoints(
        await db.executor(),
        caller.organization_id,
        offset=(page.page - 1) * page.size,
        limit=page.size,
    )
    return listed(page, ([CheckpointRead.model_validate(r) for r in rows], total))


@router.post(
    "/rs/checkpoints",
    operation_id="createCheckpoint",
    status_code=201,
    response_model=Envelope[CheckpointRead],
    responses={
        200: {"description": "The head is signed already: its checkpoint."},
        **errors_for(403, 409),
    },
    summary="Sign the journal's head now (admins and managers)",
    description="201 with a new checkpoint; 200 with the existing one when the head has not "
    "moved since it was signed; 409 when the journal has no entry. With a time-stamping "
    "authority configured, the token is requested once the checkpoint is stored.",
)
async def create_checkpoint(
    caller: CurrentWriter,
    db: RequestDb,
    settings: AppSettings,
    database: AppDatabase,
    response: Response,
    background: BackgroundTasks,
) -> Envelope[CheckpointRead]:
    row, created = await checkpoints.make(
        await db.executor(),
        keys.KeyStore(settings),
        caller.organization_id,
        tsa_url=settings.tsa_url,
    )
    if not created:
        response.status_code = 200
    elif settings.tsa_url:
        # After the answer, hence after the commit: no transaction waits on the authority.
        background.add_task(checkpoints.stamp_pending, database, settings)
    return Envelope(data=CheckpointRead.model_validate(row))


@router.get(
    "/rs/verification",
    operation_id="verifyRegister",
    response_model=Envelope[VerificationRead],
    responses=errors_for(),
    summary="Check the organisation's journal and checkpoints (any role)",
    description="Walks the journal: seq with no gap, every hash recomputed, every entry "
    "linked to the previous one, the head, every checkpoint's signature and hash. `valid` "
    "is false and `firstProblem` names the first broken entry or checkpoint.",
)
async def verify_register(caller: CurrentCaller, db: RequestDb) -> Envelope[VerificationRead]:
    found = await verification.verify(await db.executor(), caller.organization_id)
    return Envelope(
        data=VerificationRead.model_validate(
            {
                "valid": found.valid,
                "entries": found.entries,
                "head": found.head,
                "checkpoints": found.checkpoints,
                "first_problem": found.first_problem,
            }
        )
    )


@router.get(
    "/rs/export",
    operation_id="exportRegister",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The archive: journal, checkpoints, keys, signature files, and "
            "`verify_register.py` with its README (needs only Python and cryptography).",
        },
        **errors_for(400, 403, 422),
    },
    summary="The register as an archive anyone can verify offline (admins and managers)",
)
async def export_register(
    caller: CurrentWriter,
    db: RequestDb,
    storage: CurrentStorage,
    site_id: Annotated[
        QueryId | None,
        Query(alias="siteId", description="Only this site's signature files, and site.json."),
    ] = None,
) -> FileResponse:
    handle, name = tempfile.mkstemp(prefix="register-", suffix=".zip")
    os.close(handle)
    path = FilePath(name)
    try:
        await export.write_export(
            await db.executor(), storage, caller.organization_id, path, site_id=site_id
        )
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    suffix = f"-site-{site_id}" if site_id is not None else ""
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"register-{caller.organization_id}{suffix}.zip",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
