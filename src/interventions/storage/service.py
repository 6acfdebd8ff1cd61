"""Signature files: presigned upload URLs, verified uploads, downloads.

The embedded default keeps the bytes on local disk behind the service's own signed ``PUT``
route. ``Storage`` is the seam: ``make_storage`` picks it from the settings, local disk or
S3-compatible object storage (``interventions.storage.s3``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import uuid
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from interventions.config import Settings
from interventions.db import utcnow
from interventions.errors import AppError, BadRequest
from interventions.storage.models import StoredFile

UPLOAD_PREFIX = "/storage/v1/uploads/"

# Leading bytes of each accepted image type.
MAGIC = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/webp": (b"RIFF",),
}


class StorageUnavailable(AppError):
    """The object storage did not answer (or answered with an error of its own)."""

    status = 503
    slug = "storage-unavailable"
    title = "Service unavailable"


def looks_like(mime_type: str, head: bytes) -> bool:
    """Whether ``head`` (the first 12 bytes or more) starts an image of ``mime_type``."""
    magic = MAGIC.get(mime_type)
    if magic is None or not head.startswith(magic):
        return False
    return mime_type != "image/webp" or head[8:12] == b"WEBP"


class Storage(Protocol):
    """Where signature bytes live. A file is *linked* (``uploaded_at`` set) once verified."""

    def presign_put(self, stored: StoredFile, base_url: str) -> str:
        """A URL that takes one ``PUT`` of the file's bytes until it expires."""
        ...

    async def verify(self, stored: StoredFile) -> bool:
        """Whether bytes matching the announcement (size, type, image) are stored now.

        Bytes that do not match are discarded. Called for a file not yet marked uploaded.
        """
        ...

    async def download_response(self, stored: StoredFile) -> Response:
        """The answer to an authorised download of a verified file."""
        ...


class LocalStorage:
    """Files under ``root``; uploads through ``PUT /storage/v1/uploads/{id}`` signed by HMAC."""

    def __init__(self, root: Path, secret: str, ttl_seconds: int) -> None:
        self.root = root
        self.secret = secret.encode()
        self.ttl_seconds = ttl_seconds

    def _signature(self, file_id: str, expires: int) -> str:
        message = f"PUT\n{file_id}\n{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def presign_put(self, stored: StoredFile, base_url: str) -> str:
        expires = int(time.time()) + self.ttl_seconds
        query = urlencode({"expires": expires, "signature": self._signature(stored.id, expires)})
        return f"{base_url.rstrip('/')}{UPLOAD_PREFIX}{stored.id}?{query}"

    def check_signature(self, file_id: str, expires: int, signature: str) -> str | None:
        """``None`` when the URL is valid now, else why not."""
        if not hmac.compare_digest(
            self._signature(file_id, expires).encode(), signature.encode("utf-8", "replace")
        ):
            return "The upload URL signature is invalid."
        if expires < int(time.time()):
            return "The upload URL has expired."
        return None

    def _path(self, stored: StoredFile) -> Path:
        return self.root / stored.storage_key

    def write(self, stored: StoredFile, data: bytes) -> None:
        path = self._path(stored)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{uuid.uuid4().hex}.part")
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def read(self, stored: StoredFile) -> bytes:
        return self._path(stored).read_bytes()

    def _valid_on_disk(self, stored: StoredFile) -> bool:
        path = self._path(stored)
        if not path.is_file() or path.stat().st_size != stored.size:
            return False
        with open(path, "rb") as handle:
            return looks_like(stored.mime_type, handle.read(16))

    async def verify(self, stored: StoredFile) -> bool:
        # The signed route checks the bytes before writing them and marks the file itself;
        # this only finds a file written whose transaction did not commit.
        return await anyio.to_thread.run_sync(self._valid_on_disk, stored)

    async def download_response(self, stored: StoredFile) -> Response:
        data = await anyio.to_thread.run_sync(self.read, stored)
        return Response(
            data,
            media_type=stored.mime_type,
            headers={
                "Content-Disposition": f'inline; filename="{stored.id}"',
                "Cache-Control": "private, max-age=300",
            },
        )


def make_storage(settings: Settings, secret: str) -> Storage:
    """The configured backend: local disk (the default) or S3-compatible object storage."""
    if settings.storage_backend == "s3":
        from interventions.storage.s3 import S3Storage  # boto3 is only loaded when used

        return S3Storage.from_settings(settings)
    return LocalStorage(settings.storage_dir, secret, settings.upload_url_ttl_seconds)


def new_file(
    session: AsyncSession,
    *,
    organization_id: int,
    user_id: int,
    name: str,
    mime_type: str,
    size: int,
) -> StoredFile:
    file_id = uuid.uuid4().hex
    stored = StoredFile(
        id=file_id,
        organization_id=organization_id,
        name=name,
        mime_type=mime_type,
        size=size,
        storage_key=f"{organization_id}/{file_id}",
        created_by_user_id=user_id,
        created_at=utcnow(),
    )
    session.add(stored)
    return stored


def check_upload(stored: StoredFile, content_type: str, data: bytes) -> None:
    """The bytes must be what was announced: same type, same size, really that image type."""
    media = content_type.split(";", 1)[0].strip().lower()
    errors = []
    if media != stored.mime_type:
        errors.append(
            {
                "field": "Content-Type",
                "message": f"Announced as {stored.mime_type}, sent as {media or 'nothing'}.",
            }
        )
    if len(data) != stored.size:
        errors.append(
            {"field": "body", "message": f"Announced {stored.size} bytes, received {len(data)}."}
        )
    elif not looks_like(stored.mime_type, data):
        errors.append(
            {"field": "body", "message": f"The bytes are not a {stored.mime_type} image."}
        )
    if errors:
        raise BadRequest("The upload does not match the announced file.", errors=errors)
