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
from starlette.requests import ClientDisconnect

from interventions.auth.dependencies import CurrentCaller
from interventions.config import AppSettings
from interventions.db import AppDatabase
from interventions.errors import BadRequest, Forbidden, NotFound
from interventions.handlers import LeanRoute
from interventions.openapi import errors_for
from interventions.storage import service
from interventions.storage.dependencies import CurrentStorage
from interventions.storage.service import LocalStorage
from interventions.transactions import RequestDb
from interventions.wire import DateTimeOut, Envelope, ReadModel

router = APIRouter(route_class=LeanRoute, tags=["storage"])

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
    storage: CurrentStorage,
    database: AppDatabase,
    settings: AppSettings,
) -> Envelope[StoredFileRead]:
    # Nothing here reads the body before the last step: a bogus URL costs no upload.
    if not isinstance(storage, LocalStorage):
        # Uploads go straight to the object store's presigned URL.
        raise NotFound("This service takes no uploads: they go to the object storage.")
    problem = storage.check_signature(file_id, expires, signature)
    if problem:
        raise Forbidden(problem)
    # A declared length past the limit was refused (413) by BodyGuard, before any of this.
    try:
        stored = await service.upload(
            database,
            storage,
            file_id,
            request.stream(),
            content_type=request.headers.get("content-type", ""),
            content_length=request.headers.get("content-length"),
            max_bytes=settings.signature_max_bytes,
        )
    except ClientDisconnect:
        raise BadRequest("The client went away before the end of the body.") from None
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
    file_id: FileId,
    caller: CurrentCaller,
    db: RequestDb,
    database: AppDatabase,
    storage: CurrentStorage,
) -> Response:
    stored = await service.downloadable(
        await db.executor(),
        database,
        storage,
        organization_id=caller.organization_id,
        file_id=file_id,
    )
    return await storage.download_response(stored)
