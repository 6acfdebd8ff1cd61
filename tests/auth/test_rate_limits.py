"""Rate limits that hold under concurrency and across processes (issue 9): login per e-mail
and client, login per client, password hashing bounded, PINs per user, information e-mails
per organisation, and which client a forwarded header may name."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from interventions.app import create_app
from interventions.auth import passwords
from interventions.config import Settings
from interventions.db import Database
from interventions.notifications.models import OutboxEmail
from tests.factories import PASSWORD, Factory, Org
from tests.helpers import (
    LOGIN,
    ME,
    RS,
    TEST_SECRET,
    assert_problem,
    check_in,
    plan,
    wrong_pin,
)
from tests.smtp_server import free_port

# Generous: only there so that a regression hangs no run.
HANG_GUARD_SECONDS = 60

ClientFactory = Callable[..., Any]


def _peer() -> tuple[str, int]:
    return (f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}", 4321)


@asynccontextmanager
async def _client_of(app: Any, peer: tuple[str, int]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=peer)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def clients(settings: Settings, database: Database) -> ClientFactory:
    """``async with clients(**settings) as c``: a client, from an address of its own, of an
    app configured with ``settings`` changed."""

    @asynccontextmanager
    async def make(**changes: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings.model_copy(update=changes), database)
        async with _client_of(app, _peer()) as c:
            yield c

    return make


async def _login(c: httpx.AsyncClient, email: str, password: str = "wrong") -> httpx.Response:
    return await c.post(LOGIN, json={"email": email, "password": password})


async def _burst(*calls: Any) -> list[httpx.Response]:
    return list(await asyncio.wait_for(asyncio.gather(*calls), HANG_GUARD_SECONDS))


def _statuses(responses: list[httpx.Response]) -> dict[int, int]:
    out: dict[int, int] = {}
    for r in responses:
        out[r.status_code] = out.get(r.status_code, 0) + 1
    return out


def _refused_with_retry_after(responses: list[httpx.Response]) -> None:
    for r in responses:
        if r.status_code == 429:
            assert_problem(r, 429)
            assert int(r.headers["retry-after"]) > 0


# --- login: a burst for one account is checked at most the limit's times -----------------


async def test_concurrent_wrong_passwords_are_checked_at_most_the_limit(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    responses = await _burst(*(_login(client, org.admin.email) for _ in range(50)))
    counted = _statuses(responses)
    # The settings fixture allows 3 failures: no more passwords were compared than that.
    assert counted.get(401, 0) <= 3, counted
    assert set(counted) <= {401, 429}, counted
    _refused_with_retry_after(responses)
    # The account is now limited from this client, even with the right password.
    assert_problem(await _login(client, org.admin.email, PASSWORD), 429)


async def test_a_success_clears_the_count(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    for _ in range(2):
        assert_problem(await _login(client, org.admin.email), 401)
    assert (await _login(client, org.admin.email, PASSWORD)).status_code == 201
    for _ in range(3):
        assert_problem(await _login(client, org.admin.email), 401)
    assert_problem(await _login(client, org.admin.email), 429)


# --- login per client, whatever the e-mail ------------------------------------------------


async def test_per_client_limit_does_not_depend_on_the_email(clients: ClientFactory) -> None:
    tag = uuid.uuid4().hex[:8]
    async with clients(login_client_max_failures=5) as c:
        for i in range(5):
            assert_problem(await _login(c, f"ghost-{i}-{tag}@example.org"), 401)
        r = await _login(c, f"ghost-new-{tag}@example.org")
        assert_problem(r, 429)
        assert 0 < int(r.headers["retry-after"]) <= Settings().login_client_window_seconds
    # Another client address is not affected.
    async with clients(login_client_max_failures=5) as other:
        assert_problem(await _login(other, f"ghost-new-{tag}@example.org"), 401)


async def test_per_client_limit_holds_under_concurrency(clients: ClientFactory) -> None:
    tag = uuid.uuid4().hex[:8]
    async with clients(login_client_max_failures=5, login_queue=100) as c:
        responses = await _burst(*(_login(c, f"ghost-{i}-{tag}@example.org") for i in range(30)))
    counted = _statuses(responses)
    assert counted.get(401, 0) <= 5, counted
    assert set(counted) <= {401, 429}, counted
    _refused_with_retry_after(responses)


# --- password hashing is bounded, so that other requests keep going ----------------------


@dataclass
class Verifications:
    """Argon2 verifications as they run in their threads (not observable otherwise): each
    waits for ``release`` first, so that the test sees the service saturated."""

    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    active: int = 0
    peak: int = 0
    calls: int = 0


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> Iterator[Verifications]:
    seen = Verifications()
    real = passwords._verify

    def counting(stored_hash: str | None, password: str) -> bool:
        with seen.lock:
            seen.active += 1
            seen.calls += 1
            seen.peak = max(seen.peak, seen.active)
        try:
            seen.release.wait(HANG_GUARD_SECONDS)
            return real(stored_hash, password)
        finally:
            with seen.lock:
                seen.active -= 1

    monkeypatch.setattr(passwords, "_verify", counting)
    yield seen
    seen.release.set()


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def test_unknown_email_flood_is_bounded(
    settings: Settings, database: Database, factory: Factory, verifications: Verifications
) -> None:
    org = await factory.org()
    tag = uuid.uuid4().hex[:8]
    bounds = {"login_concurrency": 2, "login_queue": 6}
    app = create_app(settings.model_copy(update=bounds), database)
    async with (
        _client_of(app, _peer()) as a,
        _client_of(app, _peer()) as b,
        _client_of(app, _peer()) as c,
        _client_of(app, _peer()) as d,
    ):
        floods = [
            asyncio.ensure_future(_login(peer, f"ghost-{n}-{i}-{tag}@example.org"))
            for n, peer in enumerate((a, b, c, d))
            for i in range(12)
        ]
        try:
            # 2 verifications run (and are held), 6 logins wait for one: the other 40 are
            # turned away at once instead of queueing.
            await _until(lambda: sum(f.done() for f in floods) >= 40, "logins were queued")
            await _until(lambda: verifications.active == 2, "fewer verifications than allowed")
            refused = [f.result() for f in floods if f.done()]
            assert _statuses(refused) == {429: 40}
            _refused_with_retry_after(refused)
            # Hashing is saturated, yet an authenticated request is answered.
            mine = await asyncio.wait_for(a.get(ME, headers=org.admin.headers), HANG_GUARD_SECONDS)
            assert mine.status_code == 200, mine.text
        finally:
            verifications.release.set()
        responses = await _burst(*floods)
    assert _statuses(responses) == {401: 8, 429: 40}
    assert verifications.calls == 8
    assert verifications.peak == 2


# --- PINs: a burst spread over interventions counts against the user ---------------------


async def test_concurrent_wrong_pins_across_interventions(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org: Org = await factory.org()
    planned = [await plan(client, org) for _ in range(6)]
    attempts = [planned[i % len(planned)] for i in range(30)]
    responses = await _burst(
        *(check_in(client, org, p["id"], wrong_pin(p["codePin"])) for p in attempts)
    )
    counted = _statuses(responses)
    # pin_max_failures defaults to 5, per user whichever intervention.
    assert counted.get(422, 0) <= 5, counted
    assert set(counted) <= {422, 429}, counted
    _refused_with_retry_after(responses)


async def test_a_right_pin_is_not_counted(client: httpx.AsyncClient, factory: Factory) -> None:
    org: Org = await factory.org()
    planned = [await plan(client, org) for _ in range(6)]
    for p in planned[:4]:
        assert (await check_in(client, org, p["id"], wrong_pin(p["codePin"]))).status_code == 422
    r = await check_in(client, org, planned[4]["id"], planned[4]["codePin"])
    assert r.status_code == 200, r.text
    # The right PIN took no attempt: one wrong PIN is still allowed, then 429.
    last = planned[5]
    assert (await check_in(client, org, last["id"], wrong_pin(last["codePin"]))).status_code == 422
    assert (await check_in(client, org, last["id"], last["codePin"])).status_code == 429


# --- information e-mails per organisation --------------------------------------------------


async def _outbox_count(db: Database, organization_id: int) -> int:
    async with db.reader() as s:
        count = await s.scalar(
            select(func.count())
            .select_from(OutboxEmail)
            .where(OutboxEmail.organization_id == organization_id)
        )
    return int(count or 0)


async def test_information_emails_are_limited_per_organisation(
    clients: ClientFactory, factory: Factory
) -> None:
    org, other = await factory.org(), await factory.org()
    async with clients(information_emails_per_hour=3) as c:
        mine = (await plan(c, org))["id"]
        theirs = (await plan(c, other))["id"]
        url = f"{RS}/{mine}/emails/informations"
        body = {"email": "provider@example.org"}
        for _ in range(3):
            r = await c.post(url, json=body, headers=org.admin.headers)
            assert r.status_code == 204, r.text
        r = await c.post(url, json=body, headers=org.manager.headers)
        assert_problem(r, 429)
        assert 0 < int(r.headers["retry-after"]) <= 3600
        assert await _outbox_count(factory.db, org.id) == 3  # nothing queued when refused
        # Refusals that change nothing (400, 404) take no e-mail of the quota.
        r = await c.post(
            f"{RS}/{theirs}/emails/informations", json={"email": "x"}, headers=other.admin.headers
        )
        assert r.status_code == 400
        r = await c.post(f"{RS}/{mine}/emails/informations", json=body, headers=other.admin.headers)
        assert r.status_code == 404
        # Another organisation has its own quota.
        for _ in range(3):
            r = await c.post(
                f"{RS}/{theirs}/emails/informations", json=body, headers=other.admin.headers
            )
            assert r.status_code == 204, r.text


async def test_information_email_limit_holds_under_concurrency(
    clients: ClientFactory, factory: Factory
) -> None:
    org = await factory.org()
    async with clients(information_emails_per_hour=3) as c:
        planned = [(await plan(c, org))["id"] for _ in range(3)]
        responses = await _burst(
            *(
                c.post(
                    f"{RS}/{planned[i % 3]}/emails/informations",
                    json={"email": f"p{i}@example.org"},
                    headers=org.admin.headers,
                )
                for i in range(20)
            )
        )
    counted = _statuses(responses)
    assert counted == {204: 3, 429: 17}, counted
    _refused_with_retry_after(responses)
    assert await _outbox_count(factory.db, org.id) == 3


# --- X-Forwarded-For, through a real server -------------------------------------------------


def _serve(
    database_url: str, workdir: Path, port: int, trusted: str | None
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERVENTIONS_")}
    env.update(
        INTERVENTIONS_DATABASE_URL=database_url,
        INTERVENTIONS_SECRET_KEY=TEST_SECRET,
        INTERVENTIONS_RELAY_IN_PROCESS="false",
        INTERVENTIONS_LOGIN_MAX_FAILURES="3",
    )
    if trusted is not None:
        env["INTERVENTIONS_TRUSTED_PROXIES"] = trusted
    command = Path(sys.executable).parent / "interventions"
    with (workdir / "serve.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [str(command), "serve", "--port", str(port), "--no-migrate"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@asynccontextmanager
async def _server(database_url: str, workdir: Path, trusted: str | None) -> AsyncIterator[str]:
    port = free_port()
    process = _serve(database_url, workdir, port, trusted)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + HANG_GUARD_SECONDS
        async with httpx.AsyncClient() as c:
            while True:
                assert process.poll() is None, (workdir / "serve.log").read_text()
                try:
                    if (await c.get(f"{base}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not start"
                await asyncio.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=HANG_GUARD_SECONDS)


def _addresses(via: str = "") -> Iterator[str]:
    """Distinct client addresses, each as a proxy chain would list it (the client first)."""
    net = uuid.uuid4().int % 250
    for n in range(1, 250):
        yield f"198.51.{net}.{n}{via}"


async def test_forwarded_for_is_not_trusted_by_default(settings: Settings, tmp_path: Path) -> None:
    email = f"ghost-{uuid.uuid4().hex[:8]}@example.org"
    addresses = _addresses()
    async with _server(settings.database_url, tmp_path, None) as base, httpx.AsyncClient() as c:
        for _ in range(3):
            r = await c.post(
                f"{base}{LOGIN}",
                json={"email": email, "password": "wrong"},
                headers={"X-Forwarded-For": next(addresses)},
            )
            assert_problem(r, 401)
        # A new header value is no new client: the limit keys on the connection's address.
        r = await c.post(
            f"{base}{LOGIN}",
            json={"email": email, "password": "wrong"},
            headers={"X-Forwarded-For": next(addresses)},
        )
        assert_problem(r, 429)


async def test_forwarded_for_is_honoured_from_a_trusted_proxy(
    settings: Settings, tmp_path: Path
) -> None:
    email = f"ghost-{uuid.uuid4().hex[:8]}@example.org"
    addresses = _addresses(via=", 10.1.2.3")  # a proxy in 10.0.0.0/8 too
    async with (
        _server(settings.database_url, tmp_path, "127.0.0.1, 10.0.0.0/8") as base,
        httpx.AsyncClient() as c,
    ):
        # Each client behind the proxy has its own count…
        for _ in range(4):
            r = await c.post(
                f"{base}{LOGIN}",
                json={"email": email, "password": "wrong"},
                headers={"X-Forwarded-For": next(addresses)},
            )
            assert_problem(r, 401)
        # …and the limit keys on the address the proxy names.
        one = next(addresses)
        for _ in range(3):
            r = await c.post(
                f"{base}{LOGIN}",
                json={"email": email, "password": "wrong"},
                headers={"X-Forwarded-For": one},
            )
            assert_problem(r, 401)
        r = await c.post(
            f"{base}{LOGIN}",
            json={"email": email, "password": "wrong"},
            headers={"X-Forwarded-For": one},
        )
        assert_problem(r, 429)


async def test_invitation_emails_are_limited_per_organisation(
    clients: ClientFactory, factory: Factory
) -> None:
    """Invitations go to any address an admin names: bounded per organisation like the
    information e-mails, and a refused one queues nothing."""
    org, other = await factory.org(), await factory.org()
    async with clients(invitation_emails_per_hour=2) as c:
        for n in range(2):
            r = await c.post(
                "/profiles/v1/rs",
                json={"email": f"guest{n}-{uuid.uuid4().hex[:8]}@example.org", "role": "viewer"},
                headers=org.admin.headers,
            )
            assert r.status_code == 202, r.text
        before = await _outbox_count(factory.db, org.id)
        assert before == 2
        r = await c.post(
            "/profiles/v1/rs",
            json={"email": f"one-more-{uuid.uuid4().hex[:8]}@example.org", "role": "viewer"},
            headers=org.admin.headers,
        )
        assert_problem(r, 429)
        assert 0 < int(r.headers["retry-after"]) <= 3600
        assert await _outbox_count(factory.db, org.id) == before
        r = await c.post(
            "/profiles/v1/rs",
            json={"email": f"theirs-{uuid.uuid4().hex[:8]}@example.org", "role": "viewer"},
            headers=other.admin.headers,
        )
        assert r.status_code == 202, r.text
