"""Signature files: presigned upload URLs, verified uploads, downloads.

The embedded default keeps the bytes on local disk behind the service's own signed ``PUT``
route. ``Storage`` is the seam: ``make_storage`` picks it from the settings, local disk or
S3-compatible object storage (``interventions.storage.s3``).

A signature is evidence: once stored it is never replaced. Locally the final file is created
with ``link(2)``, which fails when the name exists (atomic on one file system, across
processes), so of two uploads to one URL exactly one is stored and the other is a 409.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlencode

import anyio.to_thread
from starlette.responses import Response

from interventions.config import Settings
from interventions.db import Database, Executor, utcnow
from interventions.errors import AppError, BadRequest, Conflict, NotFound
from interventions.http import declared_length, too_large
from interventions.register import journal
from interventions.register.journal import Entry, Subject, system_actor
from interventions.storage import repository as repo
from interventions.wire import format_datetime

UPLOAD_PREFIX = "/storage/v1/uploads/"
# Where local uploads are streamed before being linked under their final name (same file
# system as the final files, so that the link is a link and not a copy).
PARTIAL_DIR = ".partial"
# Bytes gathered in memory before one write to the partial file (in a worker thread).
WRITE_BATCH_BYTES = 256 * 1024
# Enough for every magic number in ``MAGIC`` (WebP needs bytes 8 to 11).
HEAD_BYTES = 16

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


class AlreadyUploaded(Conflict):
    """The file's bytes are stored already: an upload URL stores one signature, once."""

    slug = "already-uploaded"

    def __init__(self, file_id: str) -> None:
        super().__init__(
            f"File {file_id} is already uploaded: an upload URL takes a single upload and a "
            "stored signature is never replaced."
        )


class FileRecord(Protocol):
    """What storage reads of a stored file: its row's record (or a ``StoredFile``)."""

    @property
    def id(self) -> str: ...
    @property
    def organization_id(self) -> int: ...
    @property
    def mime_type(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def storage_key(self) -> str: ...
    @property
    def uploaded_at(self) -> dt.datetime | None: ...
    @property
    def created_at(self) -> dt.datetime: ...


def looks_like(mime_type: str, head: bytes) -> bool:
    """Whether ``head`` (the first 12 bytes or more) starts an image of ``mime_type``."""
    magic = MAGIC.get(mime_type)
    if magic is None or not head.startswith(magic):
        return False
    return mime_type != "image/webp" or head[8:12] == b"WEBP"


class Storage(Protocol):
    """Where signature bytes live. A file is *linked* (``uploaded_at`` set) once verified."""

    def presign_put(self, stored: FileRecord, base_url: str) -> str:
        """A URL that takes one ``PUT`` of the file's bytes until it expires."""
        ...

    async def verify(self, stored: FileRecord) -> bool:
        """Whether bytes matching the announcement (size, type, image) are stored now.

        Bytes that do not match are discarded, and so is a second upload found once bytes
        are linked: those stay. Called for a file not yet marked uploaded, by one caller at
        a time (the router holds the file's row).
        """
        ...

    async def digest(self, stored: FileRecord) -> str:
        """The SHA-256 (hex) of a verified file's bytes, which the journal records."""
        ...

    async def download_response(self, stored: FileRecord) -> Response:
        """The answer to an authorised download of a verified file."""
        ...

    def read(self, stored: FileRecord) -> bytes:
        """A linked file's bytes (blocking: run it in a worker thread); ``FileNotFoundError``
        when they are gone. For the register's export."""
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

    def presign_put(self, stored: FileRecord, base_url: str) -> str:
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

    def _path(self, stored: FileRecord) -> Path:
        return self.root / stored.storage_key

    @property
    def partial_dir(self) -> Path:
        return self.root / PARTIAL_DIR

    def uploaded(self, stored: FileRecord) -> bool:
        """Whether the final file exists (its database write may have been lost)."""
        return self._path(stored).exists()

    async def store(
        self, stored: FileRecord, chunks: AsyncIterable[bytes], *, max_bytes: int
    ) -> str:
        """Stream ``chunks`` to a partial file, check them, and link them as the file's bytes.

        Reading stops at the first byte past ``max_bytes`` (413) or past the announced size
        (400); bytes that are not the announced image are a 400; a file already stored is a
        409 and is left as it was. The partial file is removed whatever happens. The bytes'
        SHA-256 (hex).
        """
        partial = self.partial_dir / f"{stored.id}.{uuid.uuid4().hex}"
        handle = await anyio.to_thread.run_sync(_create_partial, partial)
        try:
            try:
                size, head, digest = await _stream_to(handle, chunks, stored, max_bytes)
                _check_received(stored, size, head)
                await anyio.to_thread.run_sync(_sync, handle)
            finally:
                handle.close()
            await anyio.to_thread.run_sync(self._link, partial, stored)
        finally:
            # Also on cancellation (client gone): no await here, a plain unlink.
            partial.unlink(missing_ok=True)
        return digest

    def _link(self, partial: Path, stored: FileRecord) -> None:
        path = self._path(stored)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(partial, path)  # fails if the name exists: never replaces a signature
        except FileExistsError:
            raise AlreadyUploaded(stored.id) from None
        _sync_dir(path.parent)

    def read(self, stored: FileRecord) -> bytes:
        return self._path(stored).read_bytes()

    async def digest(self, stored: FileRecord) -> str:
        data = await anyio.to_thread.run_sync(self.read, stored)
        return hashlib.sha256(data).hexdigest()

    def _valid_on_disk(self, stored: FileRecord) -> bool:
        path = self._path(stored)
        if not path.is_file() or path.stat().st_size != stored.size:
            return False
        with open(path, "rb") as handle:
            return looks_like(stored.mime_type, handle.read(HEAD_BYTES))

    async def verify(self, stored: FileRecord) -> bool:
        # The signed route checks the bytes before writing them and marks the file itself;
        # this only finds a file written whose transaction did not commit.
        return await anyio.to_thread.run_sync(self._valid_on_disk, stored)

    async def download_response(self, stored: FileRecord) -> Response:
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


async def create_file(
    db: Executor,
    *,
    organization_id: int,
    user_id: int | None,
    name: str,
    mime_type: str,
    size: int,
    actor: dict[str, Any],
) -> Any:
    """A stored file awaiting its bytes: its row (a record with the columns of
    ``StoredFile``), for ``presign_put`` to sign an upload of; announced in the journal."""
    file_id = uuid.uuid4().hex
    changes = {"name": name, "mimeType": mime_type, "size": size}
    journal.record(db, organization_id, Entry("announce", Subject.FILE, file_id, changes, actor))
    return await repo.insert_file(
        db,
        id=file_id,
        organization_id=organization_id,
        name=name,
        mime_type=mime_type,
        size=size,
        storage_key=f"{organization_id}/{file_id}",
        created_by_user_id=user_id,
    )


async def upload(
    database: Database,
    storage: LocalStorage,
    file_id: str,
    chunks: AsyncIterable[bytes],
    *,
    content_type: str,
    content_length: str | None,
    max_bytes: int,
) -> Any:
    """Store a file's bytes, sent to its signed URL (checked by the caller); the file's
    record, marked uploaded.

    Whatever can refuse the upload is checked before a byte of ``chunks`` is read (the file,
    whether it is stored already, the declared type and length). No database connection is
    held while the body arrives: a slow phone keeps no pool slot (or SQLite's write lock).
    """
    async with database.transaction(write=False) as db:
        stored = await repo.file_to_upload(db, file_id)
    if stored is None:
        raise NotFound(f"No file {file_id}.")
    if stored.uploaded_at is not None or storage.uploaded(stored):
        raise AlreadyUploaded(file_id)
    check_announced(stored, content_type, content_length)
    # Exclusive: of two uploads to the same URL, one is stored, the other is a 409.
    digest = await storage.store(stored, chunks, max_bytes=max_bytes)
    # The file is the record (never replaced once linked); a lost write here is repaired by
    # the first download, as for any file found on disk but not marked.
    now = utcnow()
    async with database.transaction() as db:
        await _mark_uploaded(db, stored, now, digest)
    return stored._replace(uploaded_at=now)


async def _mark_uploaded(db: Executor, stored: FileRecord, now: dt.datetime, digest: str) -> None:
    """Mark the file's bytes stored, and the journal's entry with their SHA-256, unless it
    was already (a concurrent linker)."""
    marked = await repo.mark_uploaded(
        db, organization_id=stored.organization_id, file_id=stored.id, uploaded_at=now
    )
    if marked:
        changes = {"sha256": digest, "size": stored.size, "uploadedAt": format_datetime(now)}
        entry = Entry("upload", Subject.FILE, stored.id, changes, system_actor("storage"))
        journal.record(db, stored.organization_id, entry)


async def downloadable(
    db: Executor, database: Database, storage: Storage, *, organization_id: int, file_id: str
) -> Any:
    """The organisation's signature file, its bytes verified (a record), else 404.

    Bytes that arrived past the upload route (object storage, or a mark lost after a local
    upload) are verified and the file linked on its first download, in a transaction of
    its own (see ``link``): nothing else tells the service that an upload to the object
    store is complete.
    """
    stored = await repo.downloadable(db, organization_id=organization_id, file_id=file_id)
    if stored is None or (
        stored.uploaded_at is None
        and not await link(database, storage, organization_id=organization_id, file_id=file_id)
    ):
        raise NotFound(f"No uploaded file {file_id}.")
    return stored


async def link(database: Database, storage: Storage, *, organization_id: int, file_id: str) -> bool:
    """Verify and mark a file whose bytes arrived past the upload route, one linker at a time.

    The row stays locked (``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) from
    the check of ``uploaded_at`` to its update, verification included: two first downloads
    in any processes never link two different uploads, and the second finds the first's.
    """
    async with database.transaction() as db:
        stored = await repo.locked(db, organization_id=organization_id, file_id=file_id)
        if stored is None:
            return False
        if stored.uploaded_at is not None:
            return True
        if not await storage.verify(stored):
            return False
        await _mark_uploaded(db, stored, utcnow(), await storage.digest(stored))
    return True


def check_announced(stored: FileRecord, content_type: str, content_length: str | None) -> None:
    """Before a byte of the body is read: the declared type and length must be the announced
    ones (400 otherwise)."""
    media = content_type.split(";", 1)[0].strip().lower()
    errors = []
    # Clients generated from the OpenAPI document send binary bodies as octet-stream: the
    # announced type then stands, and the leading bytes are still checked against it.
    if media not in (stored.mime_type, "application/octet-stream"):
        errors.append(
            {
                "field": "Content-Type",
                "message": f"Announced as {stored.mime_type}, sent as {media or 'nothing'}.",
            }
        )
    declared = declared_length(content_length)
    if declared is not None and declared != stored.size:
        errors.append(
            {
                "field": "body",
                "message": f"Announced {stored.size} bytes, Content-Length is {declared}.",
            }
        )
    if errors:
        raise BadRequest("The upload does not match the announced file.", errors=errors)


def _mismatch(message: str) -> BadRequest:
    return BadRequest(
        "The upload does not match the announced file.",
        errors=[{"field": "body", "message": message}],
    )


async def _stream_to(
    handle: BinaryIO, chunks: AsyncIterable[bytes], stored: FileRecord, max_bytes: int
) -> tuple[int, bytes, str]:
    """Write ``chunks`` to ``handle`` as they arrive; the size received, its first bytes and
    the SHA-256 (hex) of them all.

    Stops reading at the first chunk past the limit or past the announced size.
    """
    size = 0
    head = b""
    sha = hashlib.sha256()
    pending: list[bytes] = []
    pending_size = 0
    async for chunk in chunks:
        if not chunk:
            continue
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        if size > stored.size:
            raise _mismatch(f"Announced {stored.size} bytes, received more.")
        if len(head) < HEAD_BYTES:
            head += chunk[: HEAD_BYTES - len(head)]
        sha.update(chunk)
        pending.append(chunk)
        pending_size += len(chunk)
        if pending_size >= WRITE_BATCH_BYTES:
            await anyio.to_thread.run_sync(handle.write, b"".join(pending))
            pending, pending_size = [], 0
    if pending:
        await anyio.to_thread.run_sync(handle.write, b"".join(pending))
    return size, head, sha.hexdigest()


def _check_received(stored: FileRecord, size: int, head: bytes) -> None:
    if size != stored.size:
        raise _mismatch(f"Announced {stored.size} bytes, received {size}.")
    if not looks_like(stored.mime_type, head):
        raise _mismatch(f"The bytes are not a {stored.mime_type} image.")


def _create_partial(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    return os.fdopen(fd, "wb")


def _sync(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _sync_dir(path: Path) -> None:
    """Make a new directory entry durable (the link itself, not only the bytes)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
