"""The ``interventions`` command (SPEC §6, §7): import, demo, serve, and health when the
database is gone.

The command runs in-process (Typer's ``CliRunner``), in a worker thread because it starts its
own event loop, against a database named by ``INTERVENTIONS_DATABASE_URL``: a fresh one per
test (an SQLite file, or a new PostgreSQL database), or the session's shared one with ids far
above everything the other tests create.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from sqlalchemy import func, select
from typer.testing import CliRunner

from interventions.app import create_app
from interventions.cli import cli
from interventions.config import Settings, get_settings
from interventions.db import Base, create_database
from tests.factories import Factory, Org
from tests.helpers import LOGIN, PROBLEM_JSON, run_sql

SECRET = "cli-test-secret-" + "x" * 32

# SPEC §7, verbatim.
SPEC_EXAMPLE: dict[str, Any] = {
    "organizations": [{"id": 1, "name": "Lycée Jean Moulin"}],
    "users": [
        {
            "id": 1,
            "email": "admin@example.org",
            "password": "secret-pass",
            "firstName": "Ada",
            "lastName": "Martin",
        }
    ],
    "profiles": [{"id": 1, "userId": 1, "organizationId": 1, "role": "admin"}],
    "sites": [{"id": 1, "organizationId": 1, "name": "Bâtiment A"}],
    "rules": [{"id": 1, "organizationId": 1, "name": "Vérification SSI", "type": 1}],
    "siteRules": [{"id": 1, "siteId": 1, "ruleId": 1}],
    "companies": [
        {
            "id": 1,
            "organizationId": 1,
            "name": "Bureau Contrôle",
            "type": 1,
            "email": "contact@bc.example",
        }
    ],
    "companyContacts": [
        {"id": 1, "companyId": 1, "name": "Paul Durand", "email": "paul@bc.example"}
    ],
    "anomalies": [
        {"id": 1, "organizationId": 1, "siteId": 1, "title": "Extincteur absent", "risk": 2}
    ],
    "routines": [
        {
            "id": 1,
            "organizationId": 1,
            "name": "SSI annuel",
            "siteRuleIds": [1],
            "rrule": "FREQ=YEARLY",
        }
    ],
}
LABELS = list(SPEC_EXAMPLE)
TABLES = [
    "organizations",
    "users",
    "profiles",
    "sites",
    "rules",
    "site_rules",
    "companies",
    "company_contacts",
    "anomalies",
    "routines",
    "routine_site_rules",
]

runner = CliRunner()


# --- helpers ------------------------------------------------------------------------------


def _run(env: dict[str, str | None], args: list[str]) -> Result:
    get_settings.cache_clear()  # the settings are read from the environment once, and cached
    try:
        return runner.invoke(cli, args, env=env)
    finally:
        get_settings.cache_clear()


async def invoke(
    url: str, tmp_path: Path, *args: str, env: dict[str, str | None] | None = None
) -> Result:
    """``env`` adds variables (``None`` removes one) to the command's environment."""
    environment: dict[str, str | None] = {
        "INTERVENTIONS_DATABASE_URL": url,
        "INTERVENTIONS_SECRET_FILE": str(tmp_path / "secret"),
        "INTERVENTIONS_STORAGE_DIR": str(tmp_path / "storage"),
        **(env or {}),
    }
    return await asyncio.to_thread(_run, environment, list(args))


def text_of(result: Result) -> str:
    """Everything the command printed, its whitespace collapsed to single spaces."""
    return " ".join(result.output.split())


def assert_clean_exit(result: Result, code: int = 0) -> None:
    """Exited on purpose with ``code`` (or any non-zero ``code=-1``), never by a crash."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the command crashed: {result.exception!r}\n{result.output}")
    if code == -1:
        assert result.exit_code != 0, result.output
    else:
        assert result.exit_code == code, result.output


def counts(result: Result) -> dict[str, tuple[int, int, int]]:
    found = re.findall(r"(\w+): (\d+) created, (\d+) updated, (\d+) unchanged", result.output)
    return {label: (int(c), int(u), int(n)) for label, c, u, n in found}


def write(tmp_path: Path, document: Any, name: str | None = None) -> Path:
    path = tmp_path / (name or f"ref-{uuid.uuid4().hex[:8]}.json")
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


async def snapshot(
    url: str, low: int = 0, high: int = 2**62, tables: list[str] = TABLES
) -> dict[str, list[dict[str, Any]]]:
    """Every row (every column) of the reference tables whose id is in [low, high)."""
    db = create_database(url, pool=False)
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        async with db.reader() as s:
            for name in tables:
                table = Base.metadata.tables[name]
                key = table.c.routine_id if name == "routine_site_rules" else table.c.id
                rows = await s.execute(
                    select(table).where(key >= low, key < high).order_by(*table.primary_key.columns)
                )
                out[name] = [dict(r._mapping) for r in rows]
    finally:
        await db.dispose()
    return out


async def top_id(url: str) -> int:
    db = create_database(url, pool=False)
    try:
        async with db.reader() as s:
            tops = [
                (await s.execute(select(func.max(Base.metadata.tables[t].c.id)))).scalar() or 0
                for t in TABLES
                if t != "routine_site_rules"
            ]
    finally:
        await db.dispose()
    return max(tops)


def reference_document(base: int, tag: str) -> dict[str, Any]:
    """The SPEC example shifted to ids ``base + 1`` (so they are explicit and far away)."""
    o, u, s, r = base + 1, base + 1, base + 1, base + 1
    return {
        "organizations": [{"id": o, "name": f"Org {tag}"}],
        "users": [
            {
                "id": u,
                "email": f"import-{tag}@example.org",
                "password": "secret-pass",
                "firstName": "Ada",
                "lastName": "Martin",
            }
        ],
        "profiles": [{"id": base + 1, "userId": u, "organizationId": o, "role": "admin"}],
        "sites": [{"id": s, "organizationId": o, "name": "Bâtiment A"}],
        "rules": [{"id": r, "organizationId": o, "name": "Vérification SSI", "type": 1}],
        "siteRules": [{"id": base + 1, "siteId": s, "ruleId": r}],
        "companies": [
            {"id": base + 1, "organizationId": o, "name": "Bureau", "type": 1, "email": None}
        ],
        "companyContacts": [
            {"id": base + 1, "companyId": base + 1, "name": "Paul", "email": "paul@bc.example"}
        ],
        "anomalies": [
            {"id": base + 1, "organizationId": o, "siteId": s, "title": "Extincteur", "risk": 2}
        ],
        "routines": [
            {
                "id": base + 1,
                "organizationId": o,
                "name": "SSI annuel",
                "siteRuleIds": [base + 1],
                "rrule": "FREQ=YEARLY",
            }
        ],
    }


@pytest.fixture
def postgres_server(backend: str, request: pytest.FixtureRequest) -> str | None:
    # Requested here, outside the event loop: the session fixture starts its own.
    return str(request.getfixturevalue("postgres_url")) if backend == "postgresql" else None


@pytest.fixture
async def fresh_url(postgres_server: str | None, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database (no schema yet): the command migrates it."""
    if postgres_server is None:
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    server = postgres_server
    name = f"interventions_cli_{uuid.uuid4().hex[:12]}"
    await run_sql(f'CREATE DATABASE "{name}"', server)
    try:
        yield f"{server.rpartition('/')[0]}/{name}"
    finally:
        await run_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', server)


@pytest.fixture
async def id_base(database_url: str) -> int:
    """Ids above everything in the shared database (900000 at least)."""
    return ((max(900_000, await top_id(database_url)) // 1000) + 1) * 1000


class Api:
    """An app on ``url``, through HTTP, as a client would reach it."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        settings = Settings(database_url=url, secret_key=SECRET, storage_dir=tmp_path / "files")
        self.app = create_app(settings)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        )

    async def login(self, email: str, password: str) -> httpx.Response:
        return await self.client.post(LOGIN, json={"email": email, "password": password})

    async def headers(self, email: str, password: str) -> dict[str, str]:
        r = await self.login(email, password)
        assert r.status_code == 201, r.text
        tokens = r.json()["data"]
        return {
            "Authorization": f"Bearer {tokens['accessToken']}",
            "x-session-token": tokens["sessionToken"],
        }

    async def close(self) -> None:
        await self.client.aclose()
        await self.app.state.db.dispose()


@pytest.fixture
async def api_on(tmp_path: Path) -> AsyncIterator[Any]:
    made: list[Api] = []

    def make(url: str) -> Api:
        made.append(Api(url, tmp_path))
        return made[-1]

    yield make
    for api in made:
        await api.close()


CURATIVE = {
    "scheduledStart": "2024-12-01T12:34:56.000Z",
    "scheduledEnd": "2024-12-05T14:56:23.000Z",
    "creationStatus": 0,
    "description": "Remplacer l'extincteur",
}


# --- import -------------------------------------------------------------------------------


async def test_import_spec_example_then_reimport_changes_nothing(
    fresh_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, SPEC_EXAMPLE, "reference.json")
    result = await invoke(fresh_url, tmp_path, "import", str(path))
    assert_clean_exit(result)
    assert counts(result) == {label: (1, 0, 0) for label in LABELS}

    rows = await snapshot(fresh_url)
    assert [(r["id"], r["name"]) for r in rows["organizations"]] == [(1, "Lycée Jean Moulin")]
    [user] = rows["users"]
    assert (user["id"], user["email"], user["first_name"], user["last_name"]) == (
        1,
        "admin@example.org",
        "Ada",
        "Martin",
    )
    assert "secret-pass" not in user["password_hash"]
    [profile] = rows["profiles"]
    assert (profile["user_id"], profile["organization_id"], profile["role"]) == (1, 1, "admin")
    assert [(r["id"], r["organization_id"], r["name"]) for r in rows["sites"]] == [
        (1, 1, "Bâtiment A")
    ]
    assert [(r["id"], r["organization_id"], r["name"], r["type"]) for r in rows["rules"]] == [
        (1, 1, "Vérification SSI", 1)
    ]
    assert [(r["id"], r["site_id"], r["rule_id"]) for r in rows["site_rules"]] == [(1, 1, 1)]
    assert [(r["id"], r["name"], r["type"], r["email"]) for r in rows["companies"]] == [
        (1, "Bureau Contrôle", 1, "contact@bc.example")
    ]
    assert [(r["id"], r["company_id"], r["email"]) for r in rows["company_contacts"]] == [
        (1, 1, "paul@bc.example")
    ]
    [anomaly] = rows["anomalies"]
    assert (anomaly["site_id"], anomaly["title"], anomaly["risk"], anomaly["status"]) == (
        1,
        "Extincteur absent",
        2,
        0,
    )
    [routine] = rows["routines"]
    assert (routine["name"], routine["rrule"]) == ("SSI annuel", "FREQ=YEARLY")
    assert [(r["routine_id"], r["site_rule_id"]) for r in rows["routine_site_rules"]] == [(1, 1)]

    again = await invoke(fresh_url, tmp_path, "import", str(path))
    assert_clean_exit(again)
    assert counts(again) == {label: (0, 0, 1) for label in LABELS}
    assert await snapshot(fresh_url) == rows


async def test_invalid_first_import_creates_nothing(fresh_url: str, tmp_path: Path) -> None:
    document = copy.deepcopy(SPEC_EXAMPLE)
    document["profiles"][0]["role"] = "owner"
    result = await invoke(fresh_url, tmp_path, "import", str(write(tmp_path, document)))
    assert_clean_exit(result, -1)
    assert "profiles[0]" in text_of(result)
    assert await snapshot(fresh_url) == {table: [] for table in TABLES}


async def test_a_changed_entry_is_updated_and_nothing_else(
    fresh_url: str, tmp_path: Path, api_on: Any
) -> None:
    assert_clean_exit(
        await invoke(fresh_url, tmp_path, "import", str(write(tmp_path, SPEC_EXAMPLE)))
    )
    before = await snapshot(fresh_url)
    changed = copy.deepcopy(SPEC_EXAMPLE)
    changed["sites"][0]["name"] = "Bâtiment A (nord)"
    changed["users"][0]["password"] = "another-secret"
    result = await invoke(fresh_url, tmp_path, "import", str(write(tmp_path, changed)))
    assert_clean_exit(result)
    expected = {label: (0, 0, 1) for label in LABELS}
    expected["sites"] = expected["users"] = (0, 1, 0)
    assert counts(result) == expected
    after = await snapshot(fresh_url)
    assert after["sites"][0]["name"] == "Bâtiment A (nord)"
    assert after["users"][0]["password_hash"] != before["users"][0]["password_hash"]
    for table in TABLES:
        if table not in ("sites", "users"):
            assert after[table] == before[table], table

    api = api_on(fresh_url)
    assert (await api.login("admin@example.org", "secret-pass")).status_code == 401
    assert (await api.login("admin@example.org", "another-secret")).status_code == 201


async def test_imported_data_works_through_the_api(
    fresh_url: str, tmp_path: Path, api_on: Any
) -> None:
    """Explicit ids bypass PostgreSQL's sequences: after import the service (and anything
    else inserting rows) must still get fresh ids."""
    assert_clean_exit(
        await invoke(fresh_url, tmp_path, "import", str(write(tmp_path, SPEC_EXAMPLE)))
    )
    api = api_on(fresh_url)
    headers = await api.headers("admin@example.org", "secret-pass")
    me = await api.client.get("/auth/v1/rs/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["data"]["organizationId"] == 1

    curative = await api.client.post(
        "/interventions/v2/rs/curative",
        json={**CURATIVE, "anomalyIds": [1], "assignedCompanyContactId": 1, "assignedProfileId": 1},
        headers=headers,
    )
    assert curative.status_code == 201, curative.text
    data = curative.json()["data"]
    assert (data["anomalyIds"], data["siteIds"], data["companyId"]) == ([1], [1], 1)
    assert data["assignedUserId"] == 1

    routine = await api.client.post(
        "/interventions/v2/rs/preventive/routine",
        json={
            "scheduledStart": "2024-11-01T08:00:00.000Z",
            "scheduledEnd": "2024-11-01T10:00:00.000Z",
            "creationStatus": 1,
            "routineId": 1,
        },
        headers=headers,
    )
    assert routine.status_code == 201, routine.text
    assert routine.json()["data"]["siteRuleIds"] == [1]

    unplanned = await api.client.post(
        "/interventions/v2/mb/preventive/unplanned",
        json={
            "companyId": 1,
            "siteIds": [1],
            "ruleIds": [1],
            "signature": {"name": "s.png", "mimeType": "image/png", "size": 10},
            "provider": {"firstName": "Ann", "lastName": "Lee"},
        },
        headers=headers,
    )
    assert unplanned.status_code == 201, unplanned.text
    # A second login opens a second session.
    assert await api.headers("admin@example.org", "secret-pass") != headers

    # Rows inserted without explicit ids land after the imported ones.
    factory = Factory(api.app.state.db, SECRET)
    org: Org = await factory.org()
    assert org.id > 1
    assert min(org.site_ids) > 1
    assert min(org.rule_ids) > 1
    assert min(org.company_ids) > 1
    assert min(org.contact_ids) > 1
    assert min(org.anomaly_ids) > 1
    assert org.routine_id > 1
    assert min(org.site_rule_ids) > 1
    assert org.admin.user_id > 1
    assert org.admin.profile_id > 1
    r = await api.client.get("/auth/v1/rs/me", headers=org.admin.headers)
    assert r.status_code == 200, r.text


async def test_reimport_keeps_what_the_service_changed(
    fresh_url: str, tmp_path: Path, api_on: Any
) -> None:
    """Re-importing the same file changes nothing — including an anomaly the service has put
    in repair (its status is the service's, not the file's, once the file omits it)."""
    path = write(tmp_path, SPEC_EXAMPLE)
    assert_clean_exit(await invoke(fresh_url, tmp_path, "import", str(path)))
    api = api_on(fresh_url)
    headers = await api.headers("admin@example.org", "secret-pass")
    body = {**CURATIVE, "anomalyIds": [1]}
    first = await api.client.post("/interventions/v2/rs/curative", json=body, headers=headers)
    assert first.status_code == 201, first.text
    before = await snapshot(fresh_url)
    assert before["anomalies"][0]["status"] == 1  # in repair

    again = await invoke(fresh_url, tmp_path, "import", str(path))
    assert_clean_exit(again)
    after = await snapshot(fresh_url)
    assert after["anomalies"][0]["status"] == 1, "the re-import reopened the anomaly"
    assert after == before
    assert counts(again) == {label: (0, 0, 1) for label in LABELS}
    second = await api.client.post("/interventions/v2/rs/curative", json=body, headers=headers)
    assert second.status_code == 422, second.text


async def test_import_into_the_shared_database_with_high_ids(
    database_url: str,
    id_base: int,
    tmp_path: Path,
    client: httpx.AsyncClient,
    factory: Factory,
) -> None:
    tag = uuid.uuid4().hex[:10]
    document = reference_document(id_base, tag)
    path = write(tmp_path, document)
    result = await invoke(database_url, tmp_path, "import", str(path))
    assert_clean_exit(result)
    assert counts(result) == {label: (1, 0, 0) for label in LABELS}
    rows = await snapshot(database_url, id_base, id_base + 1000)
    assert {t: len(r) for t, r in rows.items()} == {t: 1 for t in TABLES}
    assert rows["site_rules"][0]["organization_id"] == id_base + 1

    again = await invoke(database_url, tmp_path, "import", str(path))
    assert_clean_exit(again)
    assert counts(again) == {label: (0, 0, 1) for label in LABELS}
    assert await snapshot(database_url, id_base, id_base + 1000) == rows

    r = await client.post(
        LOGIN, json={"email": f"import-{tag}@example.org", "password": "secret-pass"}
    )
    assert r.status_code == 201, r.text
    tokens = r.json()["data"]
    headers = {
        "Authorization": f"Bearer {tokens['accessToken']}",
        "x-session-token": tokens["sessionToken"],
    }
    created = await client.post(
        "/interventions/v2/rs/curative",
        json={**CURATIVE, "anomalyIds": [id_base + 1], "assignedCompanyContactId": id_base + 1},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["data"]["organizationId"] == id_base + 1

    # Sequences moved past the explicit ids: new rows come after them.
    org: Org = await factory.org()
    assert org.id > id_base + 1
    assert min(org.site_ids) > id_base + 1
    assert min(org.site_rule_ids) > id_base + 1
    assert org.admin.user_id > id_base + 1
    assert org.admin.profile_id > id_base + 1


def _cross_org_site_rule(d: dict[str, Any], base: int) -> None:
    d["organizations"].append({"id": base + 2, "name": "Other"})
    d["rules"].append({"id": base + 2, "organizationId": base + 2, "name": "R", "type": 1})
    d["siteRules"].append({"id": base + 2, "siteId": base + 1, "ruleId": base + 2})


INVALID = {
    # name: (mutation, what the error must name)
    "unknown-key": (lambda d, b: d.update(buildings=[]), "buildings"),
    "unknown-field": (lambda d, b: d["sites"][0].update(colour="red"), "sites[0]"),
    "cross-org-site-rule": (_cross_org_site_rule, "siteRules[1]"),
    "anomaly-on-missing-site": (
        lambda d, b: d["anomalies"].append(
            {"id": b + 2, "organizationId": b + 1, "siteId": b + 999, "title": "X", "risk": 0}
        ),
        "anomalies[1]",
    ),
    "duplicate-ids": (
        lambda d, b: d["sites"].append({"id": b + 1, "organizationId": b + 1, "name": "Twin"}),
        "sites[2]",
    ),
    "bad-role": (lambda d, b: d["profiles"][0].update(role="owner"), "profiles[0]"),
    "duplicate-email": (
        lambda d, b: d["users"].append(
            {"id": b + 2, "email": d["users"][0]["email"].upper(), "password": "another-pass"}
        ),
        "users[1]",
    ),
    "routine-on-missing-site-rule": (
        lambda d, b: d["routines"][0]["siteRuleIds"].append(b + 777),
        "routines[0]",
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
async def test_invalid_file_exits_nonzero_names_the_entry_and_changes_nothing(
    database_url: str, id_base: int, tmp_path: Path, case: str
) -> None:
    tag = uuid.uuid4().hex[:10]
    valid = reference_document(id_base, tag)
    assert_clean_exit(await invoke(database_url, tmp_path, "import", str(write(tmp_path, valid))))
    before = await snapshot(database_url, id_base, id_base + 1000)

    # Valid changes (a rename, a new site) that must not survive the bad entry.
    document = copy.deepcopy(valid)
    document["organizations"][0]["name"] = "Renamed"
    document["sites"].append({"id": id_base + 3, "organizationId": id_base + 1, "name": "New"})
    mutate, entry = INVALID[case]
    mutate(document, id_base)
    result = await invoke(database_url, tmp_path, "import", str(write(tmp_path, document)))
    assert_clean_exit(result, -1)
    assert entry in text_of(result), result.output
    assert await snapshot(database_url, id_base, id_base + 1000) == before


@pytest.mark.parametrize(
    "content",
    [b"this is not JSON {", b'{"organizations": [', b"\xff\xfe\x00garbage", b"", b"[]", b"42"],
    ids=["text", "truncated", "binary", "empty", "array", "number"],
)
async def test_a_file_that_is_not_a_json_object_is_refused(
    database_url: str, id_base: int, tmp_path: Path, content: bytes
) -> None:
    before = await snapshot(database_url, id_base)
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = await invoke(database_url, tmp_path, "import", str(path))
    assert_clean_exit(result, -1)
    assert "bad.json" in text_of(result)
    assert await snapshot(database_url, id_base) == before


async def test_a_missing_file_is_refused(database_url: str, tmp_path: Path) -> None:
    result = await invoke(database_url, tmp_path, "import", str(tmp_path / "nowhere.json"))
    assert_clean_exit(result, -1)
    assert "nowhere.json" in text_of(result)


def lines_of(result: Result) -> list[str]:
    return [line.strip() for line in result.output.splitlines()]


async def test_malformed_json_is_reported_with_its_line_and_column(
    database_url: str, id_base: int, tmp_path: Path
) -> None:
    before = await snapshot(database_url, id_base)
    content = '{\n  "organizations": [\n    {"id": 1 "name": "Lycée"}\n  ]\n}\n'
    with pytest.raises(json.JSONDecodeError) as error:
        json.loads(content)
    assert (error.value.lineno, error.value.msg) == (3, "Expecting ',' delimiter")
    path = tmp_path / "malformed.json"
    path.write_text(content, encoding="utf-8")
    result = await invoke(database_url, tmp_path, "import", str(path))
    assert_clean_exit(result, 1)
    expected = (
        f"error: {path} is not valid JSON: Expecting ',' delimiter "
        f"at line 3, column {error.value.colno}"
    )
    assert expected in lines_of(result), result.output
    assert await snapshot(database_url, id_base) == before


async def test_a_long_error_is_one_line_when_not_on_a_terminal(
    database_url: str, id_base: int, tmp_path: Path
) -> None:
    """CliRunner's output is no terminal: a pipe, a log. The console must not cut lines at its
    80-column default there: a script greps the whole line, a reader copies it whole."""
    document = reference_document(id_base, uuid.uuid4().hex[:10])
    document["sites"][0]["organizationId"] = id_base + 999
    name = "reference-data-" + "very-long-name-" * 8 + ".json"
    path = write(tmp_path, document, name)
    result = await invoke(database_url, tmp_path, "import", str(path))
    assert_clean_exit(result, 1)
    line = (
        f"error: {path}: sites[0].organizationId: organization {id_base + 999} does not exist; "
        "nothing was imported"
    )
    assert len(line) > 200
    assert line in lines_of(result), result.output


def _several_problems(d: dict[str, Any], b: int) -> None:
    d["sites"].append({"id": b + 2, "organizationId": b + 9, "name": "Nowhere"})
    d["siteRules"].append({"id": b + 2, "siteId": b + 8, "ruleId": b + 1})
    d["siteRules"].append({"id": b + 3, "siteId": b + 1, "ruleId": b + 1})  # same pair as [0]
    d["anomalies"].append(
        {"id": b + 1, "organizationId": b + 1, "siteId": b + 1, "title": "Twin", "risk": 0}
    )
    d["routines"][0]["siteRuleIds"].append(b + 777)
    d["users"].append({"id": b + 2, "email": d["users"][0]["email"], "password": "other-pass"})


async def test_an_import_reports_every_problem_naming_each_entry(
    database_url: str, id_base: int, tmp_path: Path
) -> None:
    b = id_base
    valid = reference_document(b, uuid.uuid4().hex[:10])
    assert_clean_exit(await invoke(database_url, tmp_path, "import", str(write(tmp_path, valid))))
    before = await snapshot(database_url, b, b + 1000)

    document = copy.deepcopy(valid)
    document["organizations"][0]["name"] = "Renamed"  # a valid change that must not survive
    _several_problems(document, b)
    result = await invoke(database_url, tmp_path, "import", str(write(tmp_path, document)))
    assert_clean_exit(result, 1)
    lines = lines_of(result)
    expected = [
        f"users[1].email: e-mail {valid['users'][0]['email']} appears twice (first at users[0])",
        f"sites[1].organizationId: organization {b + 9} does not exist",
        f"siteRules[1].siteId: site {b + 8} does not exist",
        f"siteRules[2].ruleId: site {b + 1} already carries rule {b + 1} (siteRules[0])",
        f"anomalies[1].id: id {b + 1} appears twice (first at anomalies[0])",
        f"routines[0].siteRuleIds[1]: site rule {b + 777} does not exist",
    ]
    assert any(line.endswith(f"{len(expected)} problems; nothing was imported") for line in lines)
    found = [line for line in lines if line in expected]
    assert found == expected, result.output  # each once, in file order
    assert await snapshot(database_url, b, b + 1000) == before


async def test_every_structural_problem_is_reported(
    database_url: str, id_base: int, tmp_path: Path
) -> None:
    document = reference_document(id_base, uuid.uuid4().hex[:10])
    document["profiles"][0]["role"] = "owner"
    document["sites"][0]["colour"] = "red"
    document["rules"][0]["type"] = 7
    result = await invoke(database_url, tmp_path, "import", str(write(tmp_path, document)))
    assert_clean_exit(result, 1)
    out = text_of(result)
    assert "3 problems; nothing was imported" in out
    for entry in ("profiles[0].role:", "sites[0].colour:", "rules[0].type:"):
        assert entry in out, result.output


async def test_a_long_list_of_problems_is_capped(
    database_url: str, id_base: int, tmp_path: Path
) -> None:
    document = reference_document(id_base, uuid.uuid4().hex[:10])
    document["sites"] += [
        {"id": id_base + 100 + n, "organizationId": id_base + 999, "name": f"S{n}"}
        for n in range(60)
    ]
    result = await invoke(database_url, tmp_path, "import", str(write(tmp_path, document)))
    assert_clean_exit(result, 1)
    lines = lines_of(result)
    assert any(line.endswith("60 problems; nothing was imported") for line in lines)
    named = [line for line in lines if line.startswith("sites[")]
    assert len(named) == 50
    assert named[0].startswith("sites[1].organizationId:")
    assert named[-1].startswith("sites[50].organizationId:")
    assert "… and 10 more" in lines
    assert await snapshot(database_url, id_base, id_base + 1000) == {t: [] for t in TABLES}


# --- demo, serve --------------------------------------------------------------------------


async def test_demo_prints_a_working_login_and_is_idempotent(
    fresh_url: str, tmp_path: Path, api_on: Any
) -> None:
    first = await invoke(fresh_url, tmp_path, "demo")
    assert_clean_exit(first)
    out = text_of(first)
    credentials = re.findall(r"([\w.+-]+@[\w.-]+\.\w+) / (\S+)", out)
    assert credentials, out
    assert LOGIN in out
    assert "x-session-token" in out
    tables = [*TABLES, "interventions"]
    rows = await snapshot(fresh_url, tables=tables)
    assert rows["organizations"]
    assert rows["users"]
    assert rows["sites"]

    second = await invoke(fresh_url, tmp_path, "demo")
    assert_clean_exit(second)
    assert re.findall(r"([\w.+-]+@[\w.-]+\.\w+) / (\S+)", text_of(second)) == credentials
    assert await snapshot(fresh_url, tables=tables) == rows

    api = api_on(fresh_url)
    for email, password in credentials:
        r = await api.login(email, password)
        assert r.status_code == 201, (email, r.text)
    headers = await api.headers(*credentials[0])
    for intervention in rows["interventions"]:
        r = await api.client.get(f"/interventions/v2/rs/{intervention['id']}", headers=headers)
        assert r.status_code == 200, r.text


async def test_demo_profiles_do_not_share_their_users_ids(
    fresh_url: str, tmp_path: Path, api_on: Any
) -> None:
    """A client that sends a user id where a profile id is meant (or the reverse) must not
    get the right answer by coincidence."""
    result = await invoke(fresh_url, tmp_path, "demo")
    assert_clean_exit(result)
    rows = await snapshot(fresh_url)
    user_ids = {u["id"] for u in rows["users"]}
    profiles = rows["profiles"]
    assert profiles
    assert not user_ids & {p["id"] for p in profiles}
    for p in profiles:
        assert f"(user {p['user_id']}, profile {p['id']})" in text_of(result)
    api = api_on(fresh_url)
    headers = await api.headers("admin@demo.example", "demo-admin-pass")
    me = (await api.client.get("/auth/v1/rs/me", headers=headers)).json()["data"]
    admin = next(p for p in profiles if p["role"] == "admin")
    assert (me["organizationId"], me["userId"], me["profileId"]) == (
        1,
        admin["user_id"],
        admin["id"],
    )


@pytest.mark.parametrize(
    ("args", "env", "base"),
    [
        ([], {"INTERVENTIONS_PUBLIC_URL": None}, "http://127.0.0.1:8000"),
        (["--base-url", "http://127.0.0.1:8123/"], {}, "http://127.0.0.1:8123"),
        ([], {"INTERVENTIONS_PUBLIC_URL": "https://registre.example.org"}, None),
        (
            ["--base-url", "http://localhost:9000"],
            {"INTERVENTIONS_PUBLIC_URL": "https://registre.example.org"},
            "http://localhost:9000",
        ),
    ],
    ids=["default", "option", "public-url", "option-over-public-url"],
)
async def test_demo_prints_the_base_url_it_is_given(
    fresh_url: str, tmp_path: Path, args: list[str], env: dict[str, str | None], base: str | None
) -> None:
    base = base or "https://registre.example.org"
    result = await invoke(fresh_url, tmp_path, "demo", *args, env=env)
    assert_clean_exit(result)
    out = result.output
    assert f"curl -s -X POST {base}{LOGIN} " in out, out
    assert f"{base}/docs" in out
    if "8000" not in base:
        assert "8000" not in out


async def test_demo_refuses_a_base_url_that_is_not_http(fresh_url: str, tmp_path: Path) -> None:
    result = await invoke(fresh_url, tmp_path, "demo", "--base-url", "127.0.0.1:8000")
    assert_clean_exit(result, 2)
    assert "--base-url" in text_of(result)


async def test_serve_help_mentions_no_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'unused.db'}"
    result = await invoke(url, tmp_path, "serve", "--help")
    assert_clean_exit(result)
    out = text_of(result)
    assert "--no-migrate" in out
    assert "--host" in out
    assert "--port" in out
    top = await invoke(url, tmp_path, "--help")
    assert_clean_exit(top)
    for command in ("serve", "import", "demo"):
        assert command in text_of(top)
    assert not (tmp_path / "unused.db").exists()


# --- health -------------------------------------------------------------------------------


async def test_health_is_503_when_the_database_is_unreachable(backend: str, tmp_path: Path) -> None:
    url = (
        "postgresql://postgres@127.0.0.1:1/x"
        if backend == "postgresql"
        else f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"
    )
    app = create_app(Settings(database_url=url, secret_key=SECRET, storage_dir=tmp_path / "s"))
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.get("/health")
    finally:
        await app.state.db.dispose()
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    body = r.json()
    assert body["status"] == 503
    assert {"type", "title", "detail"} <= body.keys()
    assert "Traceback" not in r.text
    assert "127.0.0.1:1" not in r.text
    assert "no/such" not in r.text


async def test_overdue_runs_one_round_that_marks_once(
    database_url: str, tmp_path: Path, factory: Any
) -> None:
    """``interventions overdue``: the worker's overdue round, once, now."""
    import datetime as dt

    from interventions.interventions.models import Intervention
    from tests.helpers import intervention_history

    org = await factory.org()
    now = dt.datetime.now(dt.UTC)
    async with factory.db.writer() as s, s.begin():
        late = Intervention(
            organization_id=org.id,
            type=3,
            status=2,
            creation_status=1,
            code_pin=123456,
            scheduled_start=now - dt.timedelta(days=2),
            scheduled_end=now - dt.timedelta(days=1),
        )
        s.add(late)
        await s.flush()
        late_id = late.id
    first = await invoke(database_url, tmp_path, "overdue")
    assert_clean_exit(first)
    assert re.search(r"\b[1-9]\d* marked overdue, \d+ accepted automatically", text_of(first))
    second = await invoke(database_url, tmp_path, "overdue")
    assert_clean_exit(second)
    assert "0 marked overdue" in text_of(second)
    entries = [h for h in await intervention_history(factory.db, late_id) if h.action == "overdue"]
    assert [e.actor for e in entries] == [{"type": "system", "name": "overdue"}]
