"""Put the database back as it was before a run, so that every run sees the same register.

Writes consume the pools (anomalies go into repair, interventions get verified) and add rows.
Before a run, ``snapshot`` copies the rows the run may change into the ``bench`` schema and
notes the high-water marks of the tables it may insert into; ``restore`` deletes what is newer
and copies the saved rows back, then vacuums the touched tables so that autovacuum does not
wake up in the middle of the next run. Foreign-key triggers are off during the restore
(``session_replication_role = replica``): the restore deletes children before parents itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg

from bench.pools import Pools

LINKS = ("intervention_sites", "intervention_site_rules", "intervention_rules")
TOUCHED = (
    "interventions",
    "intervention_history",
    "intervention_sites",
    "intervention_site_rules",
    "intervention_rules",
    "intervention_anomalies",
    "anomalies",
    "notifications",
    "email_outbox",
    "stored_files",
)


@dataclass(frozen=True)
class Marks:
    interventions: int
    history: int
    outbox: int
    started: dt.datetime


async def snapshot(conn: asyncpg.Connection, pools: Pools) -> Marks:
    """Save the rows the run may change; return the marks above which rows are the run's."""
    interventions = pools.intervention_ids()
    async with conn.transaction():
        await conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        await conn.execute(
            "DROP TABLE IF EXISTS bench.interventions, bench.anomalies, bench.notifications, "
            + ", ".join(f"bench.{t}" for t in LINKS)
        )
        await conn.execute(
            "CREATE TABLE bench.interventions AS SELECT * FROM interventions "
            "WHERE id = ANY($1::bigint[])",
            interventions,
        )
        for table in LINKS:
            await conn.execute(
                f"CREATE TABLE bench.{table} AS SELECT * FROM {table} "
                "WHERE intervention_id = ANY($1::bigint[])",
                interventions,
            )
        await conn.execute(
            "CREATE TABLE bench.anomalies AS SELECT * FROM anomalies WHERE id = ANY($1::bigint[])",
            pools.anomaly_ids(),
        )
        await conn.execute(
            "CREATE TABLE bench.notifications AS SELECT * FROM notifications "
            "WHERE id = ANY($1::text[])",
            pools.notification_ids(),
        )
        row = await conn.fetchrow(
            """SELECT (SELECT COALESCE(max(id), 0) FROM interventions) AS interventions,
                      (SELECT COALESCE(max(id), 0) FROM intervention_history) AS history,
                      (SELECT COALESCE(max(id), 0) FROM email_outbox) AS outbox,
                      clock_timestamp() AS started"""
        )
    assert row is not None
    return Marks(row["interventions"], row["history"], row["outbox"], row["started"])


async def _columns(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        """SELECT column_name FROM information_schema.columns
           WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position""",
        table,
    )
    return [r["column_name"] for r in rows]


async def restore(conn: asyncpg.Connection, marks: Marks, vacuum: bool = True) -> None:
    """Undo everything done since ``snapshot``."""
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        new = marks.interventions
        await conn.execute("DELETE FROM notifications WHERE intervention_id > $1", new)
        await conn.execute("DELETE FROM intervention_history WHERE id > $1", marks.history)
        await conn.execute("DELETE FROM email_outbox WHERE id > $1", marks.outbox)
        for table in (*LINKS, "intervention_anomalies"):
            await conn.execute(f"DELETE FROM {table} WHERE intervention_id > $1", new)
        await conn.execute("DELETE FROM interventions WHERE id > $1", new)
        await conn.execute("DELETE FROM stored_files WHERE created_at >= $1", marks.started)

        # Only what the run changed is written back: at large scale the pools hold tens of
        # thousands of rows, most of them untouched by a 10 s run.
        await conn.execute(
            "CREATE TEMP TABLE changed ON COMMIT DROP AS SELECT s.id FROM bench.interventions s "
            "JOIN interventions i ON i.id = s.id WHERE ROW(i.*) IS DISTINCT FROM ROW(s.*)"
        )
        columns = [c for c in await _columns(conn, "interventions") if c != "id"]
        assignments = ", ".join(f"{c} = s.{c}" for c in columns)
        await conn.execute(
            f"UPDATE interventions i SET {assignments} FROM bench.interventions s "
            "WHERE i.id = s.id AND s.id IN (SELECT id FROM changed)"
        )
        for table in LINKS:
            await conn.execute(
                f"DELETE FROM {table} WHERE intervention_id IN (SELECT id FROM changed)"
            )
            await conn.execute(
                f"INSERT INTO {table} SELECT * FROM bench.{table} "
                "WHERE intervention_id IN (SELECT id FROM changed)"
            )
        await conn.execute(
            """UPDATE anomalies a SET status = s.status, updated_at = s.updated_at,
                      resolved_at = s.resolved_at, resolved_by_user_id = s.resolved_by_user_id
               FROM bench.anomalies s
               WHERE a.id = s.id
                 AND (a.status, a.updated_at) IS DISTINCT FROM (s.status, s.updated_at)"""
        )
        await conn.execute(
            """UPDATE notifications n SET read_at = s.read_at FROM bench.notifications s
               WHERE n.id = s.id AND n.read_at IS DISTINCT FROM s.read_at"""
        )
    if vacuum:
        await conn.execute("VACUUM (ANALYZE) " + ", ".join(TOUCHED))
