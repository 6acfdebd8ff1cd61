"""Signature files in S3-compatible object storage (AWS S3, MinIO, Ceph, R2, moto, ...).

The client uploads straight to the object store with a presigned ``PUT`` (signature v4,
``Content-Type`` and ``Content-Length`` signed: the store itself refuses other sizes and
types once it checks signatures). The bytes land under a staging key,
``incoming/<storage_key>``. Nothing is linked until the service has verified them: a ``HEAD``
(size, type, upload time) and a ranged ``GET`` of the first bytes (image magic). Verified
bytes are copied, pinned to the verified ETag, to ``<storage_key>``, which no URL handed to a
client can write; rejected bytes are deleted. Downloads are redirects to a short-lived
presigned ``GET`` of ``<storage_key>``.

Single use, as far as the service can make it: the presigned ``PUT`` goes to the object
store, which takes it as often as the URL is valid (S3 has no single-use URLs). What the
service controls is the link: a linked ``<storage_key>`` is never written again. A staging
object found once the file is linked is a second upload: it is deleted, never copied over
the first (the router serialises linkers on the file's row, so two verifications never run
at once). One left behind after the file was marked (nothing verifies it then) is never
linked either; a bucket lifecycle rule expiring ``incoming/`` after a day keeps the bucket
clean.

boto3 is synchronous: every call that may touch the network runs in a worker thread.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from functools import lru_cache
from typing import Any

import anyio.to_thread
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from starlette.responses import RedirectResponse, Response

from interventions.config import Settings
from interventions.storage.service import (
    HEAD_BYTES,
    FileRecord,
    StorageUnavailable,
    looks_like,
)

logger = logging.getLogger(__name__)

INCOMING_PREFIX = "incoming/"


_client_lock = threading.Lock()


@lru_cache(maxsize=1)
def _session() -> Any:
    """One boto3 session per process: it loads the service models once."""
    return boto3.session.Session()


def _status(error: ClientError) -> int:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return int(status or 0)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _not_found(error: ClientError) -> bool:
    return _status(error) == 404 or _code(error) in {"404", "NoSuchKey", "NotFound"}


def _changed(error: ClientError) -> bool:
    return _status(error) == 412 or _code(error) == "PreconditionFailed"


class S3Storage:
    """The ``Storage`` seam on any S3 endpoint, with path-style addressing and SigV4."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        upload_ttl_seconds: int,
        download_ttl_seconds: int = 300,
        clock_tolerance_seconds: float = 5.0,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.upload_ttl_seconds = upload_ttl_seconds
        self.download_ttl_seconds = download_ttl_seconds
        # Allowed difference between the object store's clock and ours when telling whether
        # an object was written after its upload URL expired.
        self.clock_tolerance_seconds = clock_tolerance_seconds

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> S3Storage:
        if not settings.s3_bucket:
            raise ValueError("storage_backend is 's3' but s3_bucket is empty.")
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        )
        with _client_lock:  # sessions are not thread-safe; their clients are
            client = _session().client(
                "s3",
                endpoint_url=settings.s3_endpoint_url or None,
                region_name=settings.s3_region or None,
                # Empty: boto3's own chain (environment, profile, instance role).
                aws_access_key_id=settings.s3_access_key_id or None,
                aws_secret_access_key=settings.s3_secret_access_key or None,
                config=config,
            )
        return cls(
            client,
            settings.s3_bucket,
            upload_ttl_seconds=settings.upload_url_ttl_seconds,
            **options,
        )

    @staticmethod
    def incoming_key(stored: FileRecord) -> str:
        return INCOMING_PREFIX + stored.storage_key

    # -- Storage -----------------------------------------------------------------------

    def presign_put(self, stored: FileRecord, base_url: str) -> str:
        # Computed locally (no request to the store); ``base_url`` is the service's own.
        url: str = self.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.incoming_key(stored),
                "ContentType": stored.mime_type,
                "ContentLength": stored.size,
            },
            ExpiresIn=self.upload_ttl_seconds,
        )
        return url

    async def verify(self, stored: FileRecord) -> bool:
        try:
            return await anyio.to_thread.run_sync(self._verify, stored)
        except (BotoCoreError, ClientError) as exc:
            logger.warning("object storage error verifying %s", stored.id, exc_info=True)
            raise StorageUnavailable("The object storage cannot be reached.") from exc

    async def digest(self, stored: FileRecord) -> str:
        try:
            return await anyio.to_thread.run_sync(self._digest, stored)
        except (BotoCoreError, ClientError) as exc:
            logger.warning("object storage error reading %s", stored.id, exc_info=True)
            raise StorageUnavailable("The object storage cannot be reached.") from exc

    async def download_response(self, stored: FileRecord) -> Response:
        try:
            url = await anyio.to_thread.run_sync(self.presign_get, stored)
        except (BotoCoreError, ClientError) as exc:
            logger.warning("object storage error presigning %s", stored.id, exc_info=True)
            raise StorageUnavailable("The object storage cannot be reached.") from exc
        # The Location is a credential of its own: never cached on the way.
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})

    # -- Workers (blocking, run in threads) ----------------------------------------------

    def presign_get(self, stored: FileRecord) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": stored.storage_key,
                "ResponseContentType": stored.mime_type,
                "ResponseContentDisposition": f'inline; filename="{stored.id}"',
                "ResponseCacheControl": "private, max-age=300",
            },
            ExpiresIn=self.download_ttl_seconds,
        )
        return url

    def read(self, stored: FileRecord) -> bytes:
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=stored.storage_key)
        except ClientError as exc:
            if _not_found(exc):
                raise FileNotFoundError(stored.storage_key) from exc
            raise StorageUnavailable("The object storage cannot be reached.") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("The object storage cannot be reached.") from exc
        body = got["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise
        return head

    def _first_bytes(self, key: str, etag: str) -> bytes | None:
        """The object's first bytes, ``None`` when it is gone or no longer ``etag``."""
        try:
            got = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes=0-{HEAD_BYTES - 1}", IfMatch=etag
            )
        except ClientError as exc:
            if _not_found(exc) or _changed(exc):
                return None
            raise
        body = got["Body"]
        try:
            data: bytes = body.read(HEAD_BYTES)
        finally:
            body.close()
        return data

    def _digest(self, stored: FileRecord) -> str:
        body = self.client.get_object(Bucket=self.bucket, Key=stored.storage_key)["Body"]
        sha = hashlib.sha256()
        try:
            for chunk in iter(lambda: body.read(64 * 1024), b""):
                sha.update(chunk)
        finally:
            body.close()
        return sha.hexdigest()

    def _linked(self, stored: FileRecord) -> bool:
        return self._head(stored.storage_key) is not None

    def _problem(self, stored: FileRecord, head: dict[str, Any]) -> str | None:
        size = int(head.get("ContentLength", -1))
        if size != stored.size:
            return f"announced {stored.size} bytes, stored {size}"
        media = str(head.get("ContentType", "")).split(";", 1)[0].strip().lower()
        if media != stored.mime_type:
            return f"announced as {stored.mime_type}, stored as {media or 'nothing'}"
        modified = head.get("LastModified")
        deadline = stored.created_at + dt.timedelta(
            seconds=self.upload_ttl_seconds + self.clock_tolerance_seconds
        )
        # Stores that do not enforce the URL's expiry (moto does not) are held to it here.
        if isinstance(modified, dt.datetime) and modified > deadline:
            return f"written at {modified.isoformat()}, after its upload URL expired"
        return None

    def _verify(self, stored: FileRecord) -> bool:
        incoming = self.incoming_key(stored)
        if self._linked(stored):
            # Linked by a verification whose database write was lost: that object is the
            # signature. Anything staged now is a second upload, and is not linked.
            if self._head(incoming) is not None:
                logger.info("discarded a second upload of file %s: already uploaded", stored.id)
                self.client.delete_object(Bucket=self.bucket, Key=incoming)
            return True
        head = self._head(incoming)
        if head is None:
            return False  # nothing uploaded
        etag = str(head["ETag"])
        problem = self._problem(stored, head)
        if problem is None:
            first = self._first_bytes(incoming, etag)
            if first is None:  # replaced or taken by a concurrent verification
                return self._linked(stored)
            if not looks_like(stored.mime_type, first):
                problem = f"the bytes are not a {stored.mime_type} image"
        if problem is not None:
            logger.info("rejected upload of file %s: %s", stored.id, problem)
            self.client.delete_object(Bucket=self.bucket, Key=incoming)
            return False
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=stored.storage_key,
                CopySource={"Bucket": self.bucket, "Key": incoming},
                CopySourceIfMatch=etag,
                ContentType=stored.mime_type,
                MetadataDirective="REPLACE",
            )
        except ClientError as exc:
            if _not_found(exc) or _changed(exc):
                return self._linked(stored)
            raise
        self.client.delete_object(Bucket=self.bucket, Key=incoming)
        return True
