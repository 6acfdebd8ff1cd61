"""What more than one test file uses: the database server, paths, problem documents, request
bodies the endpoints accept, the on-site steps, images and the members of a seed page.

A test file imports its helpers from here and its data from ``factories.py``, never from
another test file (``tests/test_layout.py`` checks). Pytest rewrites the assertions below as
it does a test file's own (``tests/__init__.py`` registers this module).
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from typing import Any

import asyncpg
import httpx
from sqlalchemy import func, select

from interventions.interventions.models import (
    Intervention,
    InterventionAnomaly,
    InterventionRule,
    InterventionSite,
    InterventionSiteRule,
)
from interventions.notifications.models import Notification, OutboxEmail
from interventions.references.models import Anomaly
from interventions.register import journal
from interventions.register.models import JournalEntry, JournalHead
from interventions.storage.models import StoredFile
from tests.factories import Org

# --- the database server and the secret ---------------------------------------------------

POSTGRES_ADMIN_URL = os.environ.get(
    "INTERVENTIONS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TEST_SECRET = "test-secret-" + "x" * 32


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def run_sql(sql: str, url: str = POSTGRES_ADMIN_URL) -> None:
    """One statement on the PostgreSQL server (the admin database unless ``url`` names
    another): creating databases and roles, changing limits."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# --- paths ----------------------------------------------------------------------------------

LOGIN = "/auth/v1/rs/login/credentials"
LOGOUT = "/auth/v1/rs/logout"
ME = "/auth/v1/rs/me"
PROFILES = "/profiles/v1/rs"
ACCEPT = "/invitations/v1/rs/accept"
ACCEPT_WITH_PASSWORD = "/invitations/v1/rs/accept/credentials"
NOTIFICATIONS = "/notifications/v1/rs"
RS = "/interventions/v2/rs"
MB = "/interventions/v2/mb"
CURATIVE = "/interventions/v2/rs/curative"
UNPLANNED = "/interventions/v2/mb/preventive/unplanned"
ROUTINE = "/interventions/v2/rs/preventive/routine"
TRAINING = "/interventions/v2/rs/training-exercise"


def intervention_url(intervention_id: int | str) -> str:
    return f"/interventions/v2/rs/{intervention_id}"


# --- ids and times --------------------------------------------------------------------------

MAX_ID = 9007199254740991
MISSING = 2_000_000_001  # no row of any table has this id
START = "2024-11-01T08:00:00.000Z"
END = "2024-11-01T10:00:00.000Z"
# The times of seed 000's example request.
SEED_START = "2024-12-01T12:34:56.000Z"
SEED_END = "2024-12-05T14:56:23.000Z"
DATETIME_OUT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# --- answers: data and problem documents ----------------------------------------------------

PROBLEM_JSON = "application/problem+json"


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"status {r.status_code}, not {status}: {r.text[:500]}"
    assert r.headers["content-type"] == "application/json"
    return r.json()["data"]


def assert_problem(r: httpx.Response, status: int, *fields: str) -> dict[str, Any]:
    """RFC 9457 problem details; 400s list the offending fields, which include ``fields``."""
    assert r.status_code == status, f"status {r.status_code}, not {status}: {r.text[:300]}"
    content_type = r.headers.get("content-type")
    assert content_type == PROBLEM_JSON, f"content-type {content_type}: {r.text[:300]}"
    problem: dict[str, Any] = r.json()
    assert {"type", "title", "status", "detail"} <= problem.keys(), f"members: {problem}"
    assert problem["status"] == status, f"status member: {problem}"
    for member in ("type", "title", "detail"):
        assert isinstance(problem[member], str), f"{member} not a string: {problem}"
        assert problem[member], f"{member} empty: {problem}"
    assert "Traceback" not in r.text
    if status == 400:
        errors = problem.get("errors")
        assert isinstance(errors, list), f"no errors list: {problem}"
        assert errors, f"empty errors list: {problem}"
        for error in errors:
            assert isinstance(error.get("field"), str), f"errors[].field: {problem}"
            assert isinstance(error.get("message"), str), f"errors[].message: {problem}"
            assert error["field"], f"errors[].field empty: {problem}"
            assert error["message"], f"errors[].message empty: {problem}"
    if fields:
        named = {e["field"] for e in problem.get("errors") or []}
        assert set(fields) <= named, f"fields {sorted(named)} lack {sorted(fields)}: {problem}"
    return problem


def assert_storage_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    """The storage tests' problem document: the status, the members, no traceback."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    assert "Traceback" not in r.text
    return body


# --- bodies the endpoints accept ------------------------------------------------------------


def curative_body(org: Org) -> dict[str, Any]:
    return {
        "scheduledStart": SEED_START,
        "scheduledEnd": SEED_END,
        "anomalyIds": [org.anomaly_ids[0]],
        "creationStatus": 0,
        "description": "Replace the extinguisher",
        "assignedCompanyContactId": org.contact_ids[0],
        "assignedUserId": org.manager.user_id,
    }


def curative_body_on(org: Org, anomaly_ids: list[int], creation_status: int = 0) -> dict[str, Any]:
    """A curative on ``anomaly_ids``, assigned to the manager's profile."""
    return {
        "scheduledStart": START,
        "scheduledEnd": END,
        "creationStatus": creation_status,
        "anomalyIds": anomaly_ids,
        "assignedCompanyContactId": org.contact_ids[0],
        "assignedProfileId": org.manager.profile_id,
    }


def unplanned_body(org: Org) -> dict[str, Any]:
    return {
        "companyId": org.company_ids[0],
        "siteIds": [org.site_ids[0]],
        "ruleIds": [org.rule_ids[0]],
        "signature": {"name": "signature.png", "mimeType": "image/png", "size": 10},
        "provider": {
            "firstName": "Ann",
            "lastName": "Lee",
            "email": "ann@example.org",
            "actionComment": "Checked every detector",
            "comment": "Nothing to report",
        },
        "actualStart": SEED_START,
    }


def routine_body(org: Org) -> dict[str, Any]:
    return {
        "scheduledStart": "2024-11-01T08:00:00.000Z",
        "scheduledEnd": "2024-11-01T10:00:00.000Z",
        "creationStatus": 0,
        "routineId": org.routine_id,
    }


def training_create_body(org: Org) -> dict[str, Any]:
    return {
        "scheduledStart": "2024-11-01T08:00:00.000Z",
        "scheduledEnd": "2024-11-01T10:00:00.000Z",
        "ruleId": org.training_rule_id,
        "siteIds": [org.site_ids[0]],
        "creationStatus": 0,
        "description": "Evacuation drill",
        "assignedCompanyContactId": org.contact_ids[1],
        "assignedProfileId": org.admin.profile_id,
    }


async def create(client: httpx.AsyncClient, path: str, body: dict[str, Any], org: Org) -> int:
    r = await client.post(path, json=body, headers=org.admin.headers)
    assert r.status_code == 201, r.text
    return int(r.json()["data"]["id"])


# --- on site: a planned intervention, its check-in --------------------------------------------

SIGNATURE = {"name": "sig.png", "mimeType": "image/png", "size": 16}


async def plan(client: httpx.AsyncClient, org: Org, kind: str = "training") -> dict[str, Any]:
    """A scheduled drill (``kind="training"``) or curative, with its PIN."""
    if kind == "training":
        body: dict[str, Any] = {
            "scheduledStart": "2025-01-10T08:00:00Z",
            "scheduledEnd": "2025-01-10T09:00:00Z",
            "ruleId": org.training_rule_id,
            "siteIds": [org.site_ids[0]],
            "creationStatus": 1,
        }
        r = await client.post(f"{RS}/training-exercise", json=body, headers=org.admin.headers)
    else:
        body = {
            "scheduledStart": "2025-01-10T08:00:00Z",
            "scheduledEnd": "2025-01-10T09:00:00Z",
            "anomalyIds": [org.anomaly_ids[0]],
            "creationStatus": 1,
        }
        r = await client.post(f"{RS}/curative", json=body, headers=org.admin.headers)
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


async def check_in(client: httpx.AsyncClient, org: Org, iid: int, pin: int) -> httpx.Response:
    return await client.patch(
        f"{MB}/check-in", json={"interventionId": iid, "codePin": pin}, headers=org.manager.headers
    )


def wrong_pin(pin: int) -> int:
    return 100000 if pin != 100000 else 100001


# --- images (signatures) --------------------------------------------------------------------

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 3
WEBP = b"RIFF\x00\x10\x00\x00WEBPVP8 " + bytes(range(256)) * 2
IMAGES = {"image/jpeg": JPEG, "image/png": PNG, "image/webp": WEBP}

# --- an intervention as the seed pages show it ------------------------------------------------

# Members every page's response shows, first generation (000, 001, 003, 004)…
SEED_MEMBERS_V1 = {
    "id",
    "status",
    "type",
    "description",
    "imgSignature",
    "codePin",
    "autoCreated",
    "creationStatus",
    "scheduledStart",
    "scheduledEnd",
    "actualStart",
    "actualEnd",
    "providerName",
    "providerEmail",
    "providerActionComment",
    "providerGeneralComment",
    "assignedCompanyContactId",
    "assignedUserId",
    "verifiedByUserId",
    "verifiedAt",
    "decisionComment",
    "attendeeCount",
    "routineId",
    "organizationId",
    "createdByUserId",
    "archivedAt",
    "updatedAt",
    "createdAt",
}
# … and second generation (002).
SEED_MEMBERS_V2 = {
    "id",
    "status",
    "type",
    "description",
    "imgSignature",
    "codePin",
    "autoCreated",
    "creationStatus",
    "scheduledStart",
    "scheduledEnd",
    "actualStart",
    "actualEnd",
    "providerName",
    "providerEmail",
    "providerActionComment",
    "providerGeneralComment",
    "assignedCompanyContactId",
    "assignedProfileId",
    "verifiedById",
    "verifiedAt",
    "decisionComment",
    "routineId",
    "organizationId",
    "createdById",
    "archivedAt",
    "updatedAt",
    "createdAt",
    "companyId",
    "negotiationEndDate",
    "checkType",
    "deletedAt",
}
DATETIME_MEMBERS = {
    "scheduledStart",
    "scheduledEnd",
    "actualStart",
    "actualEnd",
    "verifiedAt",
    "archivedAt",
    "updatedAt",
    "createdAt",
    "negotiationEndDate",
    "deletedAt",
}


def check_resource(data: dict[str, Any]) -> None:
    """Both generations of names, consistent with each other, typed as the pages show."""
    assert data.keys() >= SEED_MEMBERS_V1
    assert data.keys() >= SEED_MEMBERS_V2
    assert data["verifiedById"] == data["verifiedByUserId"]
    assert data["createdById"] == data["createdByUserId"]
    assert isinstance(data["id"], int)
    assert data["id"] > 0
    assert 100000 <= data["codePin"] <= 999999
    assert isinstance(data["autoCreated"], bool)
    for member in DATETIME_MEMBERS:
        assert data[member] is None or DATETIME_OUT.match(data[member]), member


# --- what an organisation holds -------------------------------------------------------------

ORG_TABLES = {
    "interventions": Intervention,
    "intervention_sites": InterventionSite,
    "intervention_rules": InterventionRule,
    "intervention_site_rules": InterventionSiteRule,
    "intervention_anomalies": InterventionAnomaly,
    "journal_entries": JournalEntry,
    "notifications": Notification,
    "email_outbox": OutboxEmail,
    "stored_files": StoredFile,
}


async def org_state(factory: Any, org: Org) -> dict[str, Any]:
    """Row counts of every intervention-side table in the organisation, and anomaly statuses."""
    state: dict[str, Any] = {}
    async with factory.db.reader() as s:
        for name, model in ORG_TABLES.items():
            state[name] = (
                await s.execute(
                    select(func.count()).select_from(model).where(model.organization_id == org.id)
                )
            ).scalar_one()
        state["anomalies"] = sorted(
            (
                await s.execute(
                    select(Anomaly.id, Anomaly.status, Anomaly.resolved_at).where(
                        Anomaly.organization_id == org.id
                    )
                )
            ).all()
        )
        state["intervention_rows"] = sorted(
            (
                await s.execute(
                    select(
                        Intervention.id,
                        Intervention.status,
                        Intervention.description,
                        Intervention.assigned_profile_id,
                        Intervention.verified_at,
                        Intervention.updated_at,
                    ).where(Intervention.organization_id == org.id)
                )
            ).all()
        )
        state["unread"] = (
            await s.execute(
                select(func.count())
                .select_from(Notification)
                .where(Notification.organization_id == org.id, Notification.read_at.is_(None))
            )
        ).scalar_one()
    return state


# --- the journal's entries about one intervention (its history) ------------------------------


class HistoryEntry:
    """A journal entry about an intervention, as the history read it before the journal."""

    def __init__(self, entry: JournalEntry) -> None:
        self.seq = entry.seq
        self.organization_id = entry.organization_id
        self.action = entry.action
        self.actor = entry.actor
        self.user_id = entry.actor.get("userId")
        self.changes = entry.changes
        self.created_at = entry.recorded_at


async def intervention_history(db: Any, intervention_id: int) -> list[HistoryEntry]:
    """The journal's entries about the intervention, in order."""
    async with db.reader() as s:
        rows = await s.execute(
            select(JournalEntry)
            .where(
                JournalEntry.subject_type == "intervention",
                JournalEntry.subject_id == str(intervention_id),
            )
            .order_by(JournalEntry.organization_id, JournalEntry.seq)
        )
        return [HistoryEntry(e) for e in rows.scalars()]


async def journal_of(db: Any, organization_id: int) -> list[JournalEntry]:
    """The organisation's journal entries, in order."""
    async with db.reader() as s:
        rows = await s.execute(
            select(JournalEntry)
            .where(JournalEntry.organization_id == organization_id)
            .order_by(JournalEntry.seq)
        )
        return list(rows.scalars())


async def assert_chained(db: Any, organization_id: int) -> list[JournalEntry]:
    """The organisation's journal, checked entry by entry: seq 1, 2, 3…, each hash the
    SHA-256 of the entry's canonical document, each chained to the one before, and the head
    at the last. Its entries."""
    entries = await journal_of(db, organization_id)
    previous = journal.GENESIS
    for n, entry in enumerate(entries, start=1):
        assert entry.seq == n
        assert entry.prev_hash == previous, f"entry {n} is not chained"
        assert entry.hash == journal.entry_hash(journal.document(entry)), f"entry {n} altered"
        previous = entry.hash
    async with db.reader() as s:
        head = await s.get(JournalHead, organization_id)
    if entries:
        assert head is not None
        assert (head.seq, head.hash) == (entries[-1].seq, entries[-1].hash)
    return entries


# --- the register: its commands, and tampering as someone with database access would -------

REGISTER = "/register/v1"


def _register_command(env: dict[str, str | None], args: list[str]) -> Any:
    from typer.testing import CliRunner

    from interventions.cli import cli
    from interventions.config import get_settings

    get_settings.cache_clear()  # the settings are read from the environment once, and cached
    try:
        return CliRunner().invoke(cli, ["register", *args], env=env)
    finally:
        get_settings.cache_clear()


async def register_command(settings: Any, *args: str, **env: str) -> Any:
    """``interventions register ARGS`` in-process (in a thread: it runs its own event loop)
    with the test's settings; a click ``Result``."""
    environment: dict[str, str | None] = {
        "INTERVENTIONS_DATABASE_URL": settings.database_url,
        "INTERVENTIONS_SECRET_KEY": settings.secret_key,
        "INTERVENTIONS_STORAGE_DIR": str(settings.storage_dir),
        "INTERVENTIONS_REGISTER_KEYS_DIR": str(settings.register_keys_dir),
        "INTERVENTIONS_TSA_URL": settings.tsa_url,
        "INTERVENTIONS_REGISTER_SIGNING_KEY": None,
        **env,
    }
    return await asyncio.to_thread(_register_command, environment, list(args))


def _tamper_sqlite(path: str, statements: tuple[str, ...]) -> None:
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        connection.execute("BEGIN IMMEDIATE")
        # The journal's triggers are dropped and made again in one transaction: no other
        # connection ever sees the journal unguarded.
        triggers = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
            "AND tbl_name = 'journal_entries'"
        ).fetchall()
        for name, _sql in triggers:
            connection.execute(f'DROP TRIGGER "{name}"')
        for statement in statements:
            connection.execute(statement)
        for _name, sql in triggers:
            connection.execute(sql)
        connection.execute("COMMIT")
    finally:
        connection.close()


async def tamper(database_url: str, *statements: str) -> None:
    """Run SQL ``statements`` past the journal's guards, as its owner could: PostgreSQL with
    ``session_replication_role = replica`` (no trigger, no foreign key fires), SQLite with
    the journal's triggers dropped (and made again) in the same transaction."""
    if database_url.startswith("postgresql"):
        await run_sql(
            "SET session_replication_role = replica; " + "; ".join(statements), database_url
        )
    else:
        path = database_url.removeprefix("sqlite:///")
        await asyncio.to_thread(_tamper_sqlite, path, statements)


def swap_entries(organization_id: int, a: int, b: int) -> tuple[str, ...]:
    """Statements that exchange the seqs of two entries (reordering them)."""
    where = f"organization_id = {organization_id} AND seq = "
    return (
        f"UPDATE journal_entries SET seq = -1 WHERE {where}{a}",
        f"UPDATE journal_entries SET seq = {a} WHERE {where}{b}",
        f"UPDATE journal_entries SET seq = {b} WHERE {where}-1",
    )


async def record_entries(database: Any, organization_id: int, count: int, **changes: Any) -> Any:
    """``count`` journal entries about made-up interventions, appended as the service does
    (``journal.append``); the new head."""
    from interventions.register import journal

    actor = {"type": "system", "name": "test"}
    entries = [
        journal.Entry(
            action="update",
            subject_type="intervention",
            subject_id=str(1000 + n),
            changes={"description": f"step {n}", "n": n, **changes},
            actor=actor,
        )
        for n in range(count)
    ]
    async with database.transaction() as db:
        return await journal.append(db, organization_id, entries)


def run_exported_verifier(archive: Any, directory: Any) -> tuple[int, str]:
    """Unzip an export into ``directory`` and run its ``verify_register.py`` there, with the
    venv's Python in isolated mode (nothing of the service's importable): its exit status
    and first line."""
    import subprocess
    import sys
    import zipfile

    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(directory / "unzipped")
    run = subprocess.run(
        [sys.executable, "-I", str(directory / "unzipped" / "verify_register.py")],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert not run.stderr, run.stderr
    return run.returncode, run.stdout.splitlines()[0]
