"""Signature uploads through the presigned URL, and downloads (SPEC §5, seed 001).

Every request goes through HTTP, as a phone would send it: the URL returned by
``POST /interventions/v2/mb/preventive/unplanned`` is the only credential of the ``PUT``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from interventions.config import Settings
from interventions.storage.models import StoredFile
from interventions.storage.service import LocalStorage
from tests.factories import Org

UNPLANNED = "/interventions/v2/mb/preventive/unplanned"
PROBLEM_JSON = "application/problem+json"
MAX_BYTES = 10 * 1024 * 1024  # the default limit (SPEC §5: 1 byte to 10 MiB)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 3
WEBP = b"RIFF\x00\x10\x00\x00WEBPVP8 " + bytes(range(256)) * 2
IMAGES = {"image/jpeg": JPEG, "image/png": PNG, "image/webp": WEBP}


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


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    assert "Traceback" not in r.text
    return body


async def assert_not_downloadable(client: httpx.AsyncClient, org: Org, upload: Upload) -> None:
    r = await client.get(upload.download, headers=org.viewer.headers)
    assert_problem(r, 404)


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
    assert_problem(await client.get(upload.download), 401)


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
    body = assert_problem(r, 404)
    assert JPEG[:16] not in r.content
    # Exactly as a file that does not exist.
    missing = await client.get("/storage/v1/rs/files/" + "0" * 32, headers=other.admin.headers)
    assert_problem(missing, 404)
    assert body["title"] == missing.json()["title"]


@pytest.mark.parametrize(
    "content_type",
    ["image/png", "application/json", "application/octet-stream", "text/plain", None],
)
async def test_wrong_content_type_is_400(
    client: httpx.AsyncClient, factory: Any, settings: Settings, content_type: str | None
) -> None:
    org: Org = await factory.org()
    upload = await announce(client, org, "image/jpeg", len(JPEG))
    headers = {"content-type": content_type} if content_type else {}
    r = await client.put(upload.url, content=JPEG, headers=headers)
    body = assert_problem(r, 400)
    assert [e["field"] for e in body["errors"]] == ["Content-Type"]
    assert stored_files(settings) == []
    await assert_not_downloadable(client, org, upload)
    # A failed attempt does not spend the URL: the right request still works.
    ok = await client.put(upload.url, content=JPEG, headers={"content-type": "image/jpeg"})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("delta", [-1, 1, -len(JPEG) + 1])
async def test_size_other_than_announced_is_400(
    client: httpx.AsyncClient, factory: Any, settings: Settings, delta: int
) -> None:
    org: Org = await factory.org()
    upload = await announce(client, org, "image/jpeg", len(JPEG))
    data = JPEG[: len(JPEG) + delta] if delta < 0 else JPEG + b"\x00" * delta
    r = await client.put(upload.url, content=data, headers={"content-type": "image/jpeg"})
    body = assert_problem(r, 400)
    assert "body" in [e["field"] for e in body["errors"]]
    assert stored_files(settings) == []
    await assert_not_downloadable(client, org, upload)


async def test_empty_body_is_400(
    client: httpx.AsyncClient, factory: Any, settings: Settings
) -> None:
    org: Org = await factory.org()
    upload = await announce(client, org, "image/png", len(PNG))
    r = await client.put(upload.url, content=b"", headers={"content-type": "image/png"})
    assert_problem(r, 400)
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
    body = assert_problem(r, 400)
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
    assert_problem(r, 400 if tamper == "missing" else 403)
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
    assert_problem(r, 403)
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
    assert_problem(r, 403)
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
    assert_problem(r, 403)
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
    assert_problem(r, 413)
    assert stored_files(settings) == []

    # Streamed without a Content-Length: counted as it arrives.
    too_big = image + b"\x00"

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(too_big), 1024 * 1024):
            yield too_big[start : start + 1024 * 1024]

    r = await client.put(upload.url, content=chunks(), headers={"content-type": "image/jpeg"})
    assert "content-length" not in r.request.headers
    assert_problem(r, 413)
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
    body = assert_problem(r, 400)
    assert [e["field"] for e in body["errors"]] == ["signature.size"]


async def test_unknown_file_id_with_valid_signature_is_404(
    client: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    storage: LocalStorage = app.state.storage
    url = storage.presign_put(StoredFile(id="f" * 32), "http://testserver")
    r = await client.put(url, content=JPEG, headers={"content-type": "image/jpeg"})
    assert_problem(r, 404)
    assert stored_files(settings) == []
