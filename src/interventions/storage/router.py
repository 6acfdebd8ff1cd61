"""Signed uploads (no auth headers: the URL is the credential) and authenticated downloads.

The signed ``PUT`` route serves the local backend only; with S3-compatible storage clients
upload to the object store, and the first download verifies and links what arrived there.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy import select, update

from interventions.auth.dependencies import CurrentCaller
from interventions.db import Database, RequestSession, utcnow
from interventions.errors import Forbidden, NotFound
from interventions.interventions.models import Intervention
from interventions.openapi import errors_for
from interventions.storage.models import StoredFile
from interventions.storage.service import LocalStorage, Storage, check_upload
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
    session: RequestSession,
) -> Envelope[StoredFileRead]:
    storage: Storage = request.app.state.storage
    if not isinstance(storage, LocalStorage):
        # Uploads go straight to the object store's presigned URL.
        raise NotFound("This service takes no uploads: they go to the object storage.")
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


STORAGE_UNAVAILABLE = {
    "description": "The object storage cannot be reached.",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


@router.get(
    "/storage/v1/rs/files/{file_id}",
    responses={
        200: {
            "content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}},
            "description": "The file's bytes (local storage).",
        },
        307: {
            "description": (
                "With S3-compatible storage: a redirect to a presigned `GET` of the file, "
                "valid for a few minutes. The first download verifies the uploaded object "
                "(size, type, image bytes) and links it; until a valid object is there, 404."
            ),
            "headers": {
                "Location": {
                    "description": "Presigned URL of the file's bytes.",
                    "schema": {"type": "string", "format": "uri"},
                }
            },
        },
        **errors_for(400, 404),
        503: STORAGE_UNAVAILABLE,
    },
    response_class=Response,
    summary="Download a stored file of the caller's organisation",
)
async def download(
    request: Request,
    file_id: FileId,
    caller: CurrentCaller,
    session: RequestSession,
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
    if stored is None:
        raise NotFound(f"No uploaded file {file_id}.")
    storage: Storage = request.app.state.storage
    if stored.uploaded_at is None:
        # Uploads that bypass the service (object storage) are checked when first asked for.
        if not await storage.verify(stored):
            raise NotFound(f"No uploaded file {file_id}.")
        await _mark_uploaded(request.app.state.db, file_id)
    return await storage.download_response(stored)


async def _mark_uploaded(db: Database, file_id: str) -> None:
    async with db.writer() as session, session.begin():
        await session.execute(
            update(StoredFile)
            .where(StoredFile.id == file_id, StoredFile.uploaded_at.is_(None))
            .values(uploaded_at=utcnow())
        )
