"""The signature images printed beside each check: read from the storage backend (local disk
or S3), checked, and reduced to a small PNG (deterministic bytes, a few kilobytes), so that a
register of a thousand checks stays small and a damaged upload cannot break the document."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from interventions.storage.service import LocalStorage, Storage

logger = logging.getLogger(__name__)

# Printed at most 2.8 cm x 1.2 cm: 330 x 140 pixels is 300 dpi there.
MAX_PIXELS = (330, 140)
# Larger uploads are not decoded for a printout (the limit on uploads is 10 MiB by default).
MAX_SOURCE_BYTES = 12 * 1024 * 1024
SHRINKERS = min(4, os.cpu_count() or 1)
NOT_UPLOADED = "signature not uploaded"
UNREADABLE = "signature image unreadable"


@dataclass(frozen=True)
class Signature:
    """A check's signature: a small PNG (``png``), or why there is none (``missing``)."""

    key: str
    png: bytes | None
    missing: str = NOT_UPLOADED


def shrink(data: bytes) -> bytes | None:
    """The image as a small grey-scale PNG, or ``None`` when it is not a readable image.

    Grey before resizing (one channel, not four), bilinear, and light PNG compression: the
    printout needs no more, and a register of a thousand signatures spends its time here.
    Pillow is imported here, when a register is printed: not in every serving process."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("L", (MAX_PIXELS[0] * 2, MAX_PIXELS[1] * 2))  # JPEG: decode smaller
            image.load()
            transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            grey = image.convert("LA" if transparent else "L")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    grey.thumbnail(MAX_PIXELS, resample=Image.Resampling.BILINEAR, reducing_gap=None)
    if transparent:
        # Ink on white: a transparent signature (drawn on a phone) prints as drawn.
        flat = Image.new("L", grey.size, 255)
        flat.paste(grey.getchannel("L"), mask=grey.getchannel("A"))
        grey = flat
    out = io.BytesIO()
    grey.save(out, format="PNG", compress_level=1)
    return out.getvalue()


class SignatureReader:
    """Reads each check's signature once per document."""

    def __init__(self, storage: Storage | None) -> None:
        self.storage = storage

    async def read(self, rows: Sequence[Any]) -> dict[int, Signature]:
        """The signatures of a batch of check rows (``id``, ``file_id``, ``storage_key``,
        ``uploaded_at``…) by intervention id, read and shrunk in one worker thread."""
        return await anyio.to_thread.run_sync(self._read_all, rows)

    def _read_all(self, rows: Sequence[Any]) -> dict[int, Signature]:
        # Pillow lets go of the GIL while it decodes, resizes and encodes: on several cores
        # the batch's images shrink side by side.
        with ThreadPoolExecutor(max_workers=SHRINKERS) as pool:
            return dict(zip([row.id for row in rows], pool.map(self._read, rows), strict=True))

    def _read(self, row: Any) -> Signature:
        key = f"sig-{row.id}"
        if row.file_id is None or row.uploaded_at is None or self.storage is None:
            return Signature(key, None)
        if row.size > MAX_SOURCE_BYTES:
            return Signature(key, None, UNREADABLE)
        try:
            data = self._bytes(row)
        except Exception:  # a file gone from the store must not stop the whole register
            logger.warning("signature %s of intervention %s cannot be read", row.file_id, row.id)
            return Signature(key, None)
        return Signature(key, shrink(data), UNREADABLE)

    def _bytes(self, row: Any) -> bytes:
        storage = self.storage
        if isinstance(storage, LocalStorage):
            return storage.read(row)
        # S3-compatible storage: the linked object under its final key.
        client: Any = getattr(storage, "client")  # noqa: B009 (S3Storage, loaded lazily)
        got = client.get_object(Bucket=getattr(storage, "bucket"), Key=row.storage_key)  # noqa: B009
        body = got["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data
