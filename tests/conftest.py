"""Both database legs, always: PostgreSQL (a fresh database on the machine's server) and SQLite.

The schema is built by the Alembic migrations. Tests isolate themselves by creating their own
organisation (tenancy makes them invisible to each other), so one database per leg serves the
whole session — per worker process when the suite runs in parallel (``scripts/test`` runs it
with ``pytest -n auto``: each pytest-xdist worker creates its own PostgreSQL database and its
own SQLite file). PostgreSQL unreachable is a failure, never a skip, unless a developer opts out
explicitly with ``INTERVENTIONS_TEST_SKIP_POSTGRES=1`` outside CI.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from interventions.app import create_app
from interventions.config import Settings
from interventions.db import Database, create_database
from interventions.migrate import upgrade
from tests.factories import Factory
from tests.helpers import POSTGRES_ADMIN_URL, TEST_SECRET, run_sql, with_database
from tests.smtp_server import SmtpServer, free_port

SKIP_POSTGRES = (
    os.environ.get("INTERVENTIONS_TEST_SKIP_POSTGRES") == "1" and os.environ.get("CI") != "true"
)
BACKENDS = ["sqlite"] if SKIP_POSTGRES else ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"interventions_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(run_sql(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({exc}). The PostgreSQL leg "
            "is required; start the server or set INTERVENTIONS_TEST_POSTGRES_URL.",
            pytrace=False,
        )
    url = with_database(POSTGRES_ADMIN_URL, name)
    upgrade(url)
    yield url
    asyncio.run(run_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    fixture = "postgres_url" if backend == "postgresql" else "sqlite_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        storage_dir=tmp_path / "storage",
        outbox_dir=tmp_path / "outbox",
        register_keys_dir=tmp_path / "register-keys",
        login_max_failures=3,
        # Tests drive the relay and the planner themselves.
        relay_in_process=False,
    )


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = create_database(settings.database_url)
    yield db
    await db.dispose()


@pytest.fixture
def app(settings: Settings, database: Database):  # type: ignore[no-untyped-def]
    return create_app(settings, database)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=(f"10.0.0.{uuid.uuid4().int % 250}", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def factory(database: Database) -> Factory:
    return Factory(database, TEST_SECRET)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on a free local port, for the length of one test."""
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()
