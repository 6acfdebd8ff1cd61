"""Signatures in S3-compatible object storage (SPEC §5, issue 3 part 7), on a real S3 server.

moto's server mode listens on 127.0.0.1 for the whole module; the service talks to it with
boto3 and the test uploads to the presigned URL with plain HTTP, as a phone would.

What moto 5 enforces and what it does not: it does not check request signatures at all, so
it takes a ``PUT`` whose size or ``Content-Type`` differ from the signed ones, and it does not
enforce ``X-Amz-Expires`` either (an expired URL still works). Real S3 refuses all of these.
The tests therefore check that the URL signs ``content-length`` and ``content-type``, and that
the service's own verification rejects (and deletes) whatever a lax store accepted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer
from sqlalchemy import select, update
from starlette.responses import Response

from interventions.app import create_app
from interventions.config import Settings
from interventions.db import Database
from interventions.storage.models import StoredFile
from interventions.storage.s3 import S3Storage
from interventions.storage.service import LocalStorage, make_storage
from tests.factories import Org
from tests.helpers import (
    IMAGES,
    JPEG,
    PNG,
    TEST_SECRET,
    UNPLANNED,
    WEBP,
    assert_storage_problem,
    journal_of,
)
from tests.smtp_server import free_port

# One bucket per database leg: organisation ids (the key prefixes) repeat across databases.
BUCKETS = {"sqlite": "signatures-sqlite", "postgresql": "signatures-postgresql"}
REGION = "eu-west-3"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        admin = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for name in BUCKETS.values():
            admin.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def bucket(backend: str) -> str:
    return BUCKETS[backend]


class Bucket:
    """The test's own view of the bucket, behind the service's back."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def objects(self, org: Org) -> dict[str, bytes]:
        """Every object of the organisation, staged or linked, with its bytes."""
        found: dict[str, bytes] = {}
        for prefix in (f"{org.id}/", f"incoming/{org.id}/"):
            listing = self.client.list_objects_v2(Bucket=self.name, Prefix=prefix)
            for item in listing.get("Contents", []):
                body = self.client.get_object(Bucket=self.name, Key=item["Key"])["Body"]
                found[item["Key"]] = body.read()
        return found


@pytest.fixture(scope="module")
def s3_client(s3_endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def s3(s3_client: Any, bucket: str) -> Bucket:
    return Bucket(s3_client, bucket)


@pytest.fixture
def s3_settings(settings: Settings, s3_endpoint: str, bucket: str) -> Settings:
    return settings.model_copy(
        update={
            "storage_backend": "s3",
            "s3_endpoint_url": s3_endpoint,
            "s3_bucket": bucket,
            "s3_region": REGION,
            "s3_access_key_id": "testing",
            "s3_secret_access_key": "testing",
        }
    )


async def _client(settings: Settings, database: Database, storage: Any = None) -> Any:
    app = create_app(settings, database)
    app.state.storage = storage or make_storage(settings, TEST_SECRET)
    transport = httpx.ASGITransport(app=app, client=(f"10.1.0.{uuid.uuid4().int % 250}", 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def service(s3_settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with await _client(s3_settings, database) as c:
        yield c


@pytest.fixture(scope="module")
async def web() -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP to the S3 server, with nothing of the service's (no auth headers)."""
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


class Announced:
    def __init__(self, payload: dict[str, Any]) -> None:
        self.intervention: dict[str, Any] = payload["data"]
        self.url: str = payload["presignedUrl"]
        self.download: str = self.intervention["imgSignature"]
        self.file_id = self.download.rsplit("/", 1)[1]
        self.query = {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}


async def announce(client: httpx.AsyncClient, org: Org, mime: str, size: int) -> Announced:
    """Seed 001's request, with the signature the test is about to upload."""
    r = await client.post(
        UNPLANNED,
        json={
            "companyId": org.company_ids[0],
            "siteIds": org.site_ids,
            "ruleIds": org.rule_ids,
            "signature": {"name": "signature", "mimeType": mime, "size": size},
            "provider": {
                "firstName": "Provider name",
                "lastName": "Provider name",
                "actionComment": "Action comment from the provider",
                "email": "example@mail.fr",
                "comment": "General comment from the provider",
            },
            "actualStart": "2024-12-01T12:34:56.000Z",
        },
        headers=org.manager.headers,
    )
    assert r.status_code == 201, r.text
    return Announced(r.json())


async def uploaded_at(database: Database, file_id: str) -> dt.datetime | None:
    async with database.reader() as s:
        value = await s.scalar(select(StoredFile.uploaded_at).where(StoredFile.id == file_id))
    return value


async def put(web: httpx.AsyncClient, url: str, data: bytes, mime: str) -> httpx.Response:
    return await web.put(url, content=data, headers={"content-type": mime})


@pytest.mark.parametrize("mime", sorted(IMAGES))
async def test_upload_to_s3_then_download_by_redirect(
    service: httpx.AsyncClient,
    web: httpx.AsyncClient,
    factory: Any,
    s3: Bucket,
    s3_endpoint: str,
    database: Database,
    mime: str,
) -> None:
    org: Org = await factory.org()
    image = IMAGES[mime]
    up = await announce(service, org, mime, len(image))
    stored_key = f"{org.id}/{up.file_id}"

    # A presigned PUT on the object store itself: path style, SigV4, 15 minutes, and the
    # announced size and type signed (so that real S3 refuses anything else).
    parts = urlsplit(up.url)
    assert f"{parts.scheme}://{parts.netloc}" == s3_endpoint
    assert parts.path == f"/{s3.name}/incoming/{stored_key}"
    assert up.query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert up.query["X-Amz-Expires"] == "900"
    assert f"/{REGION}/s3/aws4_request" in up.query["X-Amz-Credential"]
    assert up.query["X-Amz-SignedHeaders"].split(";") == ["content-length", "content-type", "host"]
    assert up.download == f"/storage/v1/rs/files/{up.file_id}"

    # Before the upload there is nothing to download.
    assert_storage_problem(await service.get(up.download, headers=org.viewer.headers), 404)

    r = await put(web, up.url, image, mime)
    assert r.status_code == 200, r.text
    assert s3.objects(org) == {f"incoming/{stored_key}": image}
    assert await uploaded_at(database, up.file_id) is None

    # The first download verifies, links (uploaded_at), and redirects to a presigned GET.
    got = await service.get(up.download, headers=org.viewer.headers)
    assert got.status_code == 307, got.text
    assert got.headers["cache-control"] == "no-store"
    location = got.headers["location"]
    assert location.startswith(f"{s3_endpoint}/{s3.name}/{stored_key}?")
    assert "X-Amz-Signature=" in location
    assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == ["300"]
    assert await uploaded_at(database, up.file_id) is not None
    # The verified bytes moved out of reach of the upload URL.
    assert s3.objects(org) == {stored_key: image}

    fetched = await web.get(location)
    assert fetched.status_code == 200
    assert fetched.content == image
    assert fetched.headers["content-type"] == mime

    # Every member of the organisation, following the redirect like a browser does.
    for member in (org.admin, org.manager, org.viewer):
        again = await service.get(up.download, headers=member.headers)
        assert again.status_code == 307
        assert (await web.get(again.headers["location"])).content == image


async def test_reupload_after_verification_changes_nothing(
    service: httpx.AsyncClient, web: httpx.AsyncClient, factory: Any, s3: Bucket
) -> None:
    org: Org = await factory.org()
    up = await announce(service, org, "image/png", len(PNG))
    assert (await put(web, up.url, PNG, "image/png")).status_code == 200
    assert (await service.get(up.download, headers=org.admin.headers)).status_code == 307

    # The URL is still valid for a while: a second PUT lands in staging and stays there.
    other = PNG[:8] + bytes(len(PNG) - 8)
    assert (await put(web, up.url, other, "image/png")).status_code == 200
    got = await service.get(up.download, headers=org.admin.headers)
    assert got.status_code == 307
    assert (await web.get(got.headers["location"])).content == PNG


@pytest.mark.parametrize(
    ("announced", "sent", "mime_sent"),
    [
        (JPEG, JPEG + b"\x00", "image/jpeg"),  # larger than announced
        (JPEG, JPEG[:-1], "image/jpeg"),  # smaller than announced
        (JPEG, JPEG, "image/png"),  # another type
        (JPEG, JPEG, "application/octet-stream"),
        (PNG, JPEG[: len(PNG)], "image/png"),  # a JPEG sent as PNG
        (WEBP, b"RIFF\x00\x10\x00\x00WAVE" + WEBP[12:], "image/webp"),  # RIFF, not WebP
        (JPEG, b"<svg xmlns='http://www.w3.org/2000/svg'/>".ljust(len(JPEG)), "image/jpeg"),
    ],
    ids=["larger", "smaller", "png-type", "octet-type", "jpeg-as-png", "wave-as-webp", "svg"],
)
async def test_upload_not_as_announced_is_rejected_and_deleted(
    service: httpx.AsyncClient,
    web: httpx.AsyncClient,
    factory: Any,
    s3: Bucket,
    database: Database,
    announced: bytes,
    sent: bytes,
    mime_sent: str,
) -> None:
    org: Org = await factory.org()
    mime = {JPEG: "image/jpeg", PNG: "image/png", WEBP: "image/webp"}[announced]
    up = await announce(service, org, mime, len(announced))

    # moto checks no signature: it stores what a real S3 would refuse (size, type).
    r = await put(web, up.url, sent, mime_sent)
    assert r.status_code == 200, r.text
    assert list(s3.objects(org)) == [f"incoming/{org.id}/{up.file_id}"]

    # The service does not link it, and deletes it.
    assert_storage_problem(await service.get(up.download, headers=org.viewer.headers), 404)
    assert s3.objects(org) == {}
    assert await uploaded_at(database, up.file_id) is None
    assert_storage_problem(await service.get(up.download, headers=org.viewer.headers), 404)

    # A failed attempt does not spend the URL: the right bytes are then accepted.
    right = await put(web, up.url, announced, mime)
    assert right.status_code == 200, right.text
    got = await service.get(up.download, headers=org.viewer.headers)
    assert got.status_code == 307
    assert (await web.get(got.headers["location"])).content == announced


async def test_expired_upload_url(
    s3_settings: Settings,
    database: Database,
    web: httpx.AsyncClient,
    factory: Any,
    s3: Bucket,
) -> None:
    """Real S3 refuses a PUT after ``X-Amz-Expires``; moto 5 takes it (it does not enforce
    expiry), so the service itself refuses to link an object written after its URL expired."""
    short = s3_settings.model_copy(update={"upload_url_ttl_seconds": 1})
    # No tolerance for clock differences: moto shares our clock.
    storage = S3Storage.from_settings(short, clock_tolerance_seconds=0)
    async with await _client(short, database, storage) as service:
        org: Org = await factory.org()
        up = await announce(service, org, "image/jpeg", len(JPEG))
        assert up.query["X-Amz-Expires"] == "1"
        signed_at = dt.datetime.strptime(up.query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=dt.UTC
        )
        await asyncio.sleep(max(0.0, signed_at.timestamp() + 2.2 - time.time()))

        r = await put(web, up.url, JPEG, "image/jpeg")
        assert r.status_code == 200, r.text  # what moto does with an expired URL
        assert list(s3.objects(org)) == [f"incoming/{org.id}/{up.file_id}"]

        assert_storage_problem(await service.get(up.download, headers=org.viewer.headers), 404)
        assert s3.objects(org) == {}
        assert await uploaded_at(database, up.file_id) is None


async def test_upload_within_its_ttl_is_accepted(
    s3_settings: Settings, database: Database, web: httpx.AsyncClient, factory: Any
) -> None:
    """The expiry check does not reject an upload made in time, verified later."""
    short = s3_settings.model_copy(update={"upload_url_ttl_seconds": 2})
    storage = S3Storage.from_settings(short, clock_tolerance_seconds=0)
    async with await _client(short, database, storage) as service:
        org: Org = await factory.org()
        up = await announce(service, org, "image/webp", len(WEBP))
        assert (await put(web, up.url, WEBP, "image/webp")).status_code == 200
        await asyncio.sleep(3.2)  # past the URL's expiry when the service verifies
        got = await service.get(up.download, headers=org.viewer.headers)
        assert got.status_code == 307, got.text
        assert (await web.get(got.headers["location"])).content == WEBP


async def test_download_by_another_organisation_is_404(
    service: httpx.AsyncClient, web: httpx.AsyncClient, factory: Any, s3: Bucket, database: Database
) -> None:
    org: Org = await factory.org()
    other: Org = await factory.org()
    up = await announce(service, org, "image/jpeg", len(JPEG))
    assert (await put(web, up.url, JPEG, "image/jpeg")).status_code == 200

    # Before verification: the other organisation neither sees nor triggers it.
    r = await service.get(up.download, headers=other.admin.headers)
    assert_storage_problem(r, 404)
    assert "location" not in r.headers
    assert list(s3.objects(org)) == [f"incoming/{org.id}/{up.file_id}"]
    assert await uploaded_at(database, up.file_id) is None

    # After verification by its own organisation: still a 404, no redirect.
    assert (await service.get(up.download, headers=org.viewer.headers)).status_code == 307
    r = await service.get(up.download, headers=other.admin.headers)
    assert_storage_problem(r, 404)
    assert "location" not in r.headers
    missing = await service.get("/storage/v1/rs/files/" + "0" * 32, headers=other.admin.headers)
    assert r.json()["title"] == assert_storage_problem(missing, 404)["title"]


async def test_download_needs_a_session(
    service: httpx.AsyncClient, web: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    up = await announce(service, org, "image/jpeg", len(JPEG))
    assert (await put(web, up.url, JPEG, "image/jpeg")).status_code == 200
    r = await service.get(up.download)
    assert_storage_problem(r, 401)
    assert "location" not in r.headers


async def test_concurrent_first_downloads_all_succeed(
    service: httpx.AsyncClient, web: httpx.AsyncClient, factory: Any, s3: Bucket, database: Database
) -> None:
    org: Org = await factory.org()
    up = await announce(service, org, "image/png", len(PNG))
    assert (await put(web, up.url, PNG, "image/png")).status_code == 200
    results = await asyncio.gather(
        *(service.get(up.download, headers=org.viewer.headers) for _ in range(5))
    )
    assert [r.status_code for r in results] == [307] * 5
    assert s3.objects(org) == {f"{org.id}/{up.file_id}": PNG}
    assert await uploaded_at(database, up.file_id) is not None


async def test_verified_object_whose_link_was_lost_is_linked_again(
    service: httpx.AsyncClient, web: httpx.AsyncClient, factory: Any, database: Database
) -> None:
    """Copied and verified, but the database write did not happen: the next download links."""
    org: Org = await factory.org()
    up = await announce(service, org, "image/jpeg", len(JPEG))
    assert (await put(web, up.url, JPEG, "image/jpeg")).status_code == 200
    assert (await service.get(up.download, headers=org.viewer.headers)).status_code == 307
    async with database.writer() as s, s.begin():
        await s.execute(
            update(StoredFile).where(StoredFile.id == up.file_id).values(uploaded_at=None)
        )
    got = await service.get(up.download, headers=org.viewer.headers)
    assert got.status_code == 307
    assert (await web.get(got.headers["location"])).content == JPEG
    assert await uploaded_at(database, up.file_id) is not None


async def test_local_upload_route_is_404_with_s3(
    service: httpx.AsyncClient, factory: Any, s3: Bucket, database: Database, settings: Settings
) -> None:
    org: Org = await factory.org()
    up = await announce(service, org, "image/jpeg", len(JPEG))
    # A URL the local backend would have signed for this very file.
    local = LocalStorage(settings.storage_dir, TEST_SECRET, 900)
    async with database.reader() as s:
        stored = await s.get(StoredFile, up.file_id)
    assert stored is not None
    url = local.presign_put(stored, "http://testserver")
    r = await service.put(url, content=JPEG, headers={"content-type": "image/jpeg"})
    assert_storage_problem(r, 404)
    assert s3.objects(org) == {}
    assert not settings.storage_dir.exists() or not any(settings.storage_dir.rglob("*"))
    assert_storage_problem(await service.get(up.download, headers=org.viewer.headers), 404)


async def test_object_storage_down_is_503(
    s3_settings: Settings, database: Database, factory: Any
) -> None:
    down = s3_settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    async with await _client(down, database) as service:
        org: Org = await factory.org()
        # Presigning needs no request to the store: the intervention is still recorded.
        up = await announce(service, org, "image/jpeg", len(JPEG))
        assert up.url.startswith(down.s3_endpoint_url)
        r = await service.get(up.download, headers=org.viewer.headers)
        body = assert_storage_problem(r, 503)
        assert "storage" in body["detail"]
        assert "127.0.0.1" not in r.text


def test_local_backend_is_the_default(settings: Settings, app: Any) -> None:
    assert Settings().storage_backend == "local"
    assert settings.storage_backend == "local"
    storage = make_storage(settings, TEST_SECRET)
    assert isinstance(storage, LocalStorage)
    assert storage.root == settings.storage_dir
    assert storage.ttl_seconds == 15 * 60
    assert isinstance(app.state.storage, LocalStorage)


def test_s3_backend_needs_a_bucket() -> None:
    with pytest.raises(ValueError, match="s3_bucket"):
        make_storage(Settings(storage_backend="s3"), TEST_SECRET)
    assert isinstance(
        make_storage(Settings(storage_backend="s3", s3_bucket="any"), TEST_SECRET), S3Storage
    )


async def test_second_upload_never_replaces_the_linked_object(
    service: httpx.AsyncClient, web: httpx.AsyncClient, factory: Any, s3: Bucket, database: Database
) -> None:
    """Single use where the service can enforce it: linked bytes are never replaced. The
    presigned PUT itself goes to the object store, which takes it while the URL is valid."""
    org: Org = await factory.org()
    up = await announce(service, org, "image/jpeg", len(JPEG))
    stored_key = f"{org.id}/{up.file_id}"
    assert (await put(web, up.url, JPEG, "image/jpeg")).status_code == 200
    assert (await service.get(up.download, headers=org.viewer.headers)).status_code == 307
    # The link's database write is lost, and a second, valid image is staged with the URL.
    async with database.writer() as s, s.begin():
        await s.execute(
            update(StoredFile).where(StoredFile.id == up.file_id).values(uploaded_at=None)
        )
    other = JPEG[:12] + bytes(len(JPEG) - 12)
    assert (await put(web, up.url, other, "image/jpeg")).status_code == 200
    assert s3.objects(org) == {stored_key: JPEG, f"incoming/{stored_key}": other}

    got = await service.get(up.download, headers=org.viewer.headers)
    assert got.status_code == 307, got.text
    assert (await web.get(got.headers["location"])).content == JPEG
    # The second upload is discarded, the first stays.
    assert s3.objects(org) == {stored_key: JPEG}
    assert await uploaded_at(database, up.file_id) is not None


class GatedStorage:
    """The S3 storage, with verifications held until released and counted."""

    def __init__(self, inner: S3Storage) -> None:
        self.inner = inner
        self.calls = 0
        self.running = 0
        self.most_running = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    def presign_put(self, stored: StoredFile, base_url: str) -> str:
        return self.inner.presign_put(stored, base_url)

    async def verify(self, stored: StoredFile) -> bool:
        self.calls += 1
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            self.entered.set()
            await self.release.wait()
            return await self.inner.verify(stored)
        finally:
            self.running -= 1

    async def digest(self, stored: StoredFile) -> str:
        return await self.inner.digest(stored)

    async def download_response(self, stored: StoredFile) -> Response:
        return await self.inner.download_response(stored)


async def test_first_downloads_link_one_at_a_time(
    s3_settings: Settings,
    database: Database,
    web: httpx.AsyncClient,
    factory: Any,
    s3: Bucket,
) -> None:
    """Linking is serialised on the file's row (PostgreSQL: FOR UPDATE; SQLite: its writer
    lock), whatever the process: while one first download verifies, the others wait, then
    find the file linked and do not verify (or copy) again."""
    gated = GatedStorage(S3Storage.from_settings(s3_settings))
    async with await _client(s3_settings, database, gated) as service:
        org: Org = await factory.org()
        up = await announce(service, org, "image/png", len(PNG))
        assert (await put(web, up.url, PNG, "image/png")).status_code == 200
        first = asyncio.create_task(service.get(up.download, headers=org.viewer.headers))
        await asyncio.wait_for(gated.entered.wait(), 5)
        others = [
            asyncio.create_task(service.get(up.download, headers=org.viewer.headers))
            for _ in range(3)
        ]
        await asyncio.sleep(0.5)
        assert gated.running == 1
        gated.release.set()
        results = await asyncio.gather(first, *others)
    assert [r.status_code for r in results] == [307] * 4
    assert gated.calls == 1
    assert gated.most_running == 1
    assert s3.objects(org) == {f"{org.id}/{up.file_id}": PNG}
    # Linked once, and the journal has the bytes' SHA-256, read back from the object store.
    uploads = [e for e in await journal_of(database, org.id) if e.action == "upload"]
    assert [(e.subject_id, e.changes["sha256"]) for e in uploads] == [
        (up.file_id, hashlib.sha256(PNG).hexdigest())
    ]


async def test_the_register_export_reads_signatures_from_the_bucket(
    service: httpx.AsyncClient, web: httpx.AsyncClient, factory: Any, s3: Bucket
) -> None:
    """The register's export (issue 11) carries the linked objects' bytes; an object gone
    from the bucket is listed as missing, never a failed export."""
    org: Org = await factory.org()
    kept = await announce(service, org, "image/png", len(PNG))
    lost = await announce(service, org, "image/png", len(PNG))
    for up in (kept, lost):
        assert (await put(web, up.url, PNG, "image/png")).status_code == 200
        # The first download links the object (and journals it with its SHA-256).
        assert (await service.get(up.download, headers=org.viewer.headers)).status_code == 307
    s3.client.delete_object(Bucket=s3.name, Key=f"{org.id}/{lost.file_id}")
    r = await service.get("/register/v1/rs/export", headers=org.admin.headers)
    assert r.status_code == 200, r.text
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.read(f"signatures/{kept.file_id}.png") == PNG
    manifest = json.loads(archive.read("export.json"))
    assert manifest["signatureFiles"] == [kept.file_id]
    assert manifest["missingSignatureFiles"] == [lost.file_id]
