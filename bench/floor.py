"""The floor: the same endpoints doing the same SQL statements, with nothing else on top.

A raw ASGI app (Starlette routing, an asyncpg pool, ``json``): no validation layer, no ORM,
no dependency injection. For each benchmarked endpoint it sends the statements that the
service sends for that request, in the same order and in the same transactions (measured by
``bench/measure.py``; both lists are in the report), and answers the same JSON. What it keeps
of the service's checks is what reads the database anyway (tokens and session, role, tenancy,
lifecycle state, the rows a body names): the answers stay right for the benchmark's requests.
The difference in throughput between the service and this is what the service's own code
costs on top of the database work.

Served the same way as the service: ``python -m uvicorn bench.floor:app --workers N`` with
``BENCH_DATABASE_URL`` and ``BENCH_SECRET`` in the environment.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

POOL_SIZE = 20  # as many connections per worker as the service's engine (20, no overflow)
UPLOAD_TTL = 15 * 60

INTERVENTION_COLUMNS = (
    "id, organization_id, type, status, creation_status, check_type, description, code_pin, "
    "auto_created, scheduled_start, scheduled_end, actual_start, actual_end, provider_name, "
    "provider_email, provider_action_comment, provider_general_comment, "
    "assigned_company_contact_id, assigned_profile_id, company_id, signature_file_id, "
    "verified_by_user_id, verified_at, decision_comment, attendee_count, routine_id, "
    "occurrence_start, created_by_user_id, negotiation_end_date, cancellation_reason, "
    "archived_at, deleted_at, created_at, updated_at, version"
)
INSERT_INTERVENTION = (
    "INSERT INTO interventions (organization_id, type, status, creation_status, check_type, "
    "description, code_pin, auto_created, scheduled_start, scheduled_end, actual_start, "
    "actual_end, provider_name, provider_email, provider_action_comment, "
    "provider_general_comment, assigned_company_contact_id, assigned_profile_id, company_id, "
    "signature_file_id, created_by_user_id, created_at, updated_at, version) VALUES ($1, $2, "
    "$3, $4, $5, $6, $7, false, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, "
    "$21, $21, 1) "
    "RETURNING " + INTERVENTION_COLUMNS
)
# As the service's (interventions.repository): every link table named with the organisation.
LINKS = (
    "SELECT 'site_ids' AS member, site_id AS ref FROM intervention_sites "
    "WHERE intervention_id = $1 AND organization_id = $2 "
    "UNION ALL SELECT 'site_rule_ids', site_rule_id FROM intervention_site_rules "
    "WHERE intervention_id = $1 AND organization_id = $2 "
    "UNION ALL SELECT 'rule_ids', rule_id FROM intervention_rules "
    "WHERE intervention_id = $1 AND organization_id = $2 "
    "UNION ALL SELECT 'anomaly_ids', anomaly_id FROM intervention_anomalies "
    "WHERE intervention_id = $1 AND organization_id = $2"
)
LINK_INSERT = {
    "site_ids": "INSERT INTO intervention_sites (intervention_id, site_id, organization_id) "
    "SELECT $1, x, $3 FROM unnest($2::bigint[]) AS x",
    "site_rule_ids": "INSERT INTO intervention_site_rules "
    "(intervention_id, site_rule_id, organization_id) "
    "SELECT $1, x, $3 FROM unnest($2::bigint[]) AS x",
    "rule_ids": "INSERT INTO intervention_rules (intervention_id, rule_id, organization_id) "
    "SELECT $1, x, $3 FROM unnest($2::bigint[]) AS x",
    "anomaly_ids": "INSERT INTO intervention_anomalies "
    "(intervention_id, anomaly_id, organization_id) "
    "SELECT $1, x, $3 FROM unnest($2::bigint[]) AS x",
}
LINK_DELETE = {
    "site_ids": "DELETE FROM intervention_sites WHERE organization_id = $2 "
    "AND intervention_id = $1",
    "site_rule_ids": "DELETE FROM intervention_site_rules WHERE organization_id = $2 "
    "AND intervention_id = $1",
    "rule_ids": "DELETE FROM intervention_rules WHERE organization_id = $2 "
    "AND intervention_id = $1",
}
# The journal (interventions.register.journal): just before COMMIT, per organisation and
# transaction, one statement moves the head by the number of entries (locking it until the
# commit), chains the entries from its hash (SHA-256 in SQL over each entry's canonical text
# around the previous hash and its seq) and inserts them. The service's text, rendered for
# PostgreSQL.
APPEND = (
    "WITH RECURSIVE head AS "
    "(INSERT INTO journal_heads (organization_id, seq, hash) VALUES ($1::BIGINT, "
    "$2::BIGINT, $3::VARCHAR) ON CONFLICT (organization_id) DO UPDATE SET seq = "
    "(journal_heads.seq + excluded.seq) RETURNING journal_heads.seq, journal_heads.hash), "
    "entries AS "
    "(SELECT given.actor AS actor, given.action AS action, given.subject_type AS "
    "subject_type, given.subject_id AS subject_id, given.changes AS changes, given.before "
    "AS before, given.middle AS middle, given.after AS after, given.n AS n "
    "FROM unnest($5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], "
    "$11::TEXT[], $12::TEXT[]) WITH ORDINALITY AS given(actor, action, subject_type, "
    "subject_id, changes, before, middle, after, n)), "
    "chain(n, seq, hash, prev_hash) AS "
    "(SELECT CAST(0 AS BIGINT) AS n, head.seq - $2::BIGINT AS seq, CAST(head.hash AS TEXT) "
    "AS hash, CAST(NULL AS TEXT) AS prev_hash "
    "FROM head UNION ALL SELECT entries.n AS n, chain.seq + 1 AS anon_1, "
    "encode(sha256(convert_to(entries.before || chain.hash || entries.middle || "
    "CAST(chain.seq + 1 AS TEXT) || entries.after, 'UTF8')), 'hex') AS encode_1, chain.hash"
    " AS hash "
    "FROM chain JOIN entries ON entries.n = chain.n + 1)"
    " INSERT INTO journal_entries (organization_id, seq, recorded_at, actor, action, "
    "subject_type, subject_id, changes, prev_hash, hash) SELECT $1 AS organization_id, "
    "chain.seq, $4::TIMESTAMP WITH TIME ZONE AS recorded_at, CAST(entries.actor AS JSON) AS"
    " actor, entries.action, entries.subject_type, entries.subject_id, CAST(entries.changes"
    " AS JSON) AS changes, chain.prev_hash, chain.hash "
    "FROM chain JOIN entries ON entries.n = chain.n RETURNING journal_entries.seq, "
    "journal_entries.hash"
)
GENESIS = "0" * 64
CONTACT_BY_ID = (
    "SELECT id, name, email, company_id, archived_at FROM company_contacts "
    "WHERE organization_id = $1 AND id = ANY($2::bigint[])"
)
CONTACT_IN_ORG = (
    "SELECT id, organization_id, company_id, name, email, archived_at, created_at "
    "FROM company_contacts WHERE organization_id = $1 AND id = ANY($2::bigint[]) "
    "AND archived_at IS NULL"
)
PROFILE_IN_ORG = (
    "SELECT id, user_id, organization_id, role, archived_at, created_at FROM profiles "
    "WHERE id = $1 AND organization_id = $2 AND archived_at IS NULL"
)
# The caller's live session, its profile and user (auth.dependencies.resolve_caller).
SESSION = (
    "SELECT s.user_id, s.profile_id, s.organization_id, s.expires_at, s.revoked_at, "
    "p.role, p.archived_at, u.disabled_at FROM auth_sessions s "
    "JOIN profiles p ON p.id = s.profile_id JOIN users u ON u.id = s.user_id "
    "WHERE s.id = $1"
)
# The detailed read (search.detail): the intervention with its assignee's user, then
# everything it links to as (member, id, a, b, c, label), then its history.
DETAIL = (
    "SELECT "
    + ", ".join(f"interventions.{c}" for c in INTERVENTION_COLUMNS.split(", "))
    + ", profiles.user_id AS assigned_user_id FROM interventions "
    "LEFT OUTER JOIN profiles ON profiles.id = interventions.assigned_profile_id "
    "AND profiles.organization_id = $1 "
    "WHERE interventions.organization_id = $1 AND interventions.id = $2"
)
# Every table named with the organisation ($2), as the service's statements (tenant scoping).
LINKED = (
    "SELECT 'site', s.id, NULL::int, NULL::int, NULL::int, s.name FROM sites s "
    "JOIN intervention_sites l ON l.site_id = s.id WHERE l.intervention_id = $1 "
    "AND l.organization_id = $2 AND s.organization_id = $2 "
    "UNION ALL SELECT 'site_rule', sr.id, sr.site_id, sr.rule_id, NULL, NULL "
    "FROM site_rules sr JOIN intervention_site_rules l ON l.site_rule_id = sr.id "
    "WHERE l.intervention_id = $1 AND l.organization_id = $2 AND sr.organization_id = $2 "
    "UNION ALL SELECT 'rule', r.id, r.type, NULL, NULL, r.name FROM rules r "
    "JOIN intervention_rules l ON l.rule_id = r.id WHERE l.intervention_id = $1 "
    "AND l.organization_id = $2 AND r.organization_id = $2 "
    "UNION ALL SELECT 'site_rule_rule', r.id, r.type, NULL, NULL, r.name FROM rules r "
    "JOIN site_rules sr ON sr.rule_id = r.id "
    "JOIN intervention_site_rules l ON l.site_rule_id = sr.id WHERE l.intervention_id = $1 "
    "AND l.organization_id = $2 AND sr.organization_id = $2 AND r.organization_id = $2 "
    "UNION ALL SELECT 'anomaly', a.id, a.site_id, a.risk, a.status, a.title FROM anomalies a "
    "JOIN intervention_anomalies l ON l.anomaly_id = a.id WHERE l.intervention_id = $1 "
    "AND l.organization_id = $2 AND a.organization_id = $2"
)
# The history of the detailed read: the journal's entries about the intervention.
JOURNAL_OF = (
    "SELECT journal_entries.seq, journal_entries.recorded_at, journal_entries.actor, "
    "journal_entries.action, journal_entries.changes FROM journal_entries "
    "WHERE journal_entries.organization_id = $1 AND journal_entries.subject_type = $2::VARCHAR "
    "AND journal_entries.subject_id = $3::VARCHAR ORDER BY journal_entries.seq"
)
ADDRESSES = (
    "SELECT profiles.id, users.email, users.first_name, users.last_name FROM users "
    "JOIN profiles ON profiles.user_id = users.id "
    "WHERE profiles.organization_id = $2 AND profiles.id = ANY($1::bigint[])"
)
UPDATE_ALLOWED = frozenset({1, 2, 6})
# Wire names of the columns a re-planning records in the journal.
WIRE = {
    "description": "description",
    "scheduled_start": "scheduledStart",
    "scheduled_end": "scheduledEnd",
    "assigned_profile_id": "assignedProfileId",
    "assigned_company_contact_id": "assignedCompanyContactId",
    "company_id": "companyId",
    "creation_status": "creationStatus",
    "status": "status",
    "verified_by_user_id": "verifiedByUserId",
    "verified_at": "verifiedAt",
    "decision_comment": "decisionComment",
}


class Problem(Exception):
    """An error answer (problem details), as the service would give it."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


# Wire formats ----------------------------------------------------------------------------------


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(dt.UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def canonical_text(value: Any) -> str:
    """RFC 8785 of a value, as the service writes it for such values (its ``journal._json``:
    the C JSON encoder, sorted keys, for values without floats and with ASCII keys, which the
    floor's are by construction; no check)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def jsonable(value: Any) -> Any:
    """A value as the journal records it (times as on the wire)."""
    return iso(value) if isinstance(value, dt.datetime) else value


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def intervention_json(
    row: asyncpg.Record | dict[str, Any], links: dict[str, list[int]], assigned_user: int | None
) -> dict[str, Any]:
    """The intervention resource with both generations of member names (SPEC §4.1)."""
    signature = row["signature_file_id"]
    return {
        "id": row["id"],
        "status": row["status"],
        "type": row["type"],
        "description": row["description"],
        "imgSignature": f"/storage/v1/rs/files/{signature}" if signature else None,
        "codePin": row["code_pin"],
        "autoCreated": row["auto_created"],
        "creationStatus": row["creation_status"],
        "scheduledStart": iso(row["scheduled_start"]),
        "scheduledEnd": iso(row["scheduled_end"]),
        "actualStart": iso(row["actual_start"]),
        "actualEnd": iso(row["actual_end"]),
        "providerName": row["provider_name"],
        "providerEmail": row["provider_email"],
        "providerActionComment": row["provider_action_comment"],
        "providerGeneralComment": row["provider_general_comment"],
        "assignedCompanyContactId": row["assigned_company_contact_id"],
        "assignedUserId": assigned_user,
        "assignedProfileId": row["assigned_profile_id"],
        "verifiedByUserId": row["verified_by_user_id"],
        "verifiedById": row["verified_by_user_id"],
        "verifiedAt": iso(row["verified_at"]),
        "decisionComment": row["decision_comment"],
        "attendeeCount": row["attendee_count"],
        "routineId": row["routine_id"],
        "organizationId": row["organization_id"],
        "createdByUserId": row["created_by_user_id"],
        "createdById": row["created_by_user_id"],
        "companyId": row["company_id"],
        "negotiationEndDate": iso(row["negotiation_end_date"]),
        "checkType": row["check_type"],
        "archivedAt": iso(row["archived_at"]),
        "deletedAt": iso(row["deleted_at"]),
        "cancellationReason": row["cancellation_reason"],
        "updatedAt": iso(row["updated_at"]),
        "createdAt": iso(row["created_at"]),
        "siteIds": links["site_ids"],
        "siteRuleIds": links["site_rule_ids"],
        "ruleIds": links["rule_ids"],
        "anomalyIds": links["anomaly_ids"],
    }


def history_json(entry: asyncpg.Record) -> dict[str, Any]:
    """A journal entry as the detailed read's history shows it."""
    actor = json.loads(entry["actor"])
    return {
        "id": entry["seq"],
        "action": entry["action"],
        "userId": actor.get("userId"),
        "actor": actor,
        "changes": json.loads(entry["changes"]),
        "createdAt": iso(entry["recorded_at"]),
    }


def answer(status: int, body: dict[str, Any]) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status_code=status,
        media_type="application/json",
    )


def problem(error: Problem, path: str) -> Response:
    body = {"title": "Error", "status": error.status, "detail": error.detail, "instance": path}
    return Response(
        json.dumps(body), status_code=error.status, media_type="application/problem+json"
    )


# Tokens ----------------------------------------------------------------------------------------


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def jwt_claims(token: str, secret: bytes, kind: str) -> dict[str, Any]:
    """An HS256 token's claims, after checking its signature, its kind and its expiry."""
    try:
        header, payload, signature = token.split(".")
        expected = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _b64(signature)):
            raise Problem(401, f"The {kind} token is invalid.")
        claims: dict[str, Any] = json.loads(_b64(payload))
    except ValueError as exc:
        raise Problem(401, f"The {kind} token is invalid.") from exc
    if claims.get("typ") != kind or claims.get("exp", 0) <= time.time():
        raise Problem(401, f"The {kind} token is invalid or expired.")
    return claims


class Floor:
    """The floor application: an asyncpg pool and one handler per benchmarked endpoint."""

    def __init__(
        self,
        database_url: str,
        secret: str,
        *,
        on_query: Callable[[str], None] | None = None,
        pool_size: int = POOL_SIZE,
    ) -> None:
        self.database_url = database_url
        self.secret = secret.encode()
        self.on_query = on_query
        self.pool_size = pool_size
        self.pool: asyncpg.Pool | None = None
        routes = [
            Route("/health", self.health, methods=["GET"]),
            Route("/interventions/v2/rs/curative", self.curative, methods=["POST"]),
            Route("/interventions/v2/mb/preventive/unplanned", self.unplanned, methods=["POST"]),
            Route("/interventions/v2/rs/preventive/{iid:int}", self.preventive, methods=["PATCH"]),
            Route(
                "/interventions/v2/rs/training-exercise/{iid:int}",
                self.training,
                methods=["PATCH"],
            ),
            Route("/interventions/v2/rs/{iid:int}/verify", self.verify, methods=["PATCH"]),
            Route("/interventions/v2/rs/{iid:int}", self.get, methods=["GET"]),
        ]
        self.asgi = Starlette(routes=routes, lifespan=self._lifespan)

    async def open(self) -> None:
        async def init(conn: asyncpg.Connection) -> None:
            if self.on_query is not None:
                callback = self.on_query
                conn.add_query_logger(lambda q: callback(q.query))

        async def keep(_conn: asyncpg.Connection) -> None:
            """No reset query on release: like the service's pool, none is needed here."""

        self.pool = await asyncpg.create_pool(
            self.database_url, min_size=1, max_size=self.pool_size, init=init, reset=keep
        )

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await self.open()
        yield
        await self.close()

    # Shared steps ---------------------------------------------------------------------------

    def identity(self, request: Request) -> tuple[int, str]:
        """(user id, session id) named by both tokens, once their signatures are checked."""
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Problem(401, "The Authorization header is missing.")
        access = jwt_claims(token.strip(), self.secret, "access")
        session = jwt_claims(request.headers.get("x-session-token", ""), self.secret, "session")
        user_id, session_id = int(access["sub"]), access["sid"]
        if (user_id, session_id) != (session.get("userId"), session.get("sessionId")):
            raise Problem(401, "The tokens do not belong together.")
        return user_id, session_id

    @staticmethod
    async def caller(
        conn: asyncpg.Connection, user_id: int, session_id: str, *, write: bool
    ) -> dict[str, Any]:
        """The live server-side session, read in the request's transaction (as the service)."""
        row = await conn.fetchrow(SESSION, session_id)
        if (
            row is None
            or row["user_id"] != user_id
            or row["revoked_at"] is not None
            or row["expires_at"] <= dt.datetime.now(dt.UTC)
            or row["archived_at"] is not None
            or row["disabled_at"] is not None
        ):
            raise Problem(401, "The session is not valid.")
        if write and row["role"] not in ("admin", "manager"):
            raise Problem(403, "This role may only read.")
        return {
            "user": user_id,
            "profile": row["profile_id"],
            "org": row["organization_id"],
            "writer": row["role"] in ("admin", "manager"),
            "journal": [],
        }

    @staticmethod
    async def links(conn: asyncpg.Connection, iid: int, org: int) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {
            "site_ids": [],
            "site_rule_ids": [],
            "rule_ids": [],
            "anomaly_ids": [],
        }
        for member, ref in await conn.fetch(LINKS, iid, org):
            out[member].append(ref)
        for ids in out.values():
            ids.sort()
        return out

    @staticmethod
    async def assignee(
        conn: asyncpg.Connection, org: int, body: dict[str, Any]
    ) -> tuple[int | None, int | None]:
        """The body's assignee profile (422 unless the organisation's) and its user."""
        profile = body.get("assignedProfileId", body.get("assignedUserId"))
        if profile is None:
            return None, None
        found = await conn.fetchrow(PROFILE_IN_ORG, profile, org)
        if found is None:
            raise Problem(422, "Unknown profile.")
        return profile, found["user_id"]

    @staticmethod
    def known(**members: list[int]) -> dict[str, list[int]]:
        """All four link sets from the ids just written (the service reads none back)."""
        out: dict[str, list[int]] = {
            "site_ids": [],
            "site_rule_ids": [],
            "rule_ids": [],
            "anomaly_ids": [],
        }
        for member, ids in members.items():
            out[member] = sorted(set(ids))
        return out

    async def read(self, conn: asyncpg.Connection, row: Any) -> dict[str, Any]:
        """The wire form of one intervention: its links (its assignee's user was read with
        it, as the service does)."""
        links = await self.links(conn, row["id"], row["organization_id"])
        return intervention_json(row, links, row["assigned_user_id"])

    @staticmethod
    async def locked(conn: asyncpg.Connection, org: int, iid: int, kind: int | None) -> Any:
        row = await conn.fetchrow(DETAIL + " FOR UPDATE OF interventions", org, iid)
        if row is None or (kind is not None and row["type"] != kind):
            raise Problem(404, f"No intervention {iid}.")
        return row

    @staticmethod
    async def require(
        conn: asyncpg.Connection, table: str, columns: str, org: int, ids: list[int]
    ) -> dict[int, Any]:
        """Every id a row of the organisation (not archived, where rows can be), else 422."""
        active = " AND archived_at IS NULL" if "archived_at" in columns else ""
        rows = await conn.fetch(
            f"SELECT {columns} FROM {table} WHERE organization_id = $1 "
            f"AND id = ANY($2::bigint[]){active}",
            org,
            ids,
        )
        found = {r["id"]: r for r in rows}
        if any(i not in found for i in ids):
            raise Problem(422, f"Unknown {table} in this organisation.")
        return found

    @staticmethod
    def record(
        caller: dict[str, Any], action: str, subject_type: str, subject_id: Any, changes: Any
    ) -> None:
        """A journal entry of the caller's transaction, appended just before it commits."""
        caller["journal"].append((action, subject_type, str(subject_id), changes))

    @staticmethod
    async def append(conn: asyncpg.Connection, caller: dict[str, Any]) -> None:
        """The transaction's journal entries (the service's ``journal.append``): each entry's
        canonical text around the previous hash and its seq, then one statement."""
        entries, org = caller["journal"], caller["org"]
        actor = {"type": "user", "userId": caller["user"], "profileId": caller["profile"]}
        now = dt.datetime.now(dt.UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        stored_actor = canonical_text(actor)
        middle = f'","recordedAt":"{iso(now)}","seq":'
        columns: list[list[str]] = [[] for _ in range(8)]
        for action, subject_type, subject_id, changes in entries:
            stored_changes = canonical_text(changes)
            values = (
                stored_actor,
                action,
                subject_type,
                subject_id,
                stored_changes,
                f'{{"action":"{action}","actor":{stored_actor},"changes":{stored_changes},'
                f'"organizationId":{org},"prevHash":"',
                middle,
                f',"subject":{{"id":"{subject_id}","type":"{subject_type}"}}}}',
            )
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        await conn.fetch(APPEND, org, len(entries), GENESIS, now, *columns)

    async def handle(
        self, request: Request, write: bool, work: Callable[..., Any], status: int = 200
    ) -> Response:
        """Tokens, then caller and ``work`` in one transaction (reads: in autocommit, as the
        service on PostgreSQL); errors as problem details."""
        try:
            user_id, session_id = self.identity(request)
            body = json.loads(await request.body()) if write else None
            assert self.pool is not None
            async with self.pool.acquire() as conn:
                transaction = conn.transaction() if write else contextlib.nullcontext()
                async with transaction:
                    caller = await self.caller(conn, user_id, session_id, write=write)
                    result = await work(conn, caller, body)
                    if caller["journal"]:
                        await self.append(conn, caller)
            return answer(status, result)
        except Problem as error:
            return problem(error, request.url.path)

    # Endpoints ------------------------------------------------------------------------------

    async def health(self, _request: Request) -> Response:
        return answer(200, {"status": "ok"})

    async def get(self, request: Request) -> Response:
        iid = request.path_params["iid"]

        async def work(conn: asyncpg.Connection, caller: dict[str, Any], _: Any) -> Any:
            row = await conn.fetchrow(DETAIL, caller["org"], iid)
            if row is None:
                raise Problem(404, f"No intervention {iid}.")
            sites: list[dict[str, Any]] = []
            site_rules: list[dict[str, Any]] = []
            rules: dict[int, dict[str, Any]] = {}
            links: dict[str, list[int]] = {
                "site_ids": [],
                "site_rule_ids": [],
                "rule_ids": [],
                "anomaly_ids": [],
            }
            anomalies: list[dict[str, Any]] = []
            for member, id_, a, b, c, label in await conn.fetch(LINKED, iid, caller["org"]):
                if member == "site":
                    sites.append({"id": id_, "name": label})
                    links["site_ids"].append(id_)
                elif member == "site_rule":
                    site_rules.append({"id": id_, "siteId": a, "ruleId": b})
                    links["site_rule_ids"].append(id_)
                elif member == "anomaly":
                    anomalies.append(
                        {"id": id_, "siteId": a, "title": label, "risk": b, "status": c}
                    )
                    links["anomaly_ids"].append(id_)
                else:
                    if member == "rule":
                        links["rule_ids"].append(id_)
                    rules[id_] = {"id": id_, "name": label, "type": a}
            history = await conn.fetch(JOURNAL_OF, caller["org"], "intervention", str(iid))
            for ids in links.values():
                ids.sort()
            data = intervention_json(row, links, row["assigned_user_id"])

            def by_id(item: dict[str, Any]) -> int:
                return int(item["id"])

            sites.sort(key=by_id)
            site_rules.sort(key=by_id)
            anomalies.sort(key=by_id)
            writer = caller["writer"]
            status, kind = row["status"], row["type"]
            data.update(
                sites=sites,
                siteRules=site_rules,
                rules=sorted(rules.values(), key=by_id),
                anomalies=anomalies,
                signatureUrl=data["imgSignature"],
                history=[history_json(h) for h in history],
                actions={
                    "canBeUpdated": writer and status in UPDATE_ALLOWED and kind in (1, 3),
                    "canBeDeleted": writer and status in (1, 2, 3, 6),
                    "canBeExecuted": writer and status in (1, 2, 3),
                    "canBeVerified": writer and (status == 4 or (kind == 3 and status in (1, 2))),
                },
            )
            return {"data": data}

        return await self.handle(request, False, work)

    async def curative(self, request: Request) -> Response:
        async def work(conn: asyncpg.Connection, caller: dict[str, Any], body: Any) -> Any:
            org, user = caller["org"], caller["user"]
            ids = list(dict.fromkeys(body["anomalyIds"]))
            start, end = parse_time(body["scheduledStart"]), parse_time(body["scheduledEnd"])
            if end < start:
                raise Problem(422, "scheduledEnd is before scheduledStart.")
            anomalies = await self.require(
                conn,
                "anomalies",
                "id, organization_id, site_id, title, description, risk, status, "
                "resolved_at, resolved_by_user_id, created_at, updated_at",
                org,
                ids,
            )
            if any(a["status"] != 0 for a in anomalies.values()):
                raise Problem(422, "Some anomalies are not open.")
            profile, assigned_user = await self.assignee(conn, org, body)
            contact_id, company = body.get("assignedCompanyContactId"), None
            if contact_id is not None:
                contacts = await conn.fetch(CONTACT_IN_ORG, org, [contact_id])
                if not contacts:
                    raise Problem(422, "Unknown company contact.")
                company = contacts[0]["company_id"]
            now = dt.datetime.now(dt.UTC)
            status = {0: 1, 1: 2, 2: 4}[body["creationStatus"]]
            done = status == 4
            row = await conn.fetchrow(
                INSERT_INTERVENTION,
                org,
                2,
                status,
                body["creationStatus"],
                1,
                body.get("description"),
                100_000 + secrets.randbelow(900_000),
                start,
                end,
                start if done else None,
                end if done else None,
                None,
                None,
                None,
                None,
                contact_id,
                profile,
                company,
                None,
                user,
                now,
            )
            iid = row["id"]
            await conn.execute(LINK_INSERT["anomaly_ids"], iid, ids, org)
            sites = sorted({a["site_id"] for a in anomalies.values()})
            await conn.execute(LINK_INSERT["site_ids"], iid, sites, org)
            self.record(caller, "create", "intervention", iid, {"status": status, "type": 2})
            taken = await conn.fetch(
                "UPDATE anomalies SET status = 1, updated_at = $3 WHERE organization_id = $1 "
                "AND id = ANY($2::bigint[]) AND status = 0 RETURNING id",
                org,
                ids,
                now,
            )
            if len(taken) != len(ids):
                raise Problem(409, "Another intervention took one of these anomalies.")
            moved = {"status": {"from": 0, "to": 1}, "interventionId": iid}
            for anomaly in sorted(r["id"] for r in taken):
                self.record(caller, "create", "anomaly", anomaly, moved)
            data = intervention_json(
                row, self.known(anomaly_ids=ids, site_ids=sites), assigned_user
            )
            return {"data": data}

        return await self.handle(request, True, work, 201)

    async def unplanned(self, request: Request) -> Response:
        async def work(conn: asyncpg.Connection, caller: dict[str, Any], body: Any) -> Any:
            org, user = caller["org"], caller["user"]
            now = dt.datetime.now(dt.UTC)
            start = parse_time(body["actualStart"]) if body.get("actualStart") else now
            site_ids = list(dict.fromkeys(body["siteIds"]))
            rule_ids = list(dict.fromkeys(body["ruleIds"]))
            company = body["companyId"]
            await self.require(
                conn,
                "companies",
                "id, organization_id, name, type, email, archived_at, created_at",
                org,
                [company],
            )
            await self.require(
                conn, "sites", "id, organization_id, name, archived_at, created_at", org, site_ids
            )
            await self.require(
                conn,
                "rules",
                "id, organization_id, name, type, archived_at, created_at",
                org,
                rule_ids,
            )
            pairs = await conn.fetch(
                "SELECT id, organization_id, site_id, rule_id, archived_at, created_at "
                "FROM site_rules WHERE organization_id = $1 AND archived_at IS NULL "
                "AND site_id = ANY($2::bigint[]) AND rule_id = ANY($3::bigint[])",
                org,
                site_ids,
                rule_ids,
            )
            if len(pairs) != len(site_ids) * len(rule_ids):
                raise Problem(422, "These sites do not carry these rules.")
            signature = body["signature"]
            file_id = uuid.uuid4().hex
            announced = {
                "name": signature["name"],
                "mimeType": signature["mimeType"],
                "size": signature["size"],
            }
            self.record(caller, "announce", "file", file_id, announced)
            await conn.execute(
                "INSERT INTO stored_files (id, organization_id, name, mime_type, size, "
                "storage_key, created_by_user_id, uploaded_at, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)",
                file_id,
                org,
                signature["name"],
                signature["mimeType"],
                signature["size"],
                f"{org}/{file_id}",
                user,
                now,
            )
            provider = body["provider"]
            end = now if now >= start else start
            row = await conn.fetchrow(
                INSERT_INTERVENTION,
                org,
                1,
                4,
                2,
                2,
                None,
                100_000 + secrets.randbelow(900_000),
                start,
                end,
                start,
                end,
                f"{provider['firstName']} {provider['lastName']}",
                provider.get("email"),
                provider.get("actionComment"),
                provider.get("comment"),
                None,
                None,
                company,
                file_id,
                user,
                now,
            )
            iid = row["id"]
            await conn.execute(LINK_INSERT["site_ids"], iid, site_ids, org)
            await conn.execute(LINK_INSERT["rule_ids"], iid, rule_ids, org)
            await conn.execute(
                LINK_INSERT["site_rule_ids"], iid, sorted(p["id"] for p in pairs), org
            )
            self.record(caller, "create", "intervention", iid, {"status": 4, "type": 1})
            writers = await conn.fetch(
                "SELECT user_id FROM profiles WHERE organization_id = $1 "
                "AND role IN ('admin', 'manager') AND archived_at IS NULL",
                org,
            )
            users = [w["user_id"] for w in writers]
            await conn.execute(
                "INSERT INTO notifications (id, organization_id, user_id, type, intervention_id, "
                "message, created_at) SELECT 'ntf_' || md5(random()::text), $1, u, "
                "'intervention.executed', $2, $3, $4 FROM unnest($5::bigint[]) AS u",
                org,
                iid,
                f"Intervention {iid} was executed and awaits verification.",
                now,
                users,
            )
            links = self.known(
                site_ids=site_ids, rule_ids=rule_ids, site_rule_ids=[p["id"] for p in pairs]
            )
            data = intervention_json(row, links, None)
            expires = int(time.time()) + UPLOAD_TTL
            mac = hmac.new(self.secret, f"PUT\n{file_id}\n{expires}".encode(), hashlib.sha256)
            query = urlencode({"expires": expires, "signature": mac.hexdigest()})
            base = str(request.base_url).rstrip("/")
            return {"data": data, "presignedUrl": f"{base}/storage/v1/uploads/{file_id}?{query}"}

        return await self.handle(request, True, work, 201)

    async def _assignees(
        self, conn: asyncpg.Connection, org: int, row: Any, body: dict[str, Any]
    ) -> tuple[int | None, int | None, int | None, int | None]:
        """The previous contact, then the new assignees (as the service looks them up: a
        contact already read is not read again)."""
        previous = None
        if row["assigned_company_contact_id"] is not None:
            previous = await conn.fetchrow(CONTACT_BY_ID, org, [row["assigned_company_contact_id"]])
        profile, assigned_user = await self.assignee(conn, org, body)
        contact_id, company = body.get("assignedCompanyContactId"), None
        if contact_id is not None:
            if (
                previous is not None
                and previous["id"] == contact_id
                and previous["archived_at"] is None
            ):
                company = previous["company_id"]
            else:
                contacts = await conn.fetch(CONTACT_IN_ORG, org, [contact_id])
                if not contacts:
                    raise Problem(422, "Unknown company contact.")
                company = contacts[0]["company_id"]
        return profile, contact_id, company, assigned_user

    async def _replan(
        self,
        conn: asyncpg.Connection,
        caller: dict[str, Any],
        row: Any,
        body: dict[str, Any],
        links: dict[str, list[int]],
        emails: bool,
        changes: dict[str, Any],
    ) -> dict[str, Any]:
        """Dates, description, creation status and assignees; the journal entry of what
        changed (``changes`` holds the link changes already); the read."""
        org, iid = caller["org"], row["id"]
        profile, contact, company, assigned_user = await self._assignees(conn, org, row, body)
        if profile is None and "assignedProfileId" not in body and "assignedUserId" not in body:
            profile, assigned_user = row["assigned_profile_id"], row["assigned_user_id"]
        start, end = parse_time(body["scheduledStart"]), parse_time(body["scheduledEnd"])
        if end < start:
            raise Problem(422, "scheduledEnd is before scheduledStart.")
        creation = body.get("creationStatus", row["creation_status"])
        status = {0: 1, 1: 2, 2: 4}[creation]
        now = dt.datetime.now(dt.UTC)
        # What changed, by wire name, as the service's ChangeSet records it.
        new = {
            "description": body.get("description", row["description"]),
            "scheduled_start": start,
            "scheduled_end": end,
            "assigned_profile_id": profile,
            "assigned_company_contact_id": contact,
        }
        if "assignedCompanyContactId" in body:
            new["company_id"] = company
        if status != row["status"] or creation != row["creation_status"]:
            new.update(creation_status=creation, status=status, verified_by_user_id=None)
            new.update(verified_at=None, decision_comment=None)
        for column, value in new.items():
            if row[column] != value:
                changes[WIRE[column]] = {"from": jsonable(row[column]), "to": jsonable(value)}
        # As the service: the intervention's changes, their journal entry, then the e-mails.
        updated = await conn.fetchrow(
            "UPDATE interventions SET status = $2, creation_status = $3, description = $4, "
            "scheduled_start = $5, scheduled_end = $6, assigned_profile_id = $7, "
            "assigned_company_contact_id = $8, company_id = $9, updated_at = $10, "
            "version = version + 1 WHERE organization_id = $11 AND id = $1 AND status = $12 "
            "RETURNING " + INTERVENTION_COLUMNS,
            iid,
            status,
            creation,
            body.get("description"),
            start,
            end,
            profile,
            contact,
            company,
            now,
            org,
            row["status"],
        )
        if updated is None:
            raise Problem(409, "The intervention changed meanwhile.")
        self.record(caller, "update", "intervention", iid, changes)
        if emails:  # the addresses of the previous and the new assignee, in one query
            await conn.fetch(
                ADDRESSES, [p for p in {row["assigned_profile_id"], profile} if p], org
            )
        return {"data": intervention_json(updated, links, assigned_user)}

    async def preventive(self, request: Request) -> Response:
        iid = request.path_params["iid"]

        async def work(conn: asyncpg.Connection, caller: dict[str, Any], body: Any) -> Any:
            org = caller["org"]
            row = await self.locked(conn, org, iid, 1)
            if row["status"] not in UPDATE_ALLOWED:
                raise Problem(409, "This intervention cannot be updated.")
            wanted = list(dict.fromkeys(body["siteRuleIds"]))
            found = await self.require(
                conn,
                "site_rules",
                "id, organization_id, site_id, rule_id, archived_at, created_at",
                org,
                wanted,
            )
            links = await self.links(conn, iid, org)
            changes = {}
            if links["site_rule_ids"] != sorted(set(wanted)):
                changes["siteRuleIds"] = {"from": links["site_rule_ids"], "to": sorted(set(wanted))}
            chosen = [found[i] for i in wanted]
            replaced = {
                "site_rule_ids": sorted({sr["id"] for sr in chosen}),
                "site_ids": sorted({sr["site_id"] for sr in chosen}),
                "rule_ids": sorted({sr["rule_id"] for sr in chosen}),
            }
            for member, ids in replaced.items():
                await conn.execute(LINK_DELETE[member], iid, org)
                await conn.execute(LINK_INSERT[member], iid, ids, org)
            links.update(replaced)
            emails = bool(
                body.get("sendUpdateEmailToCurrentAssignee")
                or (body.get("previousAssigneeNotification") or {}).get("sendEmail")
            )
            return await self._replan(conn, caller, row, body, links, emails, changes)

        return await self.handle(request, True, work)

    async def training(self, request: Request) -> Response:
        iid = request.path_params["iid"]

        async def work(conn: asyncpg.Connection, caller: dict[str, Any], body: Any) -> Any:
            org = caller["org"]
            row = await self.locked(conn, org, iid, 3)
            if row["status"] not in UPDATE_ALLOWED:
                raise Problem(409, "This intervention cannot be updated.")
            rule = await self.require(
                conn,
                "rules",
                "id, organization_id, name, type, archived_at, created_at",
                org,
                [body["ruleId"]],
            )
            if rule[body["ruleId"]]["type"] != 2:
                raise Problem(422, "Not a training rule.")
            sites = list(dict.fromkeys(body["siteIds"]))
            await self.require(
                conn, "sites", "id, organization_id, name, archived_at, created_at", org, sites
            )
            links = await self.links(conn, iid, org)
            changes = {}
            for member, label, ids in (
                ("rule_ids", "ruleIds", [body["ruleId"]]),
                ("site_ids", "siteIds", sites),
            ):
                if links[member] != sorted(set(ids)):
                    changes[label] = {"from": links[member], "to": sorted(set(ids))}
            await conn.execute(LINK_DELETE["rule_ids"], iid, org)
            await conn.execute(LINK_INSERT["rule_ids"], iid, [body["ruleId"]], org)
            await conn.execute(LINK_DELETE["site_ids"], iid, org)
            await conn.execute(LINK_INSERT["site_ids"], iid, sites, org)
            links.update(rule_ids=[body["ruleId"]], site_ids=sorted(sites))
            return await self._replan(conn, caller, row, body, links, False, changes)

        return await self.handle(request, True, work)

    async def verify(self, request: Request) -> Response:
        iid = request.path_params["iid"]

        async def work(conn: asyncpg.Connection, caller: dict[str, Any], body: Any) -> Any:
            org, user = caller["org"], caller["user"]
            row = await self.locked(conn, org, iid, None)
            if row["status"] != 4:
                raise Problem(409, "Only an intervention to verify can be verified.")
            now = dt.datetime.now(dt.UTC)
            notification = body.get("notificationId")
            if notification is not None:
                marked = await conn.execute(
                    "UPDATE notifications SET read_at = coalesce(read_at, $4) WHERE id = $1 "
                    "AND organization_id = $2 AND user_id = $3",
                    notification,
                    org,
                    user,
                    now,
                )
                if marked != "UPDATE 1":
                    raise Problem(422, "Unknown notification.")
            status = 5 if body["decision"] == 1 else 6
            done = await conn.execute(
                "UPDATE interventions SET status = $2, verified_by_user_id = $3, "
                "verified_at = $4, decision_comment = $5, updated_at = $4, "
                "version = version + 1 WHERE id = $1 AND status = 4",
                iid,
                status,
                user,
                now,
                body["decisionComment"],
            )
            if done != "UPDATE 1":
                raise Problem(409, "Verified by someone else meanwhile.")
            row = {
                **dict(row),
                "status": status,
                "verified_by_user_id": user,
                "verified_at": now,
                "decision_comment": body["decisionComment"],
                "updated_at": now,
                "version": row["version"] + 1,
            }
            if row["provider_email"]:
                verdict = "accepted" if status == 5 else "rejected"
                await conn.fetchval(
                    "INSERT INTO email_outbox (organization_id, intervention_id, recipient, "
                    "subject, body, kind, message_id, status, attempts, next_attempt_at, "
                    "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8) "
                    "RETURNING id",
                    org,
                    iid,
                    row["provider_email"],
                    f"Intervention {iid} was {verdict}",
                    f"The client {verdict} intervention {iid}.\n"
                    f"Comment: {body['decisionComment']}\n",
                    f"intervention.{verdict}",
                    f"<{uuid.uuid4().hex}@interventions.local>",
                    now,
                )
            verdict_changes = {
                "status": {"from": 4, "to": status},
                "decision": body["decision"],
                "decisionComment": body["decisionComment"],
            }
            self.record(caller, "verify", "intervention", iid, verdict_changes)
            return {"data": await self.read(conn, row)}

        return await self.handle(request, True, work)


def _from_environment() -> Starlette:
    floor = Floor(
        os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        os.environ.get("BENCH_SECRET", ""),
    )
    return floor.asgi


app = _from_environment()
