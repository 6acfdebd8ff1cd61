"""Signed uploads (no auth headers: the URL is the credential) and authenticated downloads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from interventions.auth.dependencies import CurrentCaller
from interventions.db import read_session, utcnow, write_session
from interventions.errors import Forbidden, NotFound
from interventions.interventions.models import Intervention
from interventions.openapi import errors_for
from interventions.storage.models import StoredFile
from interventions.storage.service import LocalStorage, check_upload
from interventions.wire import DateTimeOut, Envelope, ReadModel

router = APIRouter(tags=["storage"])

FileId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="Stored file id.")]


class StoredFileRead(ReadModel):
    id: str
    name: str
    mime_type: str
    size: int
    uploaded_at: DateTimeOut | None


@router.put(
    "/storage/v1/uploads/{file_id}",
    response_model=Envelope[StoredFileRead],
    responses=errors_for(400, 403, 404, 413, auth=False),
    summary="Upload a file's bytes through its presigned URL",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                m: {"schema": {"type": "string", "format": "binary"}}
                for m in ("image/jpeg", "image/png", "image/webp")
            },
        }
    },
)
async def upload(
    request: Request,
    file_id: FileId,
    expires: Annotated[int, Query(ge=0, le=2**53)],
    signature: Annotated[str, Query(min_length=1, max_length=128)],
    session: Annotated[AsyncSession, Depends(write_session, scope="function")],
) -> Envelope[StoredFileRead]:
    storage: LocalStorage = request.app.state.storage
    problem = storage.check_signature(file_id, expires, signature)
    if problem:
        raise Forbidden(problem)
    stored = await session.get(StoredFile, file_id, with_for_update=True)
    if stored is None:
        raise NotFound(f"No file {file_id}.")
    data = await request.body()
    check_upload(stored, request.headers.get("content-type", ""), data)
    storage.write(stored, data)
    stored.uploaded_at = utcnow()
    return Envelope(data=StoredFileRead.model_validate(stored))


@router.get(
    "/storage/v1/rs/files/{file_id}",
    responses={
        200: {
            "content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}},
            "description": "The file's bytes.",
        },
        **errors_for(400, 404),
    },
    response_class=Response,
    summary="Download a stored file of the caller's organisation",
)
async def download(
    request: Request,
    file_id: FileId,
    caller: CurrentCaller,
    session: Annotated[AsyncSession, Depends(read_session)],
) -> Response:
    stored = (
        await session.execute(
            # A signature is readable as long as its intervention is (not cancelled).
            select(StoredFile)
            .join(Intervention, Intervention.signature_file_id == StoredFile.id)
            .where(
                StoredFile.id == file_id,
                StoredFile.organization_id == caller.organization_id,
                Intervention.organization_id == caller.organization_id,
                Intervention.deleted_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if stored is None or stored.uploaded_at is None:
        raise NotFound(f"No uploaded file {file_id}.")
    storage: LocalStorage = request.app.state.storage
    return Response(
        storage.read(stored),
        media_type=stored.mime_type,
        headers={
            "Content-Disposition": f'inline; filename="{stored.id}"',
            "Cache-Control": "private, max-age=300",
        },
    )
