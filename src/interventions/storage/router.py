"""Signed uploads (no auth headers: the URL is the credential) and authenticated downloads.

The signed ``PUT`` route serves the local backend only; with S3-compatible storage clients
upload to the object store, and the first download verifies and links what arrived there.

The upload route checks everything it can before reading a byte of the body (the URL's
signature and expiry, the file, whether it is stored already, the declared type and length),
then streams the body to disk under the size limit. It holds no database connection while
the body arrives: a slow phone does not keep a pool slot (or SQLite's write lock).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy import select, update
from starlette.requests import ClientDisconnect

from interventions.auth.dependencies import CurrentCaller
from interventions.db import Database, RequestSession, utcnow
from interventions.errors import BadRequest, Forbidden, NotFound
from interventions.interventions.models import Intervention
from interventions.openapi import errors_for
from interventions.storage.models import StoredFile
from interventions.storage.service import (
    AlreadyUploaded,
    LocalStorage,
    Storage,
    check_announced,
)
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
    operation_id="uploadFile",
    response_model=Envelope[StoredFileRead],
    responses=errors_for(400, 403, 404, 409, 413, auth=False),
    summary="Upload a file's bytes through its presigned URL",
    description=(
        "Single use: once the bytes are stored, another `PUT` to the URL is a 409 and the "
        "stored file is unchanged. The URL's signature and expiry are checked before the "
        "body is read."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": (
                "The image's bytes, as announced (type and size). `application/octet-stream` "
                "(what generated clients send for binary bodies) stands for the announced type; "
                "the leading bytes must be an image of that type either way."
            ),
            "content": {
                m: {"schema": {"type": "string", "format": "binary"}}
                for m in ("application/octet-stream", "image/jpeg", "image/png", "image/webp")
            },
        }
    },
)
async def upload(
    request: Request,
    file_id: FileId,
    expires: Annotated[int, Query(ge=0, le=2**53)],
    signature: Annotated[str, Query(min_length=1, max_length=128)],
) -> Envelope[StoredFileRead]:
    # Nothing here reads the body before the last step: a bogus URL costs no upload.
    storage: Storage = request.app.state.storage
    if not isinstance(storage, LocalStorage):
        # Uploads go straight to the object store's presigned URL.
        raise NotFound("This service takes no uploads: they go to the object storage.")
    problem = storage.check_signature(file_id, expires, signature)
    if problem:
        raise Forbidden(problem)
    db: Database = request.app.state.db
    async with db.reader() as session:
        stored = await session.get(StoredFile, file_id)
    if stored is None:
        raise NotFound(f"No file {file_id}.")
    if stored.uploaded_at is not None or storage.uploaded(stored):
        raise AlreadyUploaded(file_id)
    # A declared length past the limit was refused (413) by BodyGuard, before any of this.
    max_bytes: int = request.app.state.settings.signature_max_bytes
    content_length = request.headers.get("content-length")
    check_announced(stored, request.headers.get("content-type", ""), content_length)

    try:
        # Exclusive: of two uploads to the same URL, one is stored, the other is a 409.
        await storage.store(stored, request.stream(), max_bytes=max_bytes)
    except ClientDisconnect:
        raise BadRequest("The client went away before the end of the body.") from None
    # The file is the record (never replaced once linked); a lost write here is repaired by
    # the first download, as for any file found on disk but not marked.
    now = utcnow()
    async with db.writer() as session, session.begin():
        await session.execute(
            update(StoredFile)
            .where(StoredFile.id == file_id, StoredFile.uploaded_at.is_(None))
            .values(uploaded_at=now)
        )
    stored.uploaded_at = now
    return Envelope(data=StoredFileRead.model_validate(stored))


STORAGE_UNAVAILABLE = {
    "description": "The object storage cannot be reached.",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


@router.get(
    "/storage/v1/rs/files/{file_id}",
    operation_id="downloadFile",
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
            # A signature is readable as long as its intervention is: cancelled ones stay in
            # the register (SPEC §4.3), their evidence with them.
            select(StoredFile)
            .join(Intervention, Intervention.signature_file_id == StoredFile.id)
            .where(
                StoredFile.id == file_id,
                StoredFile.organization_id == caller.organization_id,
                Intervention.organization_id == caller.organization_id,
            )
        )
    ).scalar_one_or_none()
    if stored is None:
        raise NotFound(f"No uploaded file {file_id}.")
    storage: Storage = request.app.state.storage
    # Uploads that bypass the service (object storage) are checked when first asked for.
    if stored.uploaded_at is None and not await _link(request.app.state.db, storage, file_id):
        raise NotFound(f"No uploaded file {file_id}.")
    return await storage.download_response(stored)


async def _link(db: Database, storage: Storage, file_id: str) -> bool:
    """Verify and mark a file whose bytes arrived past the upload route, one linker at a time.

    The row stays locked (``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) from
    the check of ``uploaded_at`` to its update, verification included: two first downloads
    in any processes never link two different uploads, and the second finds the first's.
    """
    async with db.writer() as session, session.begin():
        stored = await session.get(StoredFile, file_id, with_for_update=True)
        if stored is None:
            return False
        if stored.uploaded_at is not None:
            return True
        if not await storage.verify(stored):
            return False
        stored.uploaded_at = utcnow()
    return True
