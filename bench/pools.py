"""What the load sends: the sessions and, per scenario, the ids its requests use.

Pools are read from the generated database (never guessed), restricted to the organisations
the load logs in to, and interleaved by organisation so that consecutive requests belong to
different tenants. They are written as a Lua file that the wrk scripts load (``BENCH_DATA``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench import config
from bench.config import Scale

GET_POOL = 20_000  # reads are repeatable: a large sample of ids is enough
UNPLANNED_PER_ORG = 50


@dataclass
class Session:
    organization_id: int
    user_id: int
    profile_id: int
    access: str
    session: str


@dataclass
class Pools:
    """Per scenario, the items its requests use (each names its session by ``s``, 1-based)."""

    sessions: list[Session]
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def intervention_ids(self) -> list[int]:
        """Existing interventions the write scenarios change (for the snapshot)."""
        return sorted(
            {
                item["id"]
                for name in ("preventive", "training", "verify")
                for item in self.items[name]
            }
        )

    def anomaly_ids(self) -> list[int]:
        return sorted({a for item in self.items["curative"] for a in item["a"]})

    def notification_ids(self) -> list[str]:
        return sorted(item["ntf"] for item in self.items["verify"])


def _interleave(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Round-robin over organisations (``s``), keeping each organisation's order."""
    by_session: dict[int, list[dict[str, Any]]] = {}
    for item in items:
        by_session.setdefault(item["s"], []).append(item)
    out: list[dict[str, Any]] = []
    queues = list(by_session.values())
    depth = max((len(q) for q in queues), default=0)
    for i in range(depth):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def load_accounts(scale: Scale) -> list[tuple[int, int, str]]:
    """(organisation, admin user id, e-mail) of every organisation the load logs in to."""
    return [
        (org, config.user_id(org, 0), config.email(org, 0))
        for org in range(1, scale.load_organizations + 1)
    ]


async def build(conn: asyncpg.Connection, sessions: list[Session]) -> Pools:
    """Every scenario's pool, from the database as it is now."""
    index = {s.organization_id: i + 1 for i, s in enumerate(sessions)}
    admin = {s.organization_id: s.profile_id for s in sessions}
    orgs = list(index)
    pools = Pools(sessions=sessions)

    rows = await conn.fetch(
        """SELECT id, organization_id FROM interventions
           WHERE organization_id = ANY($1::bigint[]) AND deleted_at IS NULL
           ORDER BY (id * 2654435761) % 4294967296 LIMIT $2""",
        orgs,
        GET_POOL,
    )
    pools.items["get"] = [{"s": index[r["organization_id"]], "id": r["id"]} for r in rows]

    # Open anomalies, each repaired once per run; a maintainer (company type 2) is assigned.
    contacts = {
        r["organization_id"]: r["id"]
        for r in await conn.fetch(
            """SELECT DISTINCT ON (cc.organization_id) cc.organization_id, cc.id
               FROM company_contacts cc JOIN companies c ON c.id = cc.company_id
               WHERE cc.organization_id = ANY($1::bigint[]) AND c.type = 2
               ORDER BY cc.organization_id, cc.id""",
            orgs,
        )
    }
    rows = await conn.fetch(
        """SELECT id, organization_id FROM anomalies
           WHERE organization_id = ANY($1::bigint[]) AND status = 0 ORDER BY id""",
        orgs,
    )
    pools.items["curative"] = _interleave(
        [
            {
                "s": index[r["organization_id"]],
                "a": [r["id"]],
                "contact": contacts[r["organization_id"]],
                "profile": admin[r["organization_id"]],
            }
            for r in rows
        ]
    )

    # Unplanned checks: a verification body, three sites, the three rules every site carries.
    companies = {
        r["organization_id"]: r["id"]
        for r in await conn.fetch(
            """SELECT DISTINCT ON (organization_id) organization_id, id FROM companies
               WHERE organization_id = ANY($1::bigint[]) AND type = 1
               ORDER BY organization_id, id""",
            orgs,
        )
    }
    sites: dict[int, list[int]] = {}
    for r in await conn.fetch(
        "SELECT id, organization_id FROM sites WHERE organization_id = ANY($1::bigint[]) "
        "ORDER BY id",
        orgs,
    ):
        sites.setdefault(r["organization_id"], []).append(r["id"])
    unplanned = []
    for org in orgs:
        org_sites = sites[org]
        rules = [(org - 1) * config.RULES_PER_ORG + r + 1 for r in range(config.BASE_RULES)]
        for k in range(UNPLANNED_PER_ORG):
            chosen = [org_sites[(3 * k + j) % len(org_sites)] for j in range(3)]
            unplanned.append(
                {"s": index[org], "company": companies[org], "sites": chosen, "rules": rules}
            )
    pools.items["unplanned"] = _interleave(unplanned)

    # Re-planning: the body keeps the current assignees, so no e-mail changes the statements.
    rows = await conn.fetch(
        """SELECT i.id, i.organization_id, i.assigned_company_contact_id AS contact,
                  i.assigned_profile_id AS profile,
                  array_agg(l.site_rule_id ORDER BY l.site_rule_id) AS sr
           FROM interventions i JOIN intervention_site_rules l ON l.intervention_id = i.id
           WHERE i.organization_id = ANY($1::bigint[]) AND i.type = 1 AND i.status IN (1, 2)
             AND i.deleted_at IS NULL AND i.assigned_profile_id IS NOT NULL
             AND i.assigned_company_contact_id IS NOT NULL
           GROUP BY i.id ORDER BY i.id""",
        orgs,
    )
    pools.items["preventive"] = _interleave(
        [
            {
                "s": index[r["organization_id"]],
                "id": r["id"],
                "sr": list(r["sr"]),
                "contact": r["contact"],
                "profile": r["profile"],
            }
            for r in rows
        ]
    )
    rows = await conn.fetch(
        """SELECT i.id, i.organization_id, i.assigned_company_contact_id AS contact,
                  i.assigned_profile_id AS profile,
                  (SELECT min(rule_id) FROM intervention_rules r WHERE r.intervention_id = i.id)
                    AS rule,
                  (SELECT array_agg(site_id ORDER BY site_id) FROM intervention_sites s
                    WHERE s.intervention_id = i.id) AS sites
           FROM interventions i
           WHERE i.organization_id = ANY($1::bigint[]) AND i.type = 3 AND i.status IN (1, 2)
             AND i.deleted_at IS NULL AND i.assigned_profile_id IS NOT NULL
             AND i.assigned_company_contact_id IS NOT NULL
           ORDER BY i.id""",
        orgs,
    )
    pools.items["training"] = _interleave(
        [
            {
                "s": index[r["organization_id"]],
                "id": r["id"],
                "rule": r["rule"],
                "sites": list(r["sites"]),
                "contact": r["contact"],
                "profile": r["profile"],
            }
            for r in rows
        ]
    )

    # Verification: executed preventive checks and drills, with the admin's unread notice.
    users = [s.user_id for s in sessions]
    rows = await conn.fetch(
        """SELECT i.id, i.organization_id, n.id AS ntf
           FROM interventions i JOIN notifications n ON n.intervention_id = i.id
           WHERE i.organization_id = ANY($1::bigint[]) AND i.status = 4 AND i.type IN (1, 3)
             AND i.deleted_at IS NULL AND n.user_id = ANY($2::bigint[]) AND n.read_at IS NULL
           ORDER BY i.id""",
        orgs,
        users,
    )
    pools.items["verify"] = _interleave(
        [{"s": index[r["organization_id"]], "id": r["id"], "ntf": r["ntf"]} for r in rows]
    )
    return pools


def _lua(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "{" + ",".join(_lua(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={_lua(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to Lua")


LUA_CHUNK = 1000  # items per function: LuaJIT allows 65 536 constants per function


def write_lua(pools: Pools, path: Path) -> None:
    """The data file the wrk scripts ``dofile``: sessions and every pool.

    Each pool is built from functions of ``LUA_CHUNK`` items, so that no function holds more
    constants than LuaJIT allows whatever the size of the pools.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.write("-- Generated by bench/pools.py for one run; not to be edited.\n")
        out.write("local function extend(t, items)\n")
        out.write("  for i = 1, #items do t[#t + 1] = items[i] end\n")
        out.write("end\n")
        sessions = [{"access": s.access, "session": s.session} for s in pools.sessions]
        out.write(f"local d = {{sessions={_lua(sessions)}}}\n")
        for name, items in pools.items.items():
            out.write(f"d.{name} = {{}}\n")
            for start in range(0, len(items), LUA_CHUNK):
                chunk = ",\n".join(_lua(item) for item in items[start : start + LUA_CHUNK])
                out.write(f"extend(d.{name}, (function() return {{\n{chunk}\n}} end)())\n")
        out.write("return d\n")
