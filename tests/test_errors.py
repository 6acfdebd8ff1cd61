"""A database that cannot take a request: 503 problem+json with Retry-After, nothing changed,
and the same running application answers again as soon as the database is back."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from interventions.app import create_app
from interventions.config import Settings
from interventions.db import create_database
from interventions.errors import PROBLEM_JSON, database_unavailable
from interventions.migrate import upgrade
from tests.factories import PASSWORD, Factory
from tests.helpers import (
    POSTGRES_ADMIN_URL,
    TEST_SECRET,
    curative_body_on,
    org_state,
    run_sql,
    with_database,
)


def assert_unavailable(r: httpx.Response, *leaks: str) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.headers["retry-after"] == "1"
    body = r.json()
    assert body["status"] == 503
    assert body["type"].endswith("/unavailable")
    assert {"type", "title", "detail"} <= body.keys()
    for leak in ("Traceback", "sqlalchemy", "asyncpg", 'File "', *leaks):
        assert leak not in r.text, leak


@asynccontextmanager
async def _client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_postgres_out_of_connections_is_503_and_recovers(
    postgres_url: str, tmp_path: Path
) -> None:
    """What a PostgreSQL at max_connections answers ('too many clients'), reproduced with a
    role allowed no connection at all; then the limit is lifted under the running app."""
    db = create_database(postgres_url)
    factory = Factory(db, TEST_SECRET)
    role = f"interventions_limited_{uuid.uuid4().hex[:8]}"
    await run_sql(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    await run_sql(f"GRANT pg_read_all_data, pg_write_all_data TO {role}")
    limited = make_url(postgres_url).set(username=role).render_as_string(hide_password=False)
    app = create_app(
        Settings(database_url=limited, secret_key=TEST_SECRET, storage_dir=tmp_path / "s")
    )
    try:
        org = await factory.org()
        before = await org_state(factory, org)
        body = curative_body_on(org, org.anomaly_ids[:1])
        async with _client(app) as client:
            r = await client.get("/interventions/v2/rs", headers=org.admin.headers)
            assert_unavailable(r, role)
            r = await client.post(
                "/interventions/v2/rs/curative", json=body, headers=org.admin.headers
            )
            assert_unavailable(r, role)
            assert await org_state(factory, org) == before

            await run_sql(f"ALTER ROLE {role} CONNECTION LIMIT -1")
            r = await client.post(
                "/interventions/v2/rs/curative", json=body, headers=org.admin.headers
            )
            assert r.status_code == 201, r.text
            after = await org_state(factory, org)
            assert after["interventions"] == before["interventions"] + 1
    finally:
        await app.state.db.dispose()
        await db.dispose()
        await run_sql(f"DROP ROLE IF EXISTS {role}")


async def test_unreachable_database_is_503_on_every_endpoint(
    backend: str, tmp_path: Path, factory: Factory
) -> None:
    """Refused connection (PostgreSQL) or a database file that cannot be opened (SQLite):
    login, a read and a write all answer 503, never 500, and say nothing about the URL."""
    url = (
        "postgresql://postgres@127.0.0.1:1/x"
        if backend == "postgresql"
        else f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"
    )
    org = await factory.org()  # valid tokens, signed with the same secret
    app = create_app(Settings(database_url=url, secret_key=TEST_SECRET, storage_dir=tmp_path))
    try:
        async with _client(app) as client:
            r = await client.post(
                "/auth/v1/rs/login/credentials",
                json={"email": org.admin.email, "password": "whatever-password"},
            )
            assert_unavailable(r, "127.0.0.1:1", "no/such")
            r = await client.get("/interventions/v2/rs", headers=org.admin.headers)
            assert_unavailable(r, "127.0.0.1:1", "no/such")
            r = await client.post(
                "/interventions/v2/rs/curative",
                json=curative_body_on(org, org.anomaly_ids[:1]),
                headers=org.admin.headers,
            )
            assert_unavailable(r, "127.0.0.1:1", "no/such")
    finally:
        await app.state.db.dispose()


# A request to a database that is out of reach must come back well within this; reaching it
# means the request hung (a correctness bound for the timeouts, not a performance figure).
HANG_GUARD_SECONDS = 10


async def _send(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async with asyncio.timeout(HANG_GUARD_SECONDS):
        return await client.request(method, path, **kwargs)


def assert_one_warning_each(caplog: pytest.LogCaptureFixture, requests: int) -> None:
    """One warning line per refused request, and no traceback anywhere in the log."""
    ours = [r for r in caplog.records if r.name.startswith("interventions")]
    assert [r.levelno for r in ours] == [logging.WARNING] * requests, [r.getMessage() for r in ours]
    assert all("\n" not in r.getMessage() for r in ours), [r.getMessage() for r in ours]
    for record in caplog.records:
        assert record.exc_info is None, (record.name, record.getMessage())


@asynccontextmanager
async def _throwaway_postgres() -> AsyncIterator[str]:
    """A migrated database of its own, for a test that closes it; dropped whatever happens."""
    name = f"interventions_closed_{uuid.uuid4().hex[:10]}"
    await run_sql(f'CREATE DATABASE "{name}"')
    try:
        url = with_database(POSTGRES_ADMIN_URL, name)
        upgrade(url)
        yield url
    finally:
        await run_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await run_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_closed_postgres_database_is_503_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``ALTER DATABASE … ALLOW_CONNECTIONS false`` under a running app (SQLSTATE 55000 on
    every new connection): reads, writes and login answer 503, one warning line each, nothing
    changes; the same app answers again once the database is open."""
    async with _throwaway_postgres() as url:
        name = make_url(url).database
        db = create_database(url)
        factory = Factory(db, TEST_SECRET)
        app = create_app(Settings(database_url=url, secret_key=TEST_SECRET, storage_dir=tmp_path))
        try:
            org = await factory.org()
            before = await org_state(factory, org)
            body = curative_body_on(org, org.anomaly_ids[:1])
            login = {"email": org.admin.email, "password": PASSWORD}
            async with _client(app) as client:
                r = await _send(client, "GET", "/interventions/v2/rs", headers=org.admin.headers)
                assert r.status_code == 200, r.text
                await db.dispose()
                await run_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                await run_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                )
                caplog.clear()
                with caplog.at_level(logging.WARNING):
                    for _ in range(2):  # the pooled connection that died, then new ones
                        r = await _send(
                            client, "GET", "/interventions/v2/rs", headers=org.admin.headers
                        )
                        assert_unavailable(r, name)
                        r = await _send(
                            client,
                            "POST",
                            "/interventions/v2/rs/curative",
                            json=body,
                            headers=org.admin.headers,
                        )
                        assert_unavailable(r, name)
                        r = await _send(client, "POST", "/auth/v1/rs/login/credentials", json=login)
                        assert_unavailable(r, name)
                assert_one_warning_each(caplog, 6)

                await run_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
                assert await org_state(factory, org) == before
                r = await _send(
                    client,
                    "POST",
                    "/interventions/v2/rs/curative",
                    json=body,
                    headers=org.admin.headers,
                )
                assert r.status_code == 201, r.text
        finally:
            await app.state.db.dispose()
            await db.dispose()


async def test_missing_postgres_database_is_503(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A URL naming a database that does not exist (SQLSTATE 3D000): 503, not 500."""
    db = create_database(postgres_url)
    org = await Factory(db, TEST_SECRET).org()  # valid tokens, signed with the same secret
    await db.dispose()
    name = f"interventions_missing_{uuid.uuid4().hex[:10]}"
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, secret_key=TEST_SECRET, storage_dir=tmp_path))
    try:
        async with _client(app) as client:
            with caplog.at_level(logging.WARNING):
                login = {"email": org.admin.email, "password": PASSWORD}
                r = await _send(client, "POST", "/auth/v1/rs/login/credentials", json=login)
                assert_unavailable(r, name)
                r = await _send(client, "GET", "/interventions/v2/rs", headers=org.admin.headers)
                assert_unavailable(r, name)
                r = await _send(
                    client,
                    "POST",
                    "/interventions/v2/rs/curative",
                    json=curative_body_on(org, org.anomaly_ids[:1]),
                    headers=org.admin.headers,
                )
                assert_unavailable(r, name)
            assert_one_warning_each(caplog, 3)
    finally:
        await app.state.db.dispose()


@asynccontextmanager
async def _silent_server() -> AsyncIterator[int]:
    """A TCP server on a free local port that accepts connections and never answers: a
    database host that is up but whose server is stuck."""
    writers: set[asyncio.StreamWriter] = set()

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            await reader.read()  # until the client gives up and closes
        finally:
            writers.discard(writer)
            writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in list(writers):
            writer.close()
        await server.wait_closed()


async def test_database_that_never_answers_is_a_prompt_503(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A host that accepts TCP and never answers: with a 1 s connect timeout, health, login,
    a read and a write answer 503 with Retry-After promptly instead of hanging."""
    db = create_database(postgres_url)
    org = await Factory(db, TEST_SECRET).org()
    await db.dispose()
    async with _silent_server() as port:
        settings = Settings(
            database_url=f"postgresql://postgres@127.0.0.1:{port}/x",
            secret_key=TEST_SECRET,
            storage_dir=tmp_path,
            db_connect_timeout_seconds=1,
            db_command_timeout_seconds=1,
            health_timeout_seconds=1,
        )
        app = create_app(settings)
        try:
            async with _client(app) as client:
                with caplog.at_level(logging.WARNING):
                    r = await _send(client, "GET", "/health")
                    assert_unavailable(r, str(port))
                    login = {"email": org.admin.email, "password": "whatever-password"}
                    r = await _send(client, "POST", "/auth/v1/rs/login/credentials", json=login)
                    assert_unavailable(r, str(port))
                    r = await _send(
                        client, "GET", "/interventions/v2/rs", headers=org.admin.headers
                    )
                    assert_unavailable(r, str(port))
                    r = await _send(
                        client,
                        "POST",
                        "/interventions/v2/rs/curative",
                        json=curative_body_on(org, org.anomaly_ids[:1]),
                        headers=org.admin.headers,
                    )
                    assert_unavailable(r, str(port))
                assert_one_warning_each(caplog, 4)
            assert app.state.db.connections_in_use() == 0
        finally:
            await app.state.db.dispose()


@asynccontextmanager
async def _proxy(host: str, port: int) -> AsyncIterator[tuple[int, asyncio.Event]]:
    """A TCP proxy to ``host:port`` on a free local port, and an event: once it is set, the
    proxy forwards nothing more either way and keeps every connection open (a server that
    stopped answering after the connection was made: a host gone, a network cut); connections
    made after it is cleared work again."""
    frozen = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if frozen.is_set():
                    continue  # swallowed: this connection is dead to whoever uses it
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def forward(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(host, port)
        writers.extend((client_w, server_w))
        for task in (pump(client_r, server_w), pump(server_r, client_w)):
            started = asyncio.ensure_future(task)
            tasks.add(started)
            started.add_done_callback(tasks.discard)

    server = await asyncio.start_server(forward, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1]), frozen
    finally:
        server.close()
        for writer in writers:
            writer.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def test_database_that_stops_answering_is_a_prompt_503_and_recovers(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The server stops answering connections already made (a network cut): the statement in
    flight gives up after the command timeout and its grace (``drivers.Watchdog``), 503 with
    Retry-After, the connection is ended and not reused; once the network is back, the same
    application answers again on a new connection."""
    db = create_database(postgres_url)
    org = await Factory(db, TEST_SECRET).org()
    await db.dispose()
    url = make_url(postgres_url)
    async with _proxy(url.host or "127.0.0.1", url.port or 5432) as (port, frozen):
        settings = Settings(
            database_url=url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False),
            secret_key=TEST_SECRET,
            storage_dir=tmp_path,
            db_command_timeout_seconds=1,
            db_pool_size=1,
        )
        app = create_app(settings)
        watchdog = app.state.db.watchdog
        assert watchdog is not None
        assert watchdog.limit == 1
        try:
            async with _client(app) as client:
                path = "/interventions/v2/rs"
                r = await _send(client, "GET", path, headers=org.admin.headers)
                assert r.status_code == 200, r.text
                frozen.set()
                with caplog.at_level(logging.WARNING):
                    started = time.monotonic()
                    r = await _send(client, "GET", path, headers=org.admin.headers)
                    waited = time.monotonic() - started
                    assert_unavailable(r, str(port))
                    assert_one_warning_each(caplog, 1)
                # Not before the server's own statement timeout could have answered, and
                # promptly after (a sweep every quarter of the limit).
                assert watchdog.deadline <= waited < watchdog.deadline + 2, waited
                assert app.state.db.connections_in_use() == 0
                frozen.clear()
                r = await _send(client, "GET", path, headers=org.admin.headers)
                assert r.status_code == 200, r.text
            assert app.state.db.connections_in_use() == 0
        finally:
            await app.state.db.dispose()


async def test_health_answers_within_its_own_deadline(tmp_path: Path) -> None:
    """/health gives up after its own deadline, however long connecting may take: a load
    balancer's probe must not hang on the database."""
    async with _silent_server() as port:
        settings = Settings(
            database_url=f"postgresql://postgres@127.0.0.1:{port}/x",
            secret_key=TEST_SECRET,
            storage_dir=tmp_path,
            db_connect_timeout_seconds=60,
            health_timeout_seconds=1,
        )
        app = create_app(settings)
        try:
            async with _client(app) as client:
                for _ in range(2):  # the abandoned attempt leaves nothing behind
                    r = await _send(client, "GET", "/health")
                    assert_unavailable(r, str(port))
            assert app.state.db.connections_in_use() == 0
        finally:
            await app.state.db.dispose()


@asynccontextmanager
async def _write_lock_held(backend: str, url: str) -> AsyncIterator[None]:
    """Another connection holds what a login waits for, until the block ends: the ``users``
    table locked (PostgreSQL), the database's write lock (SQLite)."""
    if backend == "postgresql":
        conn = await asyncpg.connect(url)
        try:
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
            try:
                yield
            finally:
                await transaction.rollback()
        finally:
            await conn.close()
    else:
        lite = sqlite3.connect(str(make_url(url).database), isolation_level=None)
        try:
            lite.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                lite.execute("ROLLBACK")
        finally:
            lite.close()


async def test_statement_that_waits_too_long_is_a_prompt_503_and_recovers(
    backend: str, settings: Settings, factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    """The database answers but a statement blocks (a lock held elsewhere): past the command
    timeout (PostgreSQL) or the busy timeout (SQLite), 503 promptly; the app's one pooled
    connection is back in service once the lock is released."""
    org = await factory.org()
    quick = settings.model_copy(
        update={
            "db_command_timeout_seconds": 1,
            "db_busy_timeout_seconds": 1,
            "db_pool_size": 1,
            "db_pool_timeout_seconds": 1,
        }
    )
    app = create_app(quick)
    login = {"email": org.admin.email, "password": PASSWORD}
    try:
        async with _client(app) as client:
            async with _write_lock_held(backend, settings.database_url):
                with caplog.at_level(logging.WARNING):
                    started = time.monotonic()
                    r = await _send(client, "POST", "/auth/v1/rs/login/credentials", json=login)
                    assert_unavailable(r)
                    assert_one_warning_each(caplog, 1)
            assert time.monotonic() - started < HANG_GUARD_SECONDS
            r = await _send(client, "POST", "/auth/v1/rs/login/credentials", json=login)
            assert r.status_code == 201, r.text
    finally:
        await app.state.db.dispose()


class _Driver(Exception):
    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (PoolTimeout("QueuePool limit of size 20 overflow 0 reached"), True),
        (DBAPIError("SELECT 1", None, _Driver("too many clients already", "53300")), True),
        (
            DBAPIError("SELECT 1", None, _Driver("the database system is starting up", "57P03")),
            True,
        ),
        (DBAPIError("SELECT 1", None, _Driver("connection failure", "08006")), True),
        (OperationalError("BEGIN", None, sqlite3.OperationalError("database is locked")), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
        # Raised while connecting (no statement): the database is closed or does not exist.
        (DBAPIError(None, None, _Driver("database is not accepting connections", "55000")), True),
        (DBAPIError(None, None, _Driver('database "x" does not exist', "3D000")), True),
        (TimeoutError(), True),  # asyncpg's connect and command timeouts
        (
            DBAPIError("SELECT currval('s')", None, _Driver("currval not yet defined", "55000")),
            False,
        ),
        (IntegrityError("INSERT", None, _Driver("duplicate key value", "23505")), False),
        # Cancelled past the command timeout (the server's statement_timeout) or by an
        # operator: the same request may succeed later.
        (DBAPIError("SELECT", None, _Driver("canceling statement", "57014")), True),
        (OperationalError("SELECT", None, sqlite3.OperationalError("no such table: x")), False),
        (PermissionError(13, "Permission denied"), False),
        (RuntimeError("a bug"), False),
    ],
)
def test_what_counts_as_the_database_being_unavailable(error: Exception, unavailable: bool) -> None:
    assert database_unavailable(error) is unavailable
    with pytest.raises(RuntimeError) as raised:
        raise RuntimeError("while handling the request") from error
    assert database_unavailable(raised.value) is unavailable
