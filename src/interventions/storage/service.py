"""Signature files: presigned upload URLs, verified uploads, downloads.

The embedded default keeps the bytes on local disk behind the service's own signed ``PUT``
route. ``Storage`` is the seam for S3-compatible object storage.
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

from sqlalchemy.ext.asyncio import AsyncSession

from interventions.db import utcnow
from interventions.errors import BadRequest
from interventions.storage.models import StoredFile

UPLOAD_PREFIX = "/storage/v1/uploads/"

# Leading bytes of each accepted image type.
MAGIC = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/webp": (b"RIFF",),
}


class Storage(Protocol):
    def presign_put(self, stored: StoredFile, base_url: str) -> str: ...

    def write(self, stored: StoredFile, data: bytes) -> None: ...

    def read(self, stored: StoredFile) -> bytes: ...


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
    elif not data.startswith(MAGIC[stored.mime_type]) or (
        stored.mime_type == "image/webp" and data[8:12] != b"WEBP"
    ):
        errors.append(
            {"field": "body", "message": f"The bytes are not a {stored.mime_type} image."}
        )
    if errors:
        raise BadRequest("The upload does not match the announced file.", errors=errors)
