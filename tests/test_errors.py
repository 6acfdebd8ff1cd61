"""A database that cannot take a request: 503 problem+json with Retry-After, nothing changed,
and the same running application answers again as soon as the database is back."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from interventions.app import create_app
from interventions.config import Settings
from interventions.db import create_database
from interventions.errors import PROBLEM_JSON, database_unavailable
from tests.conftest import TEST_SECRET, run_sql
from tests.factories import Factory
from tests.test_atomicity import curative_body, org_state


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
        body = curative_body(org, org.anomaly_ids[:1])
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
                json=curative_body(org, org.anomaly_ids[:1]),
                headers=org.admin.headers,
            )
            assert_unavailable(r, "127.0.0.1:1", "no/such")
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
        (IntegrityError("INSERT", None, _Driver("duplicate key value", "23505")), False),
        (DBAPIError("SELECT", None, _Driver("canceling statement", "57014")), False),
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
