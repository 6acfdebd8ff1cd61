"""Signature uploads through the presigned URL, and downloads (SPEC §5, seed 001).

Every request goes through HTTP, as a phone would send it: the URL returned by
``POST /interventions/v2/mb/preventive/unplanned`` is the only credential of the ``PUT``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import uvicorn
from sqlalchemy import select, update

from interventions.config import Settings
from interventions.storage.models import StoredFile
from interventions.storage.service import PARTIAL_DIR, WRITE_BATCH_BYTES, LocalStorage
from tests.factories import Org
from tests.helpers import IMAGES, JPEG, PNG, UNPLANNED, WEBP, assert_storage_problem
from tests.smtp_server import free_port

MAX_BYTES = 10 * 1024 * 1024  # the default limit (SPEC §5: 1 byte to 10 MiB)

PNG_OF_JPEG_SIZE = PNG + bytes(len(JPEG) - len(PNG))


class Upload:
    """An announced signature: its intervention, its presigned URL and its download path."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.intervention: dict[str, Any] = payload["data"]
        self.url: str = payload["presignedUrl"]
        self.download: str = self.intervention["imgSignature"]
        parts = urlsplit(self.url)
        self.path = parts.path
        self.file_id = parts.path.rsplit("/", 1)[1]
        query = parse_qs(parts.query)
        self.expires = int(query["expires"][0])
        self.signature = query["signature"][0]

    def with_query(self, **params: Any) -> str:
        query = {"expires": self.expires, "signature": self.signature, **params}
        return f"http://testserver{self.path}?{urlencode(query)}"


async def announce(
    client: httpx.AsyncClient, org: Org, mime: str, size: int, name: str = "signature"
) -> Upload:
    r = await client.post(
        UNPLANNED,
        json={
            "companyId": org.company_ids[0],
            "siteIds": [org.site_ids[0]],
            "ruleIds": [org.rule_ids[0]],
            "signature": {"name": name, "mimeType": mime, "size": size},
            "provider": {"firstName": "Ann", "lastName": "Lee"},
        },
        headers=org.manager.headers,
    )
    assert r.status_code == 201, r.text
    return Upload(r.json())


def stored_files(settings: Settings) -> list[Path]:
    root = settings.storage_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def assert_not_downloadable(client: httpx.AsyncClient, org: Org, upload: Upload) -> None:
    r = await client.get(upload.download, headers=org.viewer.headers)
    assert_storage_problem(r, 404)


@pytest.mark.parametrize("mime", sorted(IMAGES))
async def test_upload_then_download(
    client: httpx.AsyncClient, factory: Any, settings: Settings, mime: str
) -> None:
    org: Org = await factory.org()
    image = IMAGES[mime]
    upload = await announce(client, org, mime, len(image), name=f"s.{mime.split('/')[1]}")
    assert upload.download == f"/storage/v1/rs/files/{upload.file_id}"
    # A real, expiring URL: 15 minutes by default.
    assert abs(upload.expires - (time.time() + 15 * 60)) < 60

    # The URL is the credential: no session headers.
    put = await client.put(upload.url, content=image, headers={"content-type": mime})
    assert put.status_code == 200, put.text
    assert put.headers["content-type"] == "application/json"
    stored = put.json()["data"]
    assert stored["id"] == upload.file_id
    assert stored["mimeType"] == mime
    assert stored["size"] == len(image)
    assert stored["uploadedAt"] is not None

    for member in (org.admin, org.manager, org.viewer):
        got = await client.get(upload.download, headers=member.headers)
        assert got.status_code == 200, got.text
        assert got.content == image
        assert got.headers["content-type"] == mime
    assert len(stored_files(settings)) == 1
    assert stored_files(settings)[0].read_bytes() == image

    # The intervention still points at the same file.
    r = await client.get(
        f"/interventions/v2/rs/{upload.intervention['id']}", headers=org.viewer.headers
    )
    assert r.status_code == 200
    assert r.json()["data"]["imgSignature"] == upload.download


async def test_download_needs_a_session(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    upload = await announce(client, org, "image/jpeg", len(JPEG))
    assert (
        await client.put(upload.url, content=JPEG, headers={"content-type": "image/jpeg"})
    ).status_code == 200
    assert_storage_problem(await client.get(upload.download), 401)


async def test_download_before_upload_is_404(
    client: httpx.AsyncClient, factory: Any, settings: Settings
) -> None:
    org: Org = await factory.org()
    upload = await announce(client, org, "image/png", len(PNG))
    await assert_not_downloadable(client, org, upload)
    assert stored_files(settings) == []


async def test_download_by_another_organisation_is_404(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    other: Org = await factory.org()
    upload = await announce(client, org, "image/jpeg", len(JPEG))
    put = await client.put(upload.url, content=JPEG, headers={"content-type": "image/jpeg"})
    assert put.status_code == 200, put.text
    r = await client.get(upload.download, headers=other.admin.headers)
    body = assert_storage_problem(r, 404)
    assert JPEG[:16] not in r.content
    # Exactly as a file that does not exist.
    missing = await client.get("/storage/v1/rs/files/" + "0" * 32, headers=other.admin.headers)
    assert_storage_problem(missing, 404)
    assert body["title"] == missing.json()["title"]


@pytest.mark.parametrize(
    "content_type",
    ["image/png", "application/json", "text/plain", None],
)
async def test_wrong_content_type_is_400(
    client: httpx.AsyncClient, factory: Any, settings: Settings, content_type: str | None
) -> None:
    org: Org = await factory.org()
    upload = await announce(client, org, "image/jpeg", len(JPEG))
    headers = {"content-type": content_type} if content_type else {}
    r = await client.put(upload.url, content=JPEG, headers=headers)
    body = assert_storage_problem(r, 400)
    assert [e["field"] for e in body["errors"]] == ["Content-Type"]
    assert stored_files(settings) == []
    await assert_not_downloadable(client, org, upload)
    # A failed attempt does not spend the URL: the right request still works.
    ok = await client.put(upload.url, content=JPEG, headers={"content-type": "image/jpeg"})
    assert ok.status_code == 200, ok.text


async def test_octet_stream_takes_the_announced_type(
    client: httpx.AsyncClient, factory: Any, settings: Settings
) -> None:
    """Generated clients send binary bodies as application/octet-stream: the announced type
    stands, and the leading bytes are still checked against it."""
    org: Org = await factory.org()
    upload = await announce(client, org, "image/jpeg", len(JPEG))
    octet = {"content-type": "application/octet-stream"}
    r = await client.put(upload.url, content=PNG_OF_JPEG_SIZE, headers=octet)
    assert_storage_problem(r, 400)
    assert stored_files(settings) == []
    r = await client.put(upload.url, content=JPEG, headers=octet)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["mimeType"] == "image/jpeg"


@pytest.mark.parametrize("delta", [-1, 1, -len(JPEG) + 1])
async def test_size_other_than_announced_is_400(
    client: httpx.AsyncClient, factory: Any, settings: Settings, delta: int
) -> None:
    org: Org = await factory.org()
    upload = await announce(client, org, "image/jpeg", len(JPEG))
    data = JPEG[: len(JPEG) + delta] if delta < 0 else JPEG + b"\x00" * delta
    r = await client.put(upload.url, content=data, headers={"content-type": "image/jpeg"})
    body = assert_storage_problem(r, 400)
    assert "body" in [e["field"] for e in body["errors"]]
    assert stored_files(settings) == []
    await assert_not_downloadable(client, org, upload)


async def test_empty_body_is_400(
    client: httpx.AsyncClient, factory: Any, settings: Settings
) -> None:
    org: Org = await factory.org()
    upload = await announce(client, org, "image/png", len(PNG))
    r = await client.put(upload.url, content=b"", headers={"content-type": "image/png"})
    assert_storage_problem(r, 400)
    assert stored_files(settings) == []


@pytest.mark.parametrize(
    ("mime", "data"),
    [
        ("image/jpeg", PNG[: len(JPEG)].ljust(len(JPEG), b"\x00")),  # a PNG sent as JPEG
        ("image/png", JPEG[: len(PNG)]),  # a JPEG sent as PNG
        ("image/webp", b"RIFF\x00\x10\x00\x00WAVE" + WEBP[12:]),  # RIFF, but not WebP
        ("image/jpeg", b"GIF89a" + JPEG[6:]),
        ("image/png", b"<svg xmlns='http://www.w3.org/2000/svg'/>".ljust(len(PNG), b" ")),
    ],
    ids=["png-as-jpeg", "jpeg-as-png", "wave-as-webp", "gif-as-jpeg", "svg-as-png"],
)
async def test_bytes_not_of_the_announced_type_are_400(
    client: httpx.AsyncClient, factory: Any, settings: Settings, mime: str, data: bytes
) -> None:
    org: Org = await factory.org()
    upload = await announce(client, org, mime, len(data))
    r = await client.put(upload.url, content=data, headers={"content-type": mime})
    body = assert_storage_problem(r, 400)
    assert [e["field"] for e in body["errors"]] == ["body"]
    assert stored_files(settings) == []
    await assert_not_downloadable(client, org, upload)


def _flip(signature: str) -> str:
    return ("0" if signature[0] != "0" else "1") + signature[1:]


@pytest.mark.parametrize(
    "tamper",
    ["flipped", "truncated", "zeros", "non-ascii", "later-expiry", "missing"],
)
async def test_tampered_url_is_403(
    client: httpx.AsyncClient, factory: Any, settings: Settings, tamper: str
) -> None:
    org: Org = await factory.org()
    upload = await announce(client, org, "image/jpeg", len(JPEG))
    url = {
        "flipped": upload.with_query(signature=_flip(upload.signature)),
        "truncated": upload.with_query(signature=upload.signature[:-2]),
        "zeros": upload.with_query(signature="0" * len(upload.signature)),
        "non-ascii": upload.with_query(signature="é" + upload.signature[1:]),
        "later-expiry": upload.with_query(expires=upload.expires + 3600),
        "missing": upload.with_query(signature=""),
    }[tamper]
    r = await client.put(url, content=JPEG, headers={"content-type": "image/jpeg"})
    # Without its signature the URL is malformed (400); with a wrong one, refused (403).
    assert_storage_problem(r, 400 if tamper == "missing" else 403)
    assert stored_files(settings) == []
    await assert_not_downloadable(client, org, upload)


async def test_signature_of_another_file_is_403(
    client: httpx.AsyncClient, factory: Any, settings: Settings
) -> None:
    org: Org = await factory.org()
    first = await announce(client, org, "image/jpeg", len(JPEG))
    second = await announce(client, org, "image/jpeg", len(JPEG))
    # The first file's (valid) signature and expiry on the second file's path.
    url = f"http://testserver{second.path}?" + urlencode(
        {"expires": first.expires, "signature": first.signature}
    )
    r = await client.put(url, content=JPEG, headers={"content-type": "image/jpeg"})
    assert_storage_problem(r, 403)
    assert stored_files(settings) == []
    await assert_not_downloadable(client, org, second)
    await assert_not_downloadable(client, org, first)


async def test_expired_url_is_403(
    client: httpx.AsyncClient, app: Any, factory: Any, settings: Settings
) -> None:
    org: Org = await factory.org()
    upload = await announce(client, org, "image/png", len(PNG))
    storage: LocalStorage = app.state.storage
    # The same key and file, signed with an expiry one minute in the past.
    past = LocalStorage(storage.root, app.state.secret, ttl_seconds=-60)
    expired_url = past.presign_put(StoredFile(id=upload.file_id), "http://testserver")
    query = parse_qs(urlsplit(expired_url).query)
    assert int(query["expires"][0]) < time.time()
    r = await client.put(expired_url, content=PNG, headers={"content-type": "image/png"})
    assert_storage_problem(r, 403)
    assert stored_files(settings) == []
    await assert_not_downloadable(client, org, upload)
    # The URL the service handed out is still valid.
    ok = await client.put(upload.url, content=PNG, headers={"content-type": "image/png"})
    assert ok.status_code == 200, ok.text


@pytest.fixture
async def short_lived_client(settings: Settings, database: Any) -> AsyncIterator[Any]:
    from interventions.app import create_app

    app = create_app(settings.model_copy(update={"upload_url_ttl_seconds": 1}), database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_url_expires_after_its_ttl(
    short_lived_client: httpx.AsyncClient, factory: Any, settings: Settings
) -> None:
    org: Org = await factory.org()
    upload = await announce(short_lived_client, org, "image/jpeg", len(JPEG))
    assert upload.expires <= time.time() + 2
    await asyncio.sleep(max(0.0, upload.expires + 1.1 - time.time()))  # past it, whole seconds
    r = await short_lived_client.put(
        upload.url, content=JPEG, headers={"content-type": "image/jpeg"}
    )
    assert_storage_problem(r, 403)
    assert stored_files(settings) == []


async def test_body_over_the_limit_is_413(
    client: httpx.AsyncClient, factory: Any, settings: Settings
) -> None:
    assert settings.signature_max_bytes == MAX_BYTES
    org: Org = await factory.org()
    upload = await announce(client, org, "image/jpeg", MAX_BYTES)
    image = JPEG + bytes(MAX_BYTES - len(JPEG))

    r = await client.put(
        upload.url, content=image + b"\x00", headers={"content-type": "image/jpeg"}
    )
    assert_storage_problem(r, 413)
    assert stored_files(settings) == []

    # Streamed without a Content-Length: counted as it arrives.
    too_big = image + b"\x00"

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(too_big), 1024 * 1024):
            yield too_big[start : start + 1024 * 1024]

    r = await client.put(upload.url, content=chunks(), headers={"content-type": "image/jpeg"})
    assert "content-length" not in r.request.headers
    assert_storage_problem(r, 413)
    assert stored_files(settings) == []
    await assert_not_downloadable(client, org, upload)

    # Exactly the limit is accepted.
    ok = await client.put(upload.url, content=image, headers={"content-type": "image/jpeg"})
    assert ok.status_code == 200, ok.text
    got = await client.get(upload.download, headers=org.admin.headers)
    assert got.status_code == 200
    assert got.content == image


async def test_announcing_more_than_the_limit_is_400(
    client: httpx.AsyncClient, factory: Any, settings: Settings
) -> None:
    org: Org = await factory.org()
    r = await client.post(
        UNPLANNED,
        json={
            "companyId": org.company_ids[0],
            "siteIds": [org.site_ids[0]],
            "ruleIds": [org.rule_ids[0]],
            "signature": {"name": "big.jpg", "mimeType": "image/jpeg", "size": MAX_BYTES + 1},
            "provider": {"firstName": "Ann", "lastName": "Lee"},
        },
        headers=org.manager.headers,
    )
    body = assert_storage_problem(r, 400)
    assert [e["field"] for e in body["errors"]] == ["signature.size"]


async def test_unknown_file_id_with_valid_signature_is_404(
    client: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    storage: LocalStorage = app.state.storage
    url = storage.presign_put(StoredFile(id="f" * 32), "http://testserver")
    r = await client.put(url, content=JPEG, headers={"content-type": "image/jpeg"})
    assert_storage_problem(r, 404)
    assert stored_files(settings) == []


# -- Streaming and single use (issue 9, item 10) ----------------------------------------------

CHUNK = 64 * 1024  # what uvicorn hands the application at a time, about


def partial_files(settings: Settings) -> list[Path]:
    """What uploads in progress have on disk (``storage_dir/.partial``)."""
    root = settings.storage_dir / PARTIAL_DIR
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def a_jpeg(variant: int, size: int = len(JPEG)) -> bytes:
    """A JPEG of ``size`` bytes, different for each ``variant``."""
    return (JPEG[:12] + bytes([variant % 256]) * 8 + JPEG[20:]).ljust(size, b"\x00")[:size]


class CountedBody:
    """An ASGI ``receive`` handing out ``data`` in ``CHUNK`` messages, counting what is pulled.

    ``on_pull`` runs before each message is handed out, with the number of bytes already
    handed out. Once the body is out (or the response is complete) it reports a disconnect.
    """

    def __init__(self, data: bytes, on_pull: Any = None) -> None:
        self.data = memoryview(data)
        self.pulled = 0
        self.on_pull = on_pull
        self.responded = asyncio.Event()

    async def __call__(self) -> dict[str, Any]:
        if self.pulled < len(self.data) and not self.responded.is_set():
            if self.on_pull is not None:
                self.on_pull(self.pulled)
            chunk = bytes(self.data[self.pulled : self.pulled + CHUNK])
            self.pulled += len(chunk)
            return {
                "type": "http.request",
                "body": chunk,
                "more_body": self.pulled < len(self.data),
            }
        await self.responded.wait()
        return {"type": "http.disconnect"}


async def asgi_put(
    app: Any, url: str, headers: dict[str, str], body: CountedBody
) -> tuple[int, dict[str, Any]]:
    """One ``PUT`` straight into the ASGI application (middleware included)."""
    parts = urlsplit(url)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "root_path": "",
        "headers": [
            (k.lower().encode(), v.encode()) for k, v in {"host": "testserver", **headers}.items()
        ],
        "client": ("10.0.0.9", 1234),
        "server": ("testserver", 80),
    }
    status = 0
    content = b""

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, content
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            content += message.get("body", b"")
            if not message.get("more_body", False):
                body.responded.set()

    await asyncio.wait_for(app(scope, body, send), 30)
    return status, json.loads(content)


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("bad-signature", 403),
        ("expired", 403),
        ("another-files-signature", 403),
        ("unknown-file", 404),
        ("already-uploaded", 409),
        ("wrong-type", 400),
        ("wrong-length", 400),
    ],
)
async def test_refused_upload_reads_none_of_the_body(
    client: httpx.AsyncClient,
    app: Any,
    factory: Any,
    settings: Settings,
    case: str,
    status: int,
) -> None:
    """A bogus URL costs the server no upload: refused before a byte of the body is pulled."""
    org: Org = await factory.org()
    image = a_jpeg(1, MAX_BYTES)
    upload = await announce(client, org, "image/jpeg", MAX_BYTES)
    storage: LocalStorage = app.state.storage
    headers = {"content-type": "image/jpeg", "content-length": str(MAX_BYTES)}
    url = upload.url
    if case == "bad-signature":
        url = upload.with_query(signature=_flip(upload.signature))
    elif case == "expired":
        past = LocalStorage(storage.root, app.state.secret, ttl_seconds=-60)
        url = past.presign_put(StoredFile(id=upload.file_id), "http://testserver")
    elif case == "another-files-signature":
        other = await announce(client, org, "image/jpeg", MAX_BYTES)
        url = f"http://testserver{upload.path}?" + urlencode(
            {"expires": other.expires, "signature": other.signature}
        )
    elif case == "unknown-file":
        url = storage.presign_put(StoredFile(id="e" * 32), "http://testserver")
    elif case == "already-uploaded":
        first = await client.put(upload.url, content=image, headers={"content-type": "image/jpeg"})
        assert first.status_code == 200, first.text
    elif case == "wrong-type":
        headers["content-type"] = "image/png"
    elif case == "wrong-length":
        headers["content-length"] = str(MAX_BYTES - 1)
    before = [p.read_bytes() for p in stored_files(settings)]

    body = CountedBody(a_jpeg(2, MAX_BYTES))
    got, problem = await asgi_put(app, url, headers, body)
    assert got == status, problem
    assert problem["status"] == status
    assert body.pulled == 0
    assert partial_files(settings) == []
    assert [p.read_bytes() for p in stored_files(settings)] == before
    if case != "already-uploaded":
        await assert_not_downloadable(client, org, upload)


@pytest.mark.parametrize(
    ("announced", "status"), [(MAX_BYTES, 413), (len(JPEG), 400)], ids=["limit", "announced"]
)
async def test_body_past_the_announced_size_or_the_limit_stops_being_read(
    client: httpx.AsyncClient,
    app: Any,
    factory: Any,
    settings: Settings,
    announced: int,
    status: int,
) -> None:
    """Streamed without a Content-Length: reading stops at the first chunk past the size
    announced or past the limit (413), and what was written of it is removed."""
    org: Org = await factory.org()
    upload = await announce(client, org, "image/jpeg", announced)
    partial_seen: list[int] = []
    body = CountedBody(
        a_jpeg(3, 2 * MAX_BYTES),
        on_pull=lambda _: partial_seen.append(len(partial_files(settings))),
    )
    got, problem = await asgi_put(app, upload.url, {"content-type": "image/jpeg"}, body)
    assert got == status, problem
    assert announced < body.pulled <= announced + CHUNK
    assert max(partial_seen) == 1  # streamed to one partial file...
    assert partial_files(settings) == []  # ...removed with the refusal
    assert stored_files(settings) == []
    await assert_not_downloadable(client, org, upload)
    # A refused attempt does not spend the URL.
    image = a_jpeg(4, announced)
    ok = await client.put(upload.url, content=image, headers={"content-type": "image/jpeg"})
    assert ok.status_code == 200, ok.text


async def test_upload_streams_to_disk(
    client: httpx.AsyncClient, app: Any, factory: Any, settings: Settings
) -> None:
    """Half-way through the body, the first half is on disk, not in memory."""
    org: Org = await factory.org()
    upload = await announce(client, org, "image/jpeg", MAX_BYTES)
    image = a_jpeg(5, MAX_BYTES)
    on_disk: list[int] = []

    def look(pulled: int) -> None:
        if pulled >= MAX_BYTES // 2 and not on_disk:
            on_disk.append(sum(p.stat().st_size for p in partial_files(settings)))

    body = CountedBody(image, on_pull=look)
    headers = {"content-type": "image/jpeg", "content-length": str(MAX_BYTES)}
    got, payload = await asgi_put(app, upload.url, headers, body)
    assert got == 200, payload
    assert payload["data"]["uploadedAt"] is not None
    assert on_disk
    assert on_disk[0] >= MAX_BYTES // 2 - WRITE_BATCH_BYTES
    assert partial_files(settings) == []
    assert [p.read_bytes() for p in stored_files(settings)] == [image]


async def test_second_put_is_409_and_the_file_is_unchanged(
    client: httpx.AsyncClient, factory: Any, settings: Settings
) -> None:
    """A stored signature is evidence: the URL takes one upload, a second one is refused."""
    org: Org = await factory.org()
    first, second = a_jpeg(6), a_jpeg(7)
    upload = await announce(client, org, "image/jpeg", len(first))
    ok = await client.put(upload.url, content=first, headers={"content-type": "image/jpeg"})
    assert ok.status_code == 200, ok.text
    uploaded_at = ok.json()["data"]["uploadedAt"]

    for data in (second, first):  # other bytes, or the same again: the URL is spent
        r = await client.put(upload.url, content=data, headers={"content-type": "image/jpeg"})
        body = assert_storage_problem(r, 409)
        assert body["type"].endswith("/already-uploaded")
        assert "already uploaded" in body["detail"]

    assert [p.read_bytes() for p in stored_files(settings)] == [first]
    assert partial_files(settings) == []
    got = await client.get(upload.download, headers=org.viewer.headers)
    assert got.status_code == 200
    assert got.content == first
    r = await client.get(
        f"/interventions/v2/rs/{upload.intervention['id']}", headers=org.viewer.headers
    )
    assert r.json()["data"]["imgSignature"] == upload.download
    assert uploaded_at is not None


async def test_second_put_after_a_lost_write_is_409(
    client: httpx.AsyncClient, factory: Any, settings: Settings, database: Any
) -> None:
    """Stored on disk but not marked (the database write was lost): still stored, still 409;
    the first download marks it."""
    org: Org = await factory.org()
    first, second = a_jpeg(8), a_jpeg(9)
    upload = await announce(client, org, "image/jpeg", len(first))
    ok = await client.put(upload.url, content=first, headers={"content-type": "image/jpeg"})
    assert ok.status_code == 200, ok.text
    async with database.writer() as s, s.begin():
        await s.execute(
            update(StoredFile).where(StoredFile.id == upload.file_id).values(uploaded_at=None)
        )

    r = await client.put(upload.url, content=second, headers={"content-type": "image/jpeg"})
    assert_storage_problem(r, 409)
    assert [p.read_bytes() for p in stored_files(settings)] == [first]
    got = await client.get(upload.download, headers=org.viewer.headers)
    assert got.status_code == 200, got.text
    assert got.content == first
    async with database.reader() as s:
        marked = await s.scalar(
            select(StoredFile.uploaded_at).where(StoredFile.id == upload.file_id)
        )
    assert marked is not None


async def test_concurrent_puts_store_exactly_one(
    client: httpx.AsyncClient, factory: Any, settings: Settings
) -> None:
    org: Org = await factory.org()
    upload = await announce(client, org, "image/jpeg", len(JPEG))
    images = [a_jpeg(10 + i) for i in range(6)]
    results = await asyncio.gather(
        *(
            client.put(upload.url, content=image, headers={"content-type": "image/jpeg"})
            for image in images
        )
    )
    statuses = [r.status_code for r in results]
    assert sorted(statuses) == [200] + [409] * 5, [r.text for r in results]
    winner = images[statuses.index(200)]
    assert [p.read_bytes() for p in stored_files(settings)] == [winner]
    assert partial_files(settings) == []
    got = await client.get(upload.download, headers=org.viewer.headers)
    assert got.content == winner


# -- Over real HTTP: uvicorn on a free port ------------------------------------------------


@pytest.fixture
async def live(app: Any) -> AsyncIterator[str]:
    """The application served by uvicorn (as ``interventions serve`` does) on a free port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class RawPut:
    """A ``PUT`` on its own connection, sending its body when the test says so."""

    def __init__(self, base: str, url: str, mime: str, length: int) -> None:
        parts = urlsplit(url)
        self.port = int(urlsplit(base).port or 80)
        self.head = (
            f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: {mime}\r\nContent-Length: {length}\r\n\r\n"
        ).encode()
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def start(self, body_part: bytes) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(self.head + body_part)
        await self.writer.drain()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self) -> tuple[int, dict[str, Any]]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
        content = await self.reader.readexactly(int(headers["content-length"]))
        return status, json.loads(content)

    def close(self) -> None:
        self.writer.close()


async def eventually(condition: Any) -> bool:
    """Whether ``condition()`` becomes true within 5 seconds."""
    deadline = time.monotonic() + 5
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def test_bogus_puts_are_answered_while_their_bodies_are_still_coming(
    live: str, client: httpx.AsyncClient, factory: Any, settings: Settings
) -> None:
    """The issue's 100 bogus PUTs: each announces 10 MiB and has sent only 64 KiB of it when
    the server answers 403. Nothing waits for (or keeps) the rest."""
    org: Org = await factory.org()
    upload = await announce(client, org, "image/jpeg", MAX_BYTES)
    bogus = upload.with_query(signature=_flip(upload.signature))
    puts = [RawPut(live, bogus, "image/jpeg", MAX_BYTES) for _ in range(100)]
    try:
        await asyncio.gather(*(p.start(bytes(CHUNK)) for p in puts))
        answers = await asyncio.gather(*(p.response() for p in puts))
    finally:
        for p in puts:
            p.close()
    assert {status for status, _ in answers} == {403}
    assert {body["detail"] for _, body in answers} == {"The upload URL signature is invalid."}
    assert partial_files(settings) == []
    assert stored_files(settings) == []

    # The real URL, with the whole body, still works on the same server.
    image = a_jpeg(20, MAX_BYTES)
    async with httpx.AsyncClient(timeout=30) as web:
        ok = await web.put(
            live + urlsplit(upload.url).path + "?" + urlsplit(upload.url).query,
            content=image,
            headers={"content-type": "image/jpeg"},
        )
    assert ok.status_code == 200, ok.text
    assert [p.read_bytes() for p in stored_files(settings)] == [image]


async def test_two_puts_in_flight_store_one_over_http(
    live: str, client: httpx.AsyncClient, factory: Any, settings: Settings
) -> None:
    """Both uploads are past every check and streaming when they finish: one is stored, the
    other is a 409. Meanwhile the database is free (no transaction waits on a body)."""
    org: Org = await factory.org()
    size = 1024 * 1024
    upload = await announce(client, org, "image/jpeg", size)
    images = [a_jpeg(30, size), a_jpeg(31, size)]
    puts = [RawPut(live, upload.url, "image/jpeg", size) for _ in images]
    try:
        for put, image in zip(puts, images, strict=True):
            await put.start(image[: size // 2])
        assert await eventually(lambda: len(partial_files(settings)) == 2)

        # Another write while both bodies are half-way (SQLite: its one writer lock is free).
        other = await asyncio.wait_for(announce(client, org, "image/png", len(PNG)), 5)
        assert other.file_id != upload.file_id

        for put, image in zip(puts, images, strict=True):
            await put.send(image[size // 2 :])
        answers = await asyncio.gather(*(p.response() for p in puts))
    finally:
        for p in puts:
            p.close()
    statuses = [status for status, _ in answers]
    assert sorted(statuses) == [200, 409], answers
    assert "already uploaded" in answers[statuses.index(409)][1]["detail"]
    winner = images[statuses.index(200)]
    assert [p.read_bytes() for p in stored_files(settings)] == [winner]
    assert partial_files(settings) == []
    got = await client.get(upload.download, headers=org.viewer.headers)
    assert got.content == winner


async def test_client_gone_mid_upload_leaves_nothing(
    live: str, client: httpx.AsyncClient, factory: Any, settings: Settings
) -> None:
    org: Org = await factory.org()
    size = 1024 * 1024
    upload = await announce(client, org, "image/jpeg", size)
    put = RawPut(live, upload.url, "image/jpeg", size)
    image = a_jpeg(40, size)
    await put.start(image[: size // 2])
    assert await eventually(lambda: len(partial_files(settings)) == 1)
    put.close()
    assert await eventually(lambda: partial_files(settings) == [])
    assert stored_files(settings) == []
    await assert_not_downloadable(client, org, upload)
    # The URL was not spent.
    ok = await client.put(upload.url, content=image, headers={"content-type": "image/jpeg"})
    assert ok.status_code == 200, ok.text
